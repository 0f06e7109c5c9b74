"""`python tools/vot_integration.py ...` is `siamkpn-vot-integration` (code: siamkpn/cli/vot_integration.py)."""
from siamkpn.cli.vot_integration import main

if __name__ == "__main__":
    raise SystemExit(main())
