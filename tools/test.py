"""pysot-style entry point: `python tools/test.py ...` is `siamkpn-test` (the code lives in siamkpn/cli/test.py)."""
from siamkpn.cli.test import main

if __name__ == "__main__":
    raise SystemExit(main())
