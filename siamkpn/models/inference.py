"""Inference-time form of a SiamKPN model: same `template / template_kernels / track` API, fewer operations.

`prepare_for_inference(model)` returns a new module built from a deep copy (the caller's model is never
touched) in which
- every BatchNorm is folded into the convolution before it (backbone, neck, head ConvBN), in float64;
- the head's search side is packed: for one search crop the L levels x B branches (heatmap, offsets,
  objsize) of every stage run as one grouped 3x3 convolution and one depthwise correlation, and the
  per-level heads plus the level fusion (softmax weights or mean) become one grouped 1x1 convolution and
  one dense 1x1 output convolution (the fusion weights folded into it); batches (hp-search lanes) run the
  same weights unit by unit, which is faster there;
- only the last stage's heads run unless `all_stages` (the tracker reads only the last stage);
- everything runs under `torch.inference_mode`, ignoring a caller's autocast (on CUDA also with cuDNN
  autotuning, and without TF32 in exact mode).
All of that is exact up to float rounding ("exact mode"). `fast=True` adds bfloat16 weights and activations
(channels-last backbone and neck on a CPU; the output layer stays float32; `fast_scope="backbone"` keeps the
correlations and heads float32 too)
on CUDA and on CPUs with native bf16 (AVX512-BF16 or AMX, detected by `siamkpn.utils.device`); other CPUs
emulate bf16 far slower than float32, so there it stays float32 and says so, naming the faster path there
(int8 under ONNX Runtime: `siamkpn-export-onnx --int8`, backend onnx). `fast_dtype=torch.float16`
picks float16 instead (same speed on CUDA tensor cores, ~8x smaller error on the reference fixtures, but a
65504 range). `compile=True` wraps the search side in `torch.compile` (CUDA graphs) on CUDA only.
`describe(model)` lists what was applied.
"""
from __future__ import annotations

import contextlib
import copy
import logging
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from siamkpn.models.head import BRANCHES, MultiKPN
from siamkpn.models.xcorr import xcorr_depthwise
from siamkpn.utils.device import cpu_capability, cpu_has_native_bf16

__all__ = ["InferenceModel", "prepare_for_inference", "describe", "fold_batchnorm"]

logger = logging.getLogger(__name__)

Features = Union[torch.Tensor, List[torch.Tensor]]
OUTPUT_CHANNELS = {"heatmap": 1, "offsets": 2, "objsize": 2}
FAST_SCOPES = ("backbone", "all")  # what fast mode's reduced precision covers (the head stays float32 with "backbone")


def _fused(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv with bias computing bn(conv(x)) in eval mode; the folding itself runs in float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    if conv.out_channels != bn.num_features:
        raise ValueError(f"conv has {conv.out_channels} outputs but the BatchNorm after it {bn.num_features}")
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    bias = -bn.running_mean.double() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.double() * scale
    if bn.bias is not None:
        bias = bias + bn.bias.double()
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    dtype, device = conv.weight.dtype, conv.weight.device
    fused.weight = nn.Parameter((conv.weight.double() * scale.reshape(-1, 1, 1, 1)).to(dtype), requires_grad=False)
    fused.bias = nn.Parameter(bias.to(dtype), requires_grad=False)
    return fused.to(device)


def _conv_before(module: nn.Module, bn_name: str) -> Optional[str]:
    """Name of the conv whose output `bn_name` normalises: conv/bn, convN/bnN, or the previous Sequential entry."""
    if isinstance(module, nn.Sequential) and bn_name.isdigit():
        return str(int(bn_name) - 1) if int(bn_name) > 0 else None
    if bn_name.startswith("bn"):
        return "conv" + bn_name[2:]
    return None


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every BatchNorm2d of `module` (in place) into its convolution; returns how many were folded.

    Raises ValueError naming the BatchNorm when one does not follow a Conv2d in a known pattern.
    """
    count = 0
    for parent_name, parent in list(module.named_modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, nn.BatchNorm2d):
                continue
            conv_name = _conv_before(parent, name)
            conv = getattr(parent, conv_name, None) if conv_name is not None else None
            if not isinstance(conv, nn.Conv2d):
                where = f"{parent_name}.{name}" if parent_name else name
                raise ValueError(f"BatchNorm '{where}' does not follow a Conv2d; cannot fold it")
            setattr(parent, conv_name, _fused(conv, child))
            setattr(parent, name, nn.Identity())
            count += 1
    return count


def _cat(tensors: Sequence[torch.Tensor], dim: int) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors), dim)


def _level_heads(head: nn.Module) -> List[nn.Module]:
    return [getattr(head, f"kpn{i}") for i in range(head.levels)] if isinstance(head, MultiKPN) else [head]


def _fusion_weights(head: nn.Module, branches: Sequence[str]) -> Dict[str, List[float]]:
    """Per branch, the weight of each level in the fused output (softmax, mean, or 1 for one level)."""
    if not isinstance(head, MultiKPN):
        return {b: [1.0] for b in branches}
    if head.weighted:
        return {b: F.softmax(getattr(head, f"{b}_weight").detach().double(), 0).tolist() for b in branches}
    return {b: [1.0 / head.levels] * head.levels for b in branches}


def _grouped(convs: Sequence[nn.Conv2d], groups: int, padding: int) -> nn.Conv2d:
    """One grouped convolution whose output channels are `convs`' outputs in order."""
    weight = torch.cat([c.weight.detach() for c in convs], 0)
    out = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], weight.shape[-1], padding=padding, groups=groups)
    out.weight = nn.Parameter(weight.clone(), requires_grad=False)
    out.bias = nn.Parameter(torch.cat([c.bias.detach() for c in convs], 0).clone(), requires_grad=False)
    return out


