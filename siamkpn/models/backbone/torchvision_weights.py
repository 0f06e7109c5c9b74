"""torchvision's ImageNet ResNet weights converted exactly for the atrous ResNet (no need for pysot's file).

`BACKBONE.PRETRAINED` accepts, besides pysot's `resnet50.model`:
  - `torchvision` (or `torchvision:<weights>`, e.g. `torchvision:IMAGENET1K_V2`): torchvision's ImageNet
    weights for the backbone's depth, downloaded once into torch's hub cache (default IMAGENET1K_V1);
  - the path of a torchvision ResNet state dict (e.g. `resnet50-0676ba61.pth`), recognised by its 1x1
    downsample kernels where this backbone has 3x3 ones.

The conversion. Key names are the same (this ResNet keeps torchvision's names); every tensor is copied
unchanged except `layer{2,3,4}.0.downsample.0.weight`: torchvision's 1x1 kernel goes to the centre tap
[1, 1] of this backbone's 3x3 kernel, zeros elsewhere. `fc.*` (and layer3/layer4 when not built) are unused.
Why the centre tap: the 3x3 downsample has the stride, dilation and padding of its block's 3x3 main-branch
convolution (layer2: stride 2, padding 0; layer3: dilation 1, padding 1; layer4: dilation 2, padding 2), so
its centre tap reads the pixel that the main branch centres on, as torchvision's 1x1 does in its network.

What the converted backbone computes, against torchvision's resnet with the same tensors (BN in eval mode:
train-mode batch statistics are taken over the whole map, whose size and border differ), where `[1:]` cuts
the first row and column:
  - stem: conv1 (padding 0) on the image zero-padded by 3 pixels == torchvision's conv1 (padding 3); bn1,
    ReLU, maxpool and layer1 are the same modules: identical outputs for identical inputs.
  - layer2: its first 3x3 stride-2 convolution has padding 0 (torchvision: 1), so output cell n centres on
    input cell 2n+1 (torchvision: 2n). layer2(f) == torchvision layer2(f[1:]) at every cell except the first
    rows and columns: torchvision reads a padding zero where this one reads f's first row/column (row 0 of
    the first block), and each later 3x3 convolution of layer2 spreads that one cell further (resnet50 and
    resnet18: 3 later ones, so rows/columns 0..3 differ; resnet34: 7, so 0..7).
  - layer3, layer4: stride 1 with dilation 2 and 4 instead of torchvision's strides (the "a trous" form):
    layer3(g)[::2, ::2] == torchvision layer3(g) and layer4(layer3(g))[::4, ::4] == torchvision
    layer4(layer3(g)) at every cell, borders included (a padding of d on the dilated grid reads the same zeros
    as a padding of 1 on the strided one); at every cell they equal torchvision's
    resnet50(replace_stride_with_dilation=[False, True, True]).
  - whole resnet50 backbone: layer2 cell n centres on input pixel 8n+7 (torchvision: 8n), so on a 255 crop cell 15
    centres on the crop centre 127, which the tracker's grid assumes. layer2(x) == torchvision
    layer2(x[7:, 7:]) on rows and columns 6 .. L-6 (255 crop: 6..25 of 31; 127 crop: 6..9 of 15); the others
    are reached by one network's padding where the other reads pixels. At layer3/layer4 every cell of a 127
    or 255 crop is reached by the border, so no cell is equal end to end: the same function of the interior,
    with other border effects. Training from these weights is an ImageNet start of the same quality, but the
    numbers differ from a start on pysot's `resnet50.model`.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, List, Mapping, Tuple

import torch
import torch.nn as nn

from siamkpn.config import ConfigError
from siamkpn.models.backbone.resnet_atrous import BasicBlock, Bottleneck, ResNet
from siamkpn.models.checkpoint import (
    CheckpointError,
    LoadReport,
    extract_state_dict,
    load_pretrained_backbone,
    read_checkpoint,
)

__all__ = ["TORCHVISION", "DEFAULT_WEIGHTS", "TorchvisionDownloadError", "torchvision_arch", "is_torchvision_layout",
           "convert_torchvision_state", "download_torchvision_state", "load_imagenet_backbone"]

logger = logging.getLogger(__name__)

TORCHVISION = "torchvision"
DEFAULT_WEIGHTS = "IMAGENET1K_V1"
_ENUMS = {"resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights", "resnet50": "ResNet50_Weights"}


class TorchvisionDownloadError(RuntimeError):
    """torchvision's weights could not be downloaded or read from the hub cache (a failure, not bad input)."""


def torchvision_arch(backbone: nn.Module) -> str:
    """The torchvision model whose ImageNet weights fit `backbone` ('resnet18', 'resnet34' or 'resnet50')."""
    if isinstance(backbone, ResNet):
        block, depth1 = type(backbone.layer1[0]), len(backbone.layer1)
        arch = {(BasicBlock, 2): "resnet18", (BasicBlock, 3): "resnet34", (Bottleneck, 3): "resnet50"}.get(
            (block, depth1))
        if arch is not None:
            return arch
    raise ConfigError(f"BACKBONE.PRETRAINED {TORCHVISION}: no torchvision ImageNet weights for a "
                      f"{type(backbone).__name__} backbone (BACKBONE.TYPE resnet18, resnet34 or resnet50)")


