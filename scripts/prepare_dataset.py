"""`python scripts/prepare_dataset.py ...` is `siamkpn-prepare` (the code lives in siamkpn/cli/prepare.py)."""
from siamkpn.cli.prepare import main

if __name__ == "__main__":
    raise SystemExit(main())