class PackedSearchHead(nn.Module):
    """The search side of a BN-folded MultiKPN/DepthwiseKPN as grouped convolutions over all (level, branch) units.

    Shapes: level features [B, C, 31, 31] each, packed kernels [B, U*H, 5, 5] per stage (U = levels x
    branches, level-major) -> per stage a dict of fused outputs [B, 1 or 2, 31, 31].
    """

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        if not self.can_pack(head):
            raise ValueError("the head's levels differ in width; PackedSearchHead needs equal widths")
        kpns = _level_heads(head)
        self.levels = len(kpns)
        self.branches = [name for name in BRANCHES if hasattr(kpns[0], name)]
        units = [getattr(k, b) for k in kpns for b in self.branches]
        self.stack = units[0].stack
        self.hidden = hid = units[0].x_conv1.conv.out_channels
        stages = range(1, self.stack + 1)
        self.conv1 = _grouped([u.x_conv1.conv for u in units], self.levels, padding=1)
        self.convs = nn.ModuleList(_grouped([getattr(u, f"x_conv{s}").conv for u in units], len(units), padding=1)
                                   for s in stages[1:])
        self.hiddens = nn.ModuleList(_grouped([getattr(u, f"head{s}")[0].conv for u in units], len(units), padding=0)
                                     for s in stages)
        self.splits = [OUTPUT_CHANNELS[b] for b in self.branches]
        first = {b: sum(self.splits[:i]) for i, b in enumerate(self.branches)}  # first output channel per branch
        fusion = _fusion_weights(head, self.branches)
        self.outs = nn.ModuleList()
        for s in stages:  # the level fusion folded into one dense 1x1 convolution over all units
            weight = torch.zeros(sum(self.splits), len(units) * hid, 1, 1, dtype=torch.float64)
            bias = torch.zeros(sum(self.splits), dtype=torch.float64)
            for u, unit in enumerate(units):
                level, name = u // len(self.branches), self.branches[u % len(self.branches)]
                last, w = getattr(unit, f"head{s}")[1], fusion[name][level]
                rows = slice(first[name], first[name] + OUTPUT_CHANNELS[name])
                weight[rows, u * hid:(u + 1) * hid] = last.weight.double() * w
                bias[rows] += last.bias.double() * w
            out = nn.Conv2d(len(units) * hid, sum(self.splits), 1)
            out.weight, out.bias = nn.Parameter(weight.float()), nn.Parameter(bias.float())
            self.outs.append(out.requires_grad_(False))

    @staticmethod
    def can_pack(head: nn.Module) -> bool:
        """True when every (level, branch) unit has the same input and hidden width (the published configs)."""
        shapes = {tuple(getattr(k, b).x_conv1.conv.weight.shape)
                  for k in _level_heads(head) for b in BRANCHES if hasattr(k, b)}
        return len(shapes) == 1

    def strip_search_side(self, head: nn.Module) -> None:
        """Drop the packed modules (x_conv*, head*) from `head`, which then keeps only its template side."""
        for kpn in _level_heads(head):
            for branch in self.branches:
                for s in range(1, self.stack + 1):
                    delattr(getattr(kpn, branch), f"x_conv{s}")
                    delattr(getattr(kpn, branch), f"head{s}")

    def _forward_units(self, kernels: Sequence[torch.Tensor], xfs: Sequence[torch.Tensor],
                       all_stages: bool) -> Dict[str, List[torch.Tensor]]:
        """The same weights unit by unit: for batches (hp-search lanes) the packed tensors outgrow the caches
        and the grouped convolution is slower (measured at K=8: 0.8x), so run slices of the packed weights."""
        hid, fused = self.hidden, [None] * self.stack
        for u in range(len(self.branches) * self.levels):
            rows = slice(u * hid, (u + 1) * hid)
            feature = xfs[u // len(self.branches)]
            for s in range(self.stack):
                conv = self.conv1 if s == 0 else self.convs[s - 1]
                searched = F.relu(F.conv2d(feature, conv.weight[rows], conv.bias[rows], padding=1), inplace=True)
                feature = xcorr_depthwise(F.pad(searched, (2, 2, 2, 2)), kernels[s][:, rows])
                if all_stages or s == self.stack - 1:
                    hidden = self.hiddens[s]
                    h = F.relu(F.conv2d(feature, hidden.weight[rows], hidden.bias[rows]), inplace=True)
                    out_w = self.outs[s].weight
                    part = F.conv2d(h.to(out_w.dtype), out_w[:, rows])
                    fused[s] = part if fused[s] is None else fused[s] + part
        per_stage = [self._split(f + self.outs[s].bias.reshape(1, -1, 1, 1)) for s, f in enumerate(fused)
                     if f is not None]
        return {b: [o[b] for o in per_stage] for b in self.branches}

    def _split(self, out: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(self.branches, torch.split(out, self.splits, 1)))

    def _outputs(self, stage: int, feature: torch.Tensor) -> Dict[str, torch.Tensor]:
        hidden = F.relu(self.hiddens[stage](feature), inplace=True)
        out_conv = self.outs[stage]
        # float32 output layer in bf16/fp16 mode: in bf16, objsize (pixels) would lose ~1 px at 128-255
        return self._split(out_conv(hidden.to(out_conv.weight.dtype)))

    def forward(self, kernels: Sequence[torch.Tensor], xfs: Sequence[torch.Tensor],
                all_stages: bool = False) -> Dict[str, List[torch.Tensor]]:
        if xfs[0].shape[0] > 1:
            return self._forward_units(kernels, xfs, all_stages)
        feature = _cat(xfs, 1)
        per_stage = []
        for s in range(self.stack):
            conv = self.conv1 if s == 0 else self.convs[s - 1]
            searched = F.pad(F.relu(conv(feature), inplace=True), (2, 2, 2, 2))
            feature = xcorr_depthwise(searched, kernels[s])
            if all_stages or s == self.stack - 1:
                per_stage.append(self._outputs(s, feature))
        return {b: [o[b] for o in per_stage] for b in self.branches}


class InferenceModel(nn.Module):
    """A prepared SiamKPN model: `template(z)`, `template_kernels(zf)`, `track(zf, x, kernels=None)`, `extract(x)`.

    `track` returns {'heatmap', 'offsets', 'objsize'} lists holding only the last stage unless
    `all_stages`; offsets is None when the model has no offsets head. Outputs are float32.
    """

    def __init__(self, model: nn.Module, fast: bool = False, device: Optional[Union[str, torch.device]] = None,
                 all_stages: bool = False, channels_last: bool = False, compile: bool = False,
                 fast_dtype: Optional[torch.dtype] = None, fast_scope: str = "all") -> None:
        super().__init__()
        if fast_scope not in FAST_SCOPES:
            raise ValueError(f"fast_scope must be one of {', '.join(FAST_SCOPES)}, got {fast_scope!r}")
        if not all(hasattr(model, a) for a in ("backbone", "kpn_head", "use_neck")):
            raise TypeError(f"expected a siamkpn ModelBuilder, got {type(model).__name__}")
        param = next(model.parameters())
        self.device = torch.device(device) if device is not None else param.device
        self.all_stages = all_stages
        self.applied: List[str] = []
        work = copy.deepcopy(model).eval().requires_grad_(False)
        folded = fold_batchnorm(work)
        self.applied.append(f"BatchNorm folded into {folded} convolutions (float64 folding)")
        self.backbone = work.backbone
        self.neck = work.neck if work.use_neck else None
        self.head = work.kpn_head  # template side (kernels), BN folded; the search side when it cannot be packed
        self.packed = PackedSearchHead(self.head) if PackedSearchHead.can_pack(self.head) else None
        if self.packed is not None:
            self.packed.strip_search_side(self.head)
            self.applied.append(f"head search side packed: {self.packed.levels} level(s) x "
                                f"{len(self.packed.branches)} branches -> grouped convolutions, "
                                "level fusion folded into the output conv (batches > 1: unit by unit)")
        else:
            self.applied.append("head search side not packed (levels differ in width): BN-folded modules")
        self.applied.append("head outputs: every stage" if all_stages else "head outputs: last stage only")
        self.applied.append("template kernels cached by the caller (template_kernels) and inference_mode")
        self.dtype = self._choose_dtype(fast, fast_dtype)
        self.to(self.device)
        # the dtype of the head (kernels, correlations, heat map / offsets / size layers)
        self.head_dtype = torch.float32 if fast_scope == "backbone" else self.dtype
        if self.dtype != torch.float32:
            self.to(self.dtype)
            if self.head_dtype == torch.float32:
                # bf16 in the correlation and heads more than doubles the heat-map error (quick-start model, real
                # crops: 0.26% of its range with them in float32, 0.65% without), at 1.5x the time on AMX
                self.head.float()
                if self.packed is not None:
                    self.packed.float()
                self.applied.append(f"fast mode scope: backbone and neck in {str(self.dtype)[6:]}, "
                                    "correlations and heads float32")
            elif self.packed is not None:
                self.packed.outs.float()
                self.applied.append(f"fast mode scope: everything in {str(self.dtype)[6:]} but the output layer")
        # oneDNN's bf16 convolutions are fast in NHWC only (R50 3-stage search side, 1 thread, AMX CPU: 1.04 s
        # contiguous vs 0.46 s channels-last; float32 2.3 s either way), so a CPU bf16/fp16 model always uses it
        self.channels_last = bool(channels_last) or (self.dtype != torch.float32 and self.device.type == "cpu")
        if self.channels_last:  # the backbone and neck; the head gets contiguous features (see features())
            self.backbone.to(memory_format=torch.channels_last)
            if self.neck is not None:
                self.neck.to(memory_format=torch.channels_last)
        self.applied.append(f"channels_last: {'on (backbone and neck)' if self.channels_last else 'off'}")
        self._search = self.packed
        if compile:
            if self.device.type == "cuda" and self.packed is not None:
                self._search = torch.compile(self.packed, mode="reduce-overhead", dynamic=False)
                self.applied.append("torch.compile (reduce-overhead: CUDA graphs) on the search side")
            else:
                self.applied.append("torch.compile requested but skipped: GPU and packed head only")

    def _choose_dtype(self, fast: bool, fast_dtype: Optional[torch.dtype]) -> torch.dtype:
        if not fast:
            self.applied.append("dtype float32 (exact mode)")
            return torch.float32
        native = self.device.type == "cuda" or (self.device.type == "cpu" and cpu_has_native_bf16())
        dtype = fast_dtype if fast_dtype is not None else (torch.bfloat16 if native else torch.float32)
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"fast_dtype must be torch.bfloat16, torch.float16 or torch.float32, got {dtype}")
        if dtype == torch.float32:
            cap = cpu_capability().summary() if self.device.type == "cpu" else self.device.type
            note = (f"fast mode: no native bf16 on this {self.device.type} ({cap}); staying float32 (the fast path "
                    "here: int8 under ONNX Runtime, siamkpn-export-onnx --int8 then backend onnx with fast mode)")
            logger.info(note)
            self.applied.append(note if fast_dtype is None else "fast mode: float32 as requested")
            return dtype
        slow = self.device.type == "cpu" and not (native and dtype == torch.bfloat16)
        self.applied.append(f"fast mode: {str(dtype)[6:]} weights and activations"
                            + (" (forced on a CPU that emulates it: slow)" if slow else ""))
        return dtype

    def _context(self) -> contextlib.ExitStack:
        """inference_mode without autocast (the dtype is this model's choice, not a caller's autocast);
        on CUDA also cuDNN autotuning, and no TF32 in exact mode (its 10-bit mantissa leaves the tolerances)."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(torch.autocast(self.device.type, enabled=False))
        if self.device.type == "cuda":
            stack.enter_context(torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False,
                                                           allow_tf32=self.dtype != torch.float32))
        return stack

    def _input(self, img: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return img.to(device=self.device, dtype=self.dtype, memory_format=fmt)

    def features(self, img: torch.Tensor) -> Features:
        """Backbone + neck features without the inference context (for graph export and callers holding it),
        in the head's dtype and layout."""
        feats = self.backbone(img)
        feats = self.neck(feats) if self.neck is not None else feats
        if self.head_dtype == self.dtype and not self.channels_last:
            return feats
        if isinstance(feats, (list, tuple)):
            return [f.to(self.head_dtype).contiguous() for f in feats]
        return feats.to(self.head_dtype).contiguous()

    def packed_kernels(self, zf: Features) -> List[torch.Tensor]:
        """The packed per-stage correlation kernels of `zf` without the inference context (packed heads only)."""
        if self.packed is None:
            raise ValueError("the head's levels differ in width: it has no packed kernels")
        kernels = self.head.kernels(zf)
        per_level = kernels if isinstance(kernels, list) else [kernels]
        return [_cat([k[b][s] for k in per_level for b in self.packed.branches], 1).contiguous()
                for s in range(self.packed.stack)]

    def extract(self, img: torch.Tensor) -> Features:
        """Backbone + neck features of a batch of crops (float, raw 0..255 BGR, NCHW)."""
        with self._context():
            return self.features(self._input(img))

    def template(self, z: torch.Tensor) -> Features:
        """Features of the exemplar crop(s) [B,3,127,127]."""
        return self.extract(z)

    def template_kernels(self, zf: Features) -> List[torch.Tensor]:
        """One packed correlation kernel [B, U*H, 5, 5] per stage; compute once per (re-)initialisation."""
        with self._context():
            return self.head.kernels(zf) if self.packed is None else self.packed_kernels(zf)

    def track(self, zf: Features, x: torch.Tensor, kernels: Optional[List[torch.Tensor]] = None
              ) -> Dict[str, Optional[List[torch.Tensor]]]:
        """Head outputs for search crop(s) x [B,3,255,255]; `kernels` from `template_kernels(zf)` (else recomputed)."""
        with self._context():
            if kernels is None:
                kernels = self.template_kernels(zf)
            xf = self.extract(x)
            if self.packed is None:
                out = self.head.search(kernels, xf)
                keep = slice(None) if self.all_stages else slice(-1, None)
                return {b: None if v is None else [t.float() for t in v[keep]] for b, v in out.items()}
            xfs = xf if isinstance(xf, (list, tuple)) else [xf]
            out = self._search(kernels, xfs, self.all_stages)
            if self._search is not self.packed:  # CUDA-graph outputs are overwritten by the next replay
                out = {k: [t.clone() for t in v] for k, v in out.items()}
        return {b: out.get(b) for b in BRANCHES}

    def forward(self, *args, **kwargs):
        raise RuntimeError("an InferenceModel only tracks: call template / template_kernels / track")


