"""Experiment configuration: yacs defaults for every key the published SiamKPN configs use.

The defaults are data, never a global that code reads: `get_cfg()` returns an independent copy and
every constructor takes the cfg (or sub-node) it needs, so several configs can live in one process.
Unknown keys in a yaml file are an error naming the key and the file (typos must not pass silently), and so is
a value outside its range (`siamkpn.config_rules`), checked once every override is merged.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from typing import Collection, Optional, Sequence

from yacs.config import CfgNode as CN

from siamkpn.config_rules import TRAINING_SETS, config_problems
from toolkit.errors import BadInput

__all__ = ["get_cfg", "load_cfg", "check_cfg", "ConfigError", "CompatKeyWarning", "COMPAT_ONLY_KEYS",
           "TRAINING_SETS"]

# A config is yaml data; yacs would run any other (.py) file as Python code.
CONFIG_SUFFIXES = (".yaml", ".yml")


# Keys accepted only so that the published configs load unchanged: nothing in this codebase reads them.
COMPAT_ONLY_KEYS = {
    "META_ARC": "pysot's model name; the model is built from BACKBONE, ADJUST, KPN and TRAIN.STACK",
    "CUDA": "pysot's GPU switch; choose the device with --device",
    "TRAIN.EVAL": "declared by the published configs, read by no published or current code",
    "TRACK.UPDATE_LR": "in two published OTB configs, read by no published or current code",
}
# sha256 of the seven published experiment configs (experiments/siamkpn_r50_*/config.yaml, as released):
# they may set the keys above without a warning.
PUBLISHED_CONFIG_SHA256 = frozenset({
    "7bdde276514d05a9c1297c960000d9b043a7c2436e915e5444e1e84271b945a2",
    "e93993682558804938495390f836f24f0114d96f308f599b8025988b1a8f09ba",
    "f879c6b44011aeddd69275e8458100e06a00f86a01c04f095e4a501021db7873",
    "247cd383efa2f8ff42028cbb86fc2d8db298b9f57d207b2ddcce54038cde62e1",
    "92cd4daefcdf6d4d3e123cebecbff439c3e5de1af85fd3aff859cee88bba1af4",
    "29b5d229c31396e436fb1b92ebb345b0acb1c1e1c8156009ab18af1a4f020c24",
    "0aed93feb451407bc588e6e93c5ceb6a436945df14c0a13e2dd211759f09640c",
})


class CompatKeyWarning(UserWarning):
    """A config sets a key that is accepted for published-config compatibility only and changes nothing."""


class ConfigError(BadInput, KeyError):
    """A config file or override could not be merged (unknown key, wrong type)."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


def _sub_dataset(root: str, anno: str, frame_range: int, num_use: int) -> CN:
    node = CN()
    node.ROOT = root
    node.ANNO = anno
    node.FRAME_RANGE = frame_range
    node.NUM_USE = num_use  # -1: every video once; larger: repeat until NUM_USE
    return node