def is_torchvision_layout(state: Mapping[str, torch.Tensor], backbone: nn.Module) -> bool:
    """True when `state` has a 1x1 downsample kernel where `backbone` has a 3x3 one (torchvision's layout)."""
    own = backbone.state_dict()
    return any(key.endswith("downsample.0.weight") and key in own and value.dim() == 4
               and tuple(value.shape[2:]) == (1, 1) and tuple(own[key].shape[2:]) == (3, 3)
               for key, value in state.items())


def _embed_centre(kernel: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    # the centre tap reads the pixel the block's 3x3 main branch centres on (module docstring)
    out = kernel.new_zeros(shape)
    out[:, :, shape[2] // 2, shape[3] // 2] = kernel[:, :, 0, 0]
    return out


def _prefixes(keys: List[str]) -> List[str]:
    """`fc`, `layer4`, ...: the unused keys summarised by their first component, in order."""
    return list(dict.fromkeys(k.split(".")[0] for k in keys))


def convert_torchvision_state(state: Mapping[str, torch.Tensor], backbone: nn.Module,
                              source: str) -> Tuple[Dict[str, torch.Tensor], LoadReport]:
    """`backbone`'s full state dict from torchvision ResNet tensors; a key or shape that does not fit names `source`."""
    own = backbone.state_dict()
    converted: Dict[str, torch.Tensor] = {}
    missing: List[str] = []
    for key, target in own.items():
        value = state.get(key)
        if value is None:
            if key.endswith("num_batches_tracked"):
                converted[key] = target  # older torchvision files predate this counter; BN does not use it in eval
            else:
                missing.append(key)
            continue
        if value.shape == target.shape:
            converted[key] = value
        elif (key.endswith("downsample.0.weight") and value.dim() == 4 and tuple(value.shape[2:]) == (1, 1)
              and value.shape[:2] == target.shape[:2] and tuple(target.shape[2:]) == (3, 3)):
            converted[key] = _embed_centre(value, target.shape)
        else:
            raise CheckpointError(f"shape mismatch for '{key}' in {source}: torchvision {tuple(value.shape)}, "
                                  f"model {tuple(target.shape)}; is it torchvision's {torchvision_arch(backbone)}?")
    if missing:
        raise CheckpointError(f"{source} lacks {len(missing)} backbone keys ({missing[:5]}"
                              f"{' ...' if len(missing) > 5 else ''}); is it torchvision's "
                              f"{torchvision_arch(backbone)}?")
    unused = [k for k in state if k not in own]
    return converted, LoadReport(missing=[], unexpected=unused, loaded=len(converted))


def download_torchvision_state(arch: str, weights: str = DEFAULT_WEIGHTS) -> Tuple[Dict[str, torch.Tensor], str]:
    """torchvision's ImageNet state dict for `arch` (downloaded once into torch's hub cache) and its URL."""
    from torchvision.models import get_weight  # lazy: only this option needs torchvision

    enum_name = f"{_ENUMS[arch]}.{weights}"
    try:
        url = get_weight(enum_name).url
    except (ValueError, KeyError, AttributeError) as err:
        raise ConfigError(f"BACKBONE.PRETRAINED {TORCHVISION}:{weights}: torchvision has no {enum_name} "
                          f"(e.g. {TORCHVISION}:{DEFAULT_WEIGHTS})") from err
    try:
        # check_hash: torchvision file names carry a sha256 prefix, so a damaged download is refused
        state = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True, check_hash=True,
                                                   weights_only=True)
    except (OSError, RuntimeError) as err:  # URLError/timeouts are OSErrors; a bad hash or file a RuntimeError
        raise TorchvisionDownloadError(
            f"BACKBONE.PRETRAINED {TORCHVISION}: cannot download or read {url} (cache {torch.hub.get_dir()}): "
            f"{type(err).__name__}: {err}; without internet, fetch that file elsewhere and set "
            f"BACKBONE.PRETRAINED to its path") from err
    return extract_state_dict(state, url), url


def load_imagenet_backbone(backbone: nn.Module, spec: str, find: Callable[[str], str] = lambda p: p) -> LoadReport:
    """Load BACKBONE.PRETRAINED `spec`: 'torchvision[:weights]', a torchvision state-dict file or pysot's file.

    `find` resolves a relative file path (the training tool also looks in the checkout root).
    """
    if spec == TORCHVISION or spec.startswith(TORCHVISION + ":"):
        weights = spec.partition(":")[2] or DEFAULT_WEIGHTS
        state, source = download_torchvision_state(torchvision_arch(backbone), weights)
    else:
        source = find(spec)
        state = extract_state_dict(read_checkpoint(source), source)
        if not is_torchvision_layout(state, backbone):
            return load_pretrained_backbone(backbone, source)  # pysot's layout: loaded as it is
    converted, report = convert_torchvision_state(state, backbone, source)
    backbone.load_state_dict(converted, strict=True)
    logger.info("%s: torchvision ImageNet weights converted for the atrous backbone (%d tensors; unused: %s)",
                source, report.loaded, ", ".join(f"{p}.*" for p in _prefixes(report.unexpected)) or "none")
    return report
