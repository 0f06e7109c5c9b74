"""`python tools/pack_results.py ...` is `siamkpn-pack` (the code lives in siamkpn/cli/pack_results.py)."""
from siamkpn.cli.pack_results import main

if __name__ == "__main__":
    raise SystemExit(main())