def _defaults() -> CN:
    _C = CN()
    _C.META_ARC = "siamkpn_r50_l234_dwxcorr"  # compatibility only (COMPAT_ONLY_KEYS)
    _C.CUDA = True  # compatibility only

    # ---------------------------------------------------------------- training
    _C.TRAIN = CN()
    _C.TRAIN.EXEMPLAR_SIZE = 127
    _C.TRAIN.SEARCH_SIZE = 255
    _C.TRAIN.BASE_SIZE = 14
    _C.TRAIN.STRIDE = 8
    _C.TRAIN.OUTPUT_SIZE = 31
    _C.TRAIN.STACK = 1  # number of cascaded heat-map stages (1-3)
    _C.TRAIN.FOCAL_NEG = 1.0  # weight of the negative term of the focal loss
    _C.TRAIN.OPTI = "adam"  # adam | sgd
    _C.TRAIN.EVAL = False  # compatibility only
    _C.TRAIN.DIF_STD = False  # variance decay: stage s uses sigma * 0.9**s
    _C.TRAIN.CROP_TEMPLATE = False
    _C.TRAIN.INTER_SUPER = False  # supervise every stage (intermediate supervision)
    _C.TRAIN.OFFSETS = True
    _C.TRAIN.NORMWH = False
    _C.TRAIN.SAMEOFF = False
    # Reproduce the published code's two defects (shared per-stage labels, misaligned offsets
    # weights) for exact comparisons with it. Off: the paper's intended behaviour.
    _C.TRAIN.COMPAT_REFERENCE = False
    _C.TRAIN.RESUME = ""
    _C.TRAIN.PRETRAINED = ""
    _C.TRAIN.LOG_DIR = "./logs"
    _C.TRAIN.SNAPSHOT_DIR = "./snapshot"
    _C.TRAIN.EPOCH = 20
    _C.TRAIN.START_EPOCH = 0
    _C.TRAIN.BATCH_SIZE = 32
    _C.TRAIN.NUM_WORKERS = 1
    _C.TRAIN.MOMENTUM = 0.9
    _C.TRAIN.WEIGHT_DECAY = 0.0
    _C.TRAIN.HM_WEIGHT = 1.0
    _C.TRAIN.OF_WEIGHT = 1.0
    _C.TRAIN.WH_WEIGHT = 0.1
    _C.TRAIN.PRINT_FREQ = 20
    _C.TRAIN.GRAD_CLIP = 10.0
    _C.TRAIN.BASE_LR = 0.005
    _C.TRAIN.SEED = 123456
    # Stop after this many consecutive non-finite losses (each one skips its step).
    _C.TRAIN.MAX_BAD_STEPS = 20
    # The run fails (exit 1, no final snapshot) when the last epoch skipped more than this fraction of its
    # steps: its weights are then not the result of the configured training. Earlier epochs only warn.
    _C.TRAIN.MAX_BAD_FRACTION = 0.1
    # Blown-up weights are never snapshotted (the run stops instead): a parameter beyond this magnitude, a
    # float buffer beyond its square (BN running variances are squared activations), or any non-finite value.
    # Healthy models stay far below: parameters ~1e2, backbone.bn1's running variance ~2e4 on raw 0-255
    # pixels; a diverging run reaches 1e6 after one Adam step at BASE_LR 1e6, and then 1e30 or inf.
    _C.TRAIN.MAX_WEIGHT_ABS = 1e4
    # A finite total loss above this logs a warning (first time per epoch, then a count at the epoch's end):
    # training starts below ~1e3 (focal heat-map loss of an untrained head) and falls from there.
    _C.TRAIN.HUGE_LOSS = 1e4
    # The published step rule (pysot's is_valid_number): a step whose loss is above HUGE_LOSS is skipped like a
    # non-finite one (counted in MAX_BAD_STEPS / MAX_BAD_FRACTION, logged). False: train on it with the warning.
    _C.TRAIN.SKIP_HUGE_LOSS = True
    # bfloat16 autocast for the forward pass and losses (GPUs; CPUs with native bf16), and channels-last
    # memory for model and images. Off by default: the published numbers were trained in float32.
    _C.TRAIN.AMP = False
    _C.TRAIN.CHANNELS_LAST = False
    _C.TRAIN.LR = CN()
    _C.TRAIN.LR.TYPE = "log"
    _C.TRAIN.LR.KWARGS = CN(new_allowed=True)
    _C.TRAIN.LR_WARMUP = CN()
    _C.TRAIN.LR_WARMUP.WARMUP = True
    _C.TRAIN.LR_WARMUP.TYPE = "step"
    _C.TRAIN.LR_WARMUP.EPOCH = 5
    _C.TRAIN.LR_WARMUP.KWARGS = CN(new_allowed=True)

    # ---------------------------------------------------------------- training data
    _C.DATASET = CN()
    for part, shift, scale in (("TEMPLATE", 4, 0.05), ("SEARCH", 64, 0.18)):
        node = CN()
        node.SHIFT = shift
        node.SCALE = scale
        node.BLUR = 0.0
        node.FLIP = 0.0
        node.COLOR = 1.0
        setattr(_C.DATASET, part, node)
    _C.DATASET.NEG = 0.2
    _C.DATASET.GRAY = 0.0  # probability of a grayscale pair (helps on OTB100)
    _C.DATASET.NAMES = ["VID", "COCO", "DET", "YOUTUBEBB"]
    # Relative ROOT/ANNO paths resolve against this folder (flag --data-root, then this key, then
    # the SIAMKPN_DATA environment variable, then the working directory).
    _C.DATASET.DATA_ROOT = ""
    _C.DATASET.VID = _sub_dataset("training_dataset/vid/crop511", "training_dataset/vid/train.json", 100, 100000)
    _C.DATASET.YOUTUBEBB = _sub_dataset(
        "training_dataset/yt_bb/crop/crop511", "training_dataset/yt_bb/crop/train.json", 3, -1)
    _C.DATASET.COCO = _sub_dataset("training_dataset/coco/crop511", "training_dataset/coco/train2017.json", 1, -1)
    _C.DATASET.DET = _sub_dataset("training_dataset/det/crop511", "training_dataset/det/train.json", 1, -1)
    _C.DATASET.GOT10K = _sub_dataset("training_dataset/got10k/crop511", "training_dataset/got10k/train.json", 100, -1)
    _C.DATASET.LASOT = _sub_dataset("training_dataset/lasot/crop511", "training_dataset/lasot/train.json", 300, -1)
    _C.DATASET.TRANET = _sub_dataset(
        "training_dataset/trackingnet/crop511", "training_dataset/trackingnet/train.json", 100, -1)
    _C.DATASET.SYNTH = _sub_dataset("crop511", "train.json", 50, -1)
    _C.DATASET.VIDEOS_PER_EPOCH = 600000

    # ---------------------------------------------------------------- backbone
    _C.BACKBONE = CN()
    _C.BACKBONE.TYPE = "resnet50"
    _C.BACKBONE.KWARGS = CN(new_allowed=True)
    # ImageNet start: pysot's resnet50.model (path), a torchvision ResNet state-dict file (path; converted),
    # or "torchvision[:WEIGHTS]" to download torchvision's (IMAGENET1K_V1 by default). See
    # siamkpn/models/backbone/torchvision_weights.py; "" trains the backbone from scratch.
    _C.BACKBONE.PRETRAINED = ""
    _C.BACKBONE.TRAIN_LAYERS = ["layer2", "layer3", "layer4"]
    _C.BACKBONE.LAYERS_LR = 0.1
    _C.BACKBONE.TRAIN_EPOCH = 10

    # ---------------------------------------------------------------- neck
    _C.ADJUST = CN()
    _C.ADJUST.ADJUST = True
    _C.ADJUST.KWARGS = CN(new_allowed=True)
    _C.ADJUST.TYPE = "AdjustAllLayer"

    # ---------------------------------------------------------------- head
    _C.KPN = CN()
    _C.KPN.TYPE = "MultiKPN"
    _C.KPN.KWARGS = CN(new_allowed=True)
    # Initial heat-map probability p: every heat-map output bias starts at log(p / (1 - p)), the focal-loss
    # prior (0.1 -> -2.2), so training does not first spend steps pushing a 0.5 output down everywhere.
    # 0: PyTorch's default initialisation, as the published code (a loaded checkpoint overrides either).
    _C.KPN.HEATMAP_INIT_PROB = 0.0

    # ---------------------------------------------------------------- tracker
    _C.TRACK = CN()
    _C.TRACK.TYPE = "SiamKPNTracker"
    _C.TRACK.PENALTY_K = 0.04
    _C.TRACK.WINDOW_INFLUENCE = 0.44
    _C.TRACK.LR = 0.4
    _C.TRACK.TH = 0.15  # score threshold for the candidate count (strict >)
    _C.TRACK.OFFSETS = False
    _C.TRACK.EXEMPLAR_SIZE = 127
    _C.TRACK.INSTANCE_SIZE = 255
    _C.TRACK.BASE_SIZE = 8
    _C.TRACK.CONTEXT_AMOUNT = 0.5
    _C.TRACK.UPDATE_LR = 0.0  # compatibility only (COMPAT_ONLY_KEYS)
    # Fast mode: bf16 autocast (and torch.compile on GPU); boxes may move slightly. See README.
    _C.TRACK.FAST = False
    # Inference backend: "torch" (snapshot = .pth) or "onnx" (snapshot = a siamkpn-export-onnx folder).
    _C.TRACK.BACKEND = "torch"
    return _C