def prepare_for_inference(model: nn.Module, fast: bool = False, device: Optional[Union[str, torch.device]] = None,
                          all_stages: bool = False, channels_last: bool = False, compile: bool = False,
                          fast_dtype: Optional[torch.dtype] = None, fast_scope: str = "all") -> InferenceModel:
    """The inference form of a ModelBuilder (deep copy; see the module docstring for what is applied).

    Args:
        fast: bf16 where the device computes it natively (else float32 with a logged note); see fast_dtype.
        device: where to run (default: the model's device).
        all_stages: return every stage's outputs (default: the last one, which is all the tracker reads).
        channels_last: NHWC activations in the backbone and neck; off by default in float32 (on the 2-core AVX2
            machines here it measured equal with one thread and inconsistent with two), always on for bf16/fp16
            on a CPU (oneDNN's reduced-precision convolutions are fast in NHWC only).
        compile: torch.compile with CUDA graphs on the search side (CUDA only).
        fast_dtype: the fast-mode dtype instead of detecting it: torch.bfloat16, torch.float16 or torch.float32.
        fast_scope: "all" (default): reduced precision everywhere but the output layer; "backbone": in the
            backbone and neck only, correlations and heads float32 (half the heat-map error, 1.5x slower on the
            AMX CPU measured: SiamKPN-3s 2.6x instead of 3.9x the published path). Both stay within the 0.005
            accuracy budget on the quick-start model (20 OTB-style + 12 VOT-style held-out videos).
    """
    return InferenceModel(model, fast, device, all_stages, channels_last, compile, fast_dtype, fast_scope)


def describe(model: nn.Module) -> str:
    """One line per optimisation that `model` carries (or says that it is a plain module)."""
    applied = getattr(model, "applied", None)
    if applied is None:
        return f"{type(model).__name__}: plain eager module (no inference preparation)"
    return "\n".join(f"- {line}" for line in [f"device {model.device}, dtype {str(model.dtype)[6:]}"] + applied)

