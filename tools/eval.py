"""pysot-style entry point: `python tools/eval.py ...` is `siamkpn-eval` (the code lives in siamkpn/cli/eval.py)."""
from siamkpn.cli.eval import main

if __name__ == "__main__":
    raise SystemExit(main())