_DEFAULTS = _defaults()


def get_cfg() -> CN:
    """Return a fresh, independent copy of the default configuration."""
    return _DEFAULTS.clone()


def _merge_checked(cfg: CN, other: CN, source: str, prefix: str = "") -> None:
    """Merge `other` into `cfg` recursively, raising ConfigError naming the key and `source`."""
    for key, value in other.items():
        full = prefix + key
        if key not in cfg:
            if cfg.is_new_allowed():
                cfg[key] = value
                continue
            raise ConfigError(f"unknown config key '{full}' in {source}")
        current = cfg[key]
        if isinstance(current, CN):
            if not isinstance(value, CN):
                raise ConfigError(f"config key '{full}' in {source} must be a mapping, got {value!r}")
            _merge_checked(current, value, source, full + ".")
            continue
        try:
            cfg[key] = _coerce(current, value)
        except ValueError as err:
            raise ConfigError(f"config key '{full}' in {source}: {err}") from None


def _coerce(current, value):
    """Accept the value if its type fits the default's (ints for floats, lists for tuples)."""
    if value is None or current is None:
        return value
    if isinstance(current, bool) or isinstance(value, bool):
        if isinstance(current, bool) and isinstance(value, bool):
            return value
        raise ValueError(f"expected {type(current).__name__}, got {value!r}")
    if isinstance(current, float) and isinstance(value, int):
        return float(value)
    if isinstance(current, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(current)(value)
    if isinstance(current, str) and isinstance(value, str):
        return value
    if type(current) is type(value):
        return value
    raise ValueError(f"expected {type(current).__name__}, got {value!r}")


def _is_key(cfg: CN, name: str) -> bool:
    node = cfg
    for part in name.split("."):
        if not isinstance(node, CN) or part not in node:
            return False
        node = node[part]
    return True


def _key_without_value(cfg: CN, opts: Sequence[str]) -> str:
    """The --opts key that lacks its value: the first one followed directly by another key, else the last item."""
    for key, value in zip(opts[0::2], opts[1::2]):
        if _is_key(cfg, value):
            return key
    return opts[-1]


def _warn_compat_keys(loaded: CN, source: str) -> None:
    """Warn about compatibility-only keys that `source` sets to a value other than the default."""
    for key, why in COMPAT_ONLY_KEYS.items():
        node, default = loaded, _DEFAULTS
        for part in key.split("."):
            node = node.get(part) if isinstance(node, CN) else None
            default = default[part]
        if node is not None and node != default:
            warnings.warn(f"{source}: {key} is accepted only so that the published configs load; it has no effect "
                          f"here ({why})", CompatKeyWarning, stacklevel=3)


def _is_published(path: str) -> bool:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest() in PUBLISHED_CONFIG_SHA256


def check_cfg(cfg: CN, source: str = "", overridden: Collection[str] = (), by: str = "--opts") -> None:
    """ConfigError naming every value outside its range or relation (`siamkpn.config_rules`), with `source` (the
    config file) and, for keys in `overridden`, that they came from `by`."""
    problems = config_problems(cfg, lambda key: f" (from {by})" if key in overridden else "")
    if problems:
        where = f"config {source}: " if source else ""
        raise ConfigError(where + "; ".join(problems))


def load_cfg(path: Optional[str] = None, opts: Optional[Sequence[str]] = None, freeze: bool = False) -> CN:
    """Defaults, then the yaml file at `path`, then `KEY VALUE` overrides from `opts`; then every range checked."""
    cfg = get_cfg()
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"config file not found: {path}")
        if os.path.splitext(path)[1] not in CONFIG_SUFFIXES:
            raise ConfigError(f"config file {path}: expected a .yaml or .yml file")
        with open(path, encoding="utf-8") as f:
            try:
                loaded = CN.load_cfg(f)
            except Exception as err:  # yaml syntax errors carry line numbers
                raise ConfigError(f"cannot parse config {path}: {err}") from None
        if not loaded:
            raise ConfigError(f"config file {path} is empty: it must set the model (BACKBONE, ADJUST, KPN), e.g. "
                              "copy experiments/siamkpn_quickstart/config.yaml")
        _merge_checked(cfg, loaded, path)
        if not _is_published(path):
            _warn_compat_keys(loaded, path)
    if opts:
        opts = list(opts)
        if len(opts) % 2:
            raise ConfigError(f"--opts needs KEY VALUE pairs ({' '.join(opts)}): "
                              f"'{_key_without_value(cfg, opts)}' has no value")
        for key, raw in zip(opts[0::2], opts[1::2]):
            override = CN()
            cursor = override
            parts = key.split(".")
            for part in parts[:-1]:
                cursor[part] = CN()
                cursor = cursor[part]
            cursor[parts[-1]] = CN._decode_cfg_value(raw)  # yaml/literal parsing, as yacs' merge_from_list
            _merge_checked(cfg, override, "--opts")
            _warn_compat_keys(override, "--opts")
    check_cfg(cfg, path or "", opts[0::2] if opts else ())
    if freeze:
        cfg.freeze()
    return cfg
