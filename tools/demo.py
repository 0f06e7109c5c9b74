"""pysot-style entry point: `python tools/demo.py ...` is `siamkpn-demo` (the code lives in siamkpn/cli/demo.py)."""
from siamkpn.cli.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
