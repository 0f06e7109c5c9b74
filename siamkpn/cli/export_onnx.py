"""Export a snapshot to ONNX for the onnx backend: `siamkpn-export-onnx --config C --snapshot W.pth --out DIR`.

Writes DIR/template.onnx, DIR/track.onnx (last stage, the config's fixed sizes), with `--int8 --calib ROOT`
also DIR/track_int8.onnx (static QDQ int8, calibrated on the crop511 training set ROOT, never a benchmark),
and DIR/siamkpn_onnx.json (tracker settings, sources, measured errors, each graph's sha256: a graph replaced
later is refused at load, naming the file). Every graph is run under ONNX
Runtime on real crops and compared with PyTorch before the JSON is written; then track with
`siamkpn-test --backend onnx --snapshot DIR` (TRACK.BACKEND onnx), `--fast` for the int8 graph.
"""
from __future__ import annotations

import argparse
import os
import sys

from siamkpn.cli.args import add_config, add_flag, add_opts, add_snapshot, add_threads, make_parser
from siamkpn.cli.common import UsageError, run_tool


def build_parser() -> argparse.ArgumentParser:
    """The command line of siamkpn-export-onnx (the shared flags of siamkpn.cli.args)."""
    p = make_parser("siamkpn-export-onnx", __doc__)
    add_config(p)
    add_snapshot(p)
    add_flag(p, "--out", required=True, help="export folder (created; its graphs are replaced)")
    add_flag(p, "--opset", type=int, default=18, help="ONNX opset")
    add_flag(p, "--int8", action="store_true", help="also write track_int8.onnx (static int8; needs --calib)")
    add_flag(p, "--calib", default=None,
             help="crop511 training set (e.g. the synthetic set's train/ folder) for the int8 calibration and checks")
    add_flag(p, "--calib-count", "--calib_count", dest="calib_count", type=int, default=128,
             help="calibration crop pairs (quick-start model: 64 pairs halve the size error of 32)")
    add_threads(p)
    add_opts(p)
    return p


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _main(argv=None) -> int:
    args = parse_args(argv)
    if args.int8 and not args.calib:
        raise UsageError("--int8 needs --calib DATASET_ROOT (a crop511 training set, never the benchmark)")
    if args.calib and not os.path.isdir(args.calib):
        raise UsageError(f"--calib {args.calib}: not a folder")
    if args.calib_count < 1 or not 7 <= args.opset <= 23:
        raise UsageError("--calib-count must be positive and --opset between 7 and 23")
    from siamkpn.models.onnx_folder import require_onnxruntime

    require_onnxruntime()  # before loading anything: a missing runtime is a one-line error
    import torch

    from siamkpn.config import load_cfg
    from siamkpn.datasets.calibration import calibration_pairs, check_pairs
    from siamkpn.models.checkpoint import load_tracking_checkpoint
    from siamkpn.models.model_builder import ModelBuilder
    from siamkpn.models.onnx_export import export_onnx
    from siamkpn.utils.device import capability_line
    from siamkpn.utils.provenance import file_identity

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_cfg(args.config, list(args.opts), freeze=True)
    model = ModelBuilder(cfg)
    load_tracking_checkpoint(model, args.snapshot)
    source = {"snapshot": os.path.abspath(args.snapshot), "snapshot_identity": file_identity(args.snapshot),
              "config": os.path.abspath(args.config), "opts": list(args.opts)}
    exemplar, instance = int(cfg.TRACK.EXEMPLAR_SIZE), int(cfg.TRACK.INSTANCE_SIZE)
    check, check_crops = check_pairs(args.calib, exemplar, instance)
    calibration = calibration_pairs(args.calib, exemplar, instance, args.calib_count) if args.int8 else None
    result = export_onnx(model.eval(), cfg, args.out, check, check_crops, calibration=calibration,
                         calib_root=args.calib, opset=args.opset, source=source)
    print(capability_line())
    for graph, errors in result.errors.items():
        worst = ", ".join(f"{name} {err:.1e}" for name, err in errors.items())
        print(f"{graph}: largest relative difference from PyTorch: {worst}")
    print(f"exporters: {result.settings['exporters']}; written: "
          f"{', '.join(sorted(result.settings['files'].values()))} and siamkpn_onnx.json in {args.out}")
    return 0


def main(argv=None) -> int:
    """``siamkpn-export-onnx`` / ``python tools/export_onnx.py``: export under the common error policy."""
    return run_tool(_main, argv, "siamkpn-export-onnx")


if __name__ == "__main__":
    sys.exit(main())
