"""pysot-style entry point: `python tools/train.py ...` is `siamkpn-train` (the code lives in siamkpn/cli/train.py)."""
from siamkpn.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
