"""pysot-style entry point: `python tools/hp_search_epoch.py ...` is `siamkpn-hp-search` (siamkpn/cli/hp_search.py)."""
from siamkpn.cli.hp_search import main

if __name__ == "__main__":
    raise SystemExit(main())
