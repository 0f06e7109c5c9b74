"""pysot-style entry point: `python tools/export_onnx.py ...` is `siamkpn-export-onnx` (siamkpn/cli/export_onnx.py)."""
from siamkpn.cli.export_onnx import main

if __name__ == "__main__":
    raise SystemExit(main())
