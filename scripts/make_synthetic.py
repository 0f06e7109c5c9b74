"""`python scripts/make_synthetic.py ...` is `siamkpn-synthetic` (the code lives in siamkpn/cli/synthetic.py)."""
from siamkpn.cli.synthetic import main

if __name__ == "__main__":
    raise SystemExit(main())
