"""SiamKPN tracker: crop, model, then the keypoint decision (top-k heat-map peaks, scale/aspect
penalty, cosine window, smoothed size update), as the published SiamKPN test code computes it.

`SiamKPNTracker` tracks one target. `BatchSiamKPNTracker` tracks K lanes in lockstep with one batched
forward pass per step: lanes with their own hyper-parameters (PENALTY_K, WINDOW_INFLUENCE, LR) on one image
(the search: `init_lanes` / `track_lanes`), or lanes with their own images (K videos at once, each lane its own
template: `init_lanes_images` / `track_lanes_images`, built by `build_video_batch_tracker`). Both share every
step below, so a single lane reproduces the single tracker exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

import numpy as np
import torch

from siamkpn.tracker.subwindow import check_image, get_subwindow
from toolkit.errors import BadValue

__all__ = ["SiamKPNTracker", "BatchSiamKPNTracker", "TrackState", "LaneParams", "video_batch_tracker"]

Box = Sequence[float]


@dataclass
class TrackState:
    """What a tracker carries between frames (float64 centre x, y and size w, h, 0-based pixels)."""

    center: np.ndarray
    size: np.ndarray
    channel_average: np.ndarray
    template: Any = None


@dataclass(frozen=True)
class LaneParams:
    """The hyper-parameters that may differ between lanes of a batched search."""

    penalty_k: float
    window_influence: float
    lr: float

    @classmethod
    def from_cfg(cls, cfg) -> "LaneParams":
        return cls(float(cfg.TRACK.PENALTY_K), float(cfg.TRACK.WINDOW_INFLUENCE), float(cfg.TRACK.LR))


def _change(r: np.ndarray) -> np.ndarray:
    return np.maximum(r, 1.0 / r)


def _sz(w, h):
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def _sigmoid(logits: torch.Tensor) -> torch.Tensor:
    """float32 sigmoid through torch's element-by-element kernel (a strided view avoids the SIMD one).

    The SIMD kernel can differ by one ulp, and the published numbers match the element-wise one.
    """
    return torch.sigmoid(torch.stack([logits, logits], 1)[:, 0])


def _clip(value, low, high):
    # Python's min/max in this order, on purpose: a NaN size ends up at `low` (10), a NaN centre at 0.
    return max(low, min(value, high))


def _concat_templates(templates: Sequence[Any]) -> Any:
    """Stack per-lane template features (tensors, or lists/tuples/dicts of them, or None) along dim 0."""
    first = templates[0]
    if isinstance(first, torch.Tensor):
        return first if len(templates) == 1 else torch.cat(list(templates), 0)
    if first is None:
        return None
    if isinstance(first, (list, tuple)):
        return type(first)(_concat_templates([t[i] for t in templates]) for i in range(len(first)))
    if isinstance(first, Mapping):
        return {k: _concat_templates([t[k] for t in templates]) for k in first}
    raise TypeError(f"cannot batch template features of type {type(first).__name__}")


def _template_of(template: Any, i: int) -> Any:
    """Batch entry `i` of template features (the inverse of `_concat_templates`), kept as a batch of one."""
    if isinstance(template, torch.Tensor):
        return template[i:i + 1]
    if template is None:
        return None
    if isinstance(template, (list, tuple)):
        return type(template)(_template_of(t, i) for t in template)
    if isinstance(template, Mapping):
        return {k: _template_of(t, i) for k, t in template.items()}
    raise TypeError(f"cannot split template features of type {type(template).__name__}")


class _KeypointTrackerBase:
    """Shared steps: template crop, search crop, batched forward and the per-lane box decision."""

    def __init__(self, model: torch.nn.Module, cfg) -> None:
        track, train = cfg.TRACK, cfg.TRAIN
        self.model = model.eval()
        param = next(model.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        self.exemplar_size = int(track.EXEMPLAR_SIZE)
        self.instance_size = int(track.INSTANCE_SIZE)
        self.context_amount = float(track.CONTEXT_AMOUNT)
        self.stride = int(train.STRIDE)
        self.mink = int(32 / self.stride)
        self.topk = self.mink * 4
        self.threshold = np.float32(track.TH)  # compared with float32 scores, as torch does
        self.use_offsets = bool(track.OFFSETS)
        self.normwh = bool(train.NORMWH)
        self.score_size = (self.instance_size - self.exemplar_size) // self.stride + 1 + int(track.BASE_SIZE)
        hanning = np.hanning(self.score_size)
        self.window = np.outer(hanning, hanning).reshape(-1)
        half = self.score_size // 2
        idx = np.arange(self.score_size)
        grid_x = np.tile(self.stride * (idx - half), self.score_size)
        grid_y = np.repeat(self.stride * (idx - half), self.score_size)
        self.grid = np.stack([grid_x, grid_y]).astype(np.float32)  # float32: the candidate centre is float32

    # ------------------------------------------------------------------ crops and model
    def _context_size(self, size: np.ndarray) -> float:
        total = np.sum(size)
        return np.sqrt((size[0] + self.context_amount * total) * (size[1] + self.context_amount * total))

    def _new_state(self, img: np.ndarray, box: Box) -> Tuple[TrackState, np.ndarray]:
        """Initial state for `box` (x, y, w, h, 0-based) and its template crop (uint8 HxWx3)."""
        check_image(img)
        if len(box) != 4:
            raise BadValue(f"init box must be [x, y, w, h], got {list(box)}")
        x, y, w, h = (float(v) for v in box)
        if not (w > 0 and h > 0) or not all(math.isfinite(v) for v in (x, y, w, h)):
            raise BadValue(f"init box needs a finite position and positive width and height, got {list(box)}")
        center = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
        size = np.array([w, h])
        s_z = round(self._context_size(size))
        channel_average = np.mean(img, axis=(0, 1))
        crop = get_subwindow(img, center, self.exemplar_size, s_z, channel_average)
        return TrackState(center, size, channel_average), crop

    def _search_crop(self, img: np.ndarray, state: TrackState) -> Tuple[np.ndarray, float]:
        """Search crop (uint8 HxWx3) around the current state, and its scale (model px per image px)."""
        s_z = self._context_size(state.size)
        scale_z = self.exemplar_size / s_z
        s_x = s_z * (self.instance_size / self.exemplar_size)
        crop = get_subwindow(img, state.center, self.instance_size, round(s_x), state.channel_average)
        return crop, scale_z

    def _to_tensor(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        batch = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)
        return torch.from_numpy(batch).to(device=self.device, dtype=self.dtype)

    def _template(self, crops: Sequence[np.ndarray]) -> Tuple[Any, Any]:
        """(template features, head kernels or None): the kernels are computed once per initialisation."""
        with torch.inference_mode():
            zf = self.model.template(self._to_tensor(crops))
            kernels = self.model.template_kernels(zf) if hasattr(self.model, "template_kernels") else None
        return zf, kernels

    def _forward(self, template: Tuple[Any, Any], crops: Sequence[np.ndarray]) -> Dict[str, torch.Tensor]:
        """Last-stage outputs for a batch of search crops, float32 on the CPU: [B,1,N,N] / [B,2,N,N]."""
        zf, kernels = template
        with torch.inference_mode():
            x = self._to_tensor(crops)
            out = self.model.track(zf, x) if kernels is None else self.model.track(zf, x, kernels=kernels)
        if self.use_offsets and not out.get("offsets"):
            raise BadValue("TRACK.OFFSETS is set but the model has no offsets head (TRAIN.OFFSETS is False)")
        names = ("heatmap", "offsets", "objsize") if self.use_offsets else ("heatmap", "objsize")
        return {k: out[k][-1].detach().float().cpu() for k in names}

    # ------------------------------------------------------------------ decision
    def _candidates(self, outputs: Dict[str, torch.Tensor], lane: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top heat-map cells of batch entry `lane`: boxes [4, n] (crop px from the centre), scores, cell indices."""
        logits = outputs["heatmap"][lane].reshape(-1)
        top, rank = logits.sort(descending=True)
        score = _sigmoid(top[: self.topk]).numpy()
        num = max(self.mink, min(int((score > self.threshold).sum()), self.topk))
        rank = rank[:num].numpy()
        objsize = outputs["objsize"][lane].reshape(2, -1).numpy()[:, rank]
        boxes = np.zeros((4, num))
        if self.use_offsets:
            off = outputs["offsets"][lane].reshape(2, -1).numpy()[:, rank]
            boxes[:2] = off * np.float32(64) + self.grid[:, rank]  # float32 arithmetic, then widened
        else:
            boxes[:2] = self.grid[:, rank]
        if self.normwh:
            with np.errstate(over="ignore"):  # a barely trained model's huge log-size is inf, as published
                boxes[2:] = np.exp(objsize) * np.float32(64)
        else:
            boxes[2:] = objsize
        return boxes, score[:num], rank

    def _decide(self, state: TrackState, params: LaneParams, outputs: Dict[str, torch.Tensor], lane: int,
                scale_z: float, img_shape: Tuple[int, ...]) -> Dict[str, Any]:
        """Pick the best candidate of batch entry `lane`, update `state` in place, return the output dict."""
        boxes, score, rank = self._candidates(outputs, lane)
        # a negative size output gives NaN, an infinite one inf or NaN, as published
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return self._update(state, params, boxes, score, rank, scale_z, img_shape)

    def _update(self, state: TrackState, params: LaneParams, boxes: np.ndarray, score: np.ndarray,
                rank: np.ndarray, scale_z: float, img_shape: Tuple[int, ...]) -> Dict[str, Any]:
        """Scale/aspect penalty and cosine window choose a candidate; the size moves by lr towards it."""
        size = state.size
        s_c = _change(_sz(boxes[2], boxes[3]) / _sz(size[0] * scale_z, size[1] * scale_z))
        r_c = _change((size[0] / size[1]) / (boxes[2] / boxes[3]))
        penalty = np.exp(-(r_c * s_c - 1) * params.penalty_k)
        pscore = penalty * score * (1 - params.window_influence) + self.window[rank] * params.window_influence
        best = int(np.argmax(pscore))

        box = boxes[:, best] / scale_z
        lr = penalty[best] * score[best] * params.lr
        cx = box[0] + state.center[0]
        cy = box[1] + state.center[1]
        width = size[0] * (1 - lr) + box[2] * lr
        height = size[1] * (1 - lr) + box[3] * lr
        img_h, img_w = img_shape[:2]
        cx, cy = _clip(cx, 0, img_w), _clip(cy, 0, img_h)
        width, height = _clip(width, 10, img_w), _clip(height, 10, img_h)
        state.center = np.array([cx, cy], dtype=np.float64)
        state.size = np.array([width, height], dtype=np.float64)
        return {
            "bbox": [float(cx - width / 2), float(cy - height / 2), float(width), float(height)],
            "best_score": float(score[best]),
        }


class SiamKPNTracker(_KeypointTrackerBase):
    """Single-target SiamKPN tracker: `init(img, [x, y, w, h])`, then `track(img)` per frame.

    Args:
        model: a ModelBuilder (or anything with `template(z)` and `track(zf, x)`); its parameters'
            device and dtype are used for the crops.
        cfg: the experiment config (reads TRACK.* and TRAIN.STRIDE / TRAIN.NORMWH).
    """

    name = "siamkpn_tracker"

    def __init__(self, model: torch.nn.Module, cfg) -> None:
        super().__init__(model, cfg)
        self.params = LaneParams.from_cfg(cfg)
        self.state: TrackState = None  # type: ignore[assignment]

    def init(self, img: np.ndarray, bbox: Box) -> None:
        """Start tracking the box [x, y, w, h] (0-based) in the BGR uint8 image `img`."""
        self.state, crop = self._new_state(img, bbox)
        self.state.template = self._template([crop])

    def track(self, img: np.ndarray) -> Dict[str, Any]:
        """Locate the target in `img`: {'bbox': [x, y, w, h], 'best_score': float}."""
        if self.state is None:
            raise RuntimeError("track() called before init()")
        check_image(img)
        crop, scale_z = self._search_crop(img, self.state)
        outputs = self._forward(self.state.template, [crop])
        return self._decide(self.state, self.params, outputs, 0, scale_z, img.shape)


class BatchSiamKPNTracker(_KeypointTrackerBase):
    """K SiamKPN trackers (lanes 0..K-1, one per config) sharing one model and one forward pass.

    The configs may differ only in TRACK.PENALTY_K, TRACK.WINDOW_INFLUENCE and TRACK.LR. Lanes share one image
    (`init_lanes` / `track_lanes`: the search) or each have their own (`init_lanes_images` / `track_lanes_images`:
    K videos at once). With the ONNX backend a batch runs sample by sample (the exported graphs have batch 1).
    """

    _SHARED_KEYS = ("EXEMPLAR_SIZE", "INSTANCE_SIZE", "BASE_SIZE", "CONTEXT_AMOUNT", "TH", "OFFSETS", "FAST")

    def __init__(self, model: torch.nn.Module, cfgs: Sequence[Any]) -> None:
        if not cfgs:
            raise ValueError("BatchSiamKPNTracker needs at least one config")
        super().__init__(model, cfgs[0])
        for i, cfg in enumerate(cfgs[1:], 1):
            for key in self._SHARED_KEYS:
                if cfg.TRACK[key] != cfgs[0].TRACK[key]:
                    raise ValueError(f"lane {i}: TRACK.{key} = {cfg.TRACK[key]!r} differs from lane 0's "
                                     f"{cfgs[0].TRACK[key]!r}; lanes may differ only in PENALTY_K/WINDOW_INFLUENCE/LR")
            for key in ("STRIDE", "NORMWH"):
                if cfg.TRAIN[key] != cfgs[0].TRAIN[key]:
                    raise ValueError(f"lane {i}: TRAIN.{key} differs from lane 0's")
        self.params = [LaneParams.from_cfg(cfg) for cfg in cfgs]
        self.states: Dict[int, TrackState] = {}
        self._stacked: Tuple[Tuple[int, ...], Tuple[Any, ...], Any] = ((), (), None)

    @property
    def num_lanes(self) -> int:
        return len(self.params)

    def _check_lane(self, lane: int) -> None:
        if not 0 <= lane < self.num_lanes:
            raise KeyError(f"lane {lane} out of range 0..{self.num_lanes - 1}")

    def init_lanes(self, img: np.ndarray, boxes: Mapping[int, Box]) -> None:
        """(Re-)initialise each lane in `boxes` on `img`; lanes given the same box share one template."""
        by_box: Dict[Tuple[float, ...], List[int]] = {}
        for lane, box in boxes.items():
            self._check_lane(lane)
            by_box.setdefault(tuple(float(v) for v in box), []).append(lane)
        for box, lanes in by_box.items():
            state, crop = self._new_state(img, box)
            state.template = self._template([crop])
            for lane in lanes:
                self.states[lane] = TrackState(state.center.copy(), state.size.copy(), state.channel_average,
                                               state.template)

    def track_lanes(self, img: np.ndarray, lanes: Iterable[int]) -> Dict[int, Dict[str, Any]]:
        """Track every lane in `lanes` on `img` with one forward pass: {lane: {'bbox', 'best_score'}}."""
        return self._track_each({lane: img for lane in lanes}, "init_lanes()")

    def init_lanes_images(self, lanes: Mapping[int, Tuple[np.ndarray, Box]]) -> None:
        """(Re-)initialise each lane on its own image and box ({lane: (img, [x, y, w, h])}), one template pass."""
        if not lanes:
            return
        states, crops = {}, []
        for lane, (img, box) in lanes.items():
            self._check_lane(lane)
            states[lane], crop = self._new_state(img, box)
            crops.append(crop)
        template = self._template(crops)
        for i, (lane, state) in enumerate(states.items()):
            state.template = template if len(crops) == 1 else _template_of(template, i)
            self.states[lane] = state

    def track_lanes_images(self, images: Mapping[int, np.ndarray]) -> Dict[int, Dict[str, Any]]:
        """Track each lane on its own image ({lane: img}) with one forward pass: {lane: {'bbox', 'best_score'}}."""
        return self._track_each(images, "init_lanes_images()")

    def _track_each(self, images: Mapping[int, np.ndarray], init_call: str) -> Dict[int, Dict[str, Any]]:
        """One forward pass for the search crops of every lane in `images`, each cut from its lane's image."""
        lanes = list(images)
        if not lanes:
            return {}
        for lane in lanes:
            self._check_lane(lane)
            if lane not in self.states:
                raise RuntimeError(f"lane {lane} tracked before {init_call}")
            check_image(images[lane])
        crops, scales = zip(*(self._search_crop(images[lane], self.states[lane]) for lane in lanes))
        outputs = self._forward(self._batched_template(lanes), crops)
        return {lane: self._decide(self.states[lane], self.params[lane], outputs, i, scales[i], images[lane].shape)
                for i, lane in enumerate(lanes)}

    def _batched_template(self, lanes: List[int]) -> Any:
        """Template features of `lanes` stacked in order, cached while the lanes and templates stay the same."""
        templates = [self.states[lane].template for lane in lanes]
        cached_lanes, cached_templates, stacked = self._stacked
        if cached_lanes != tuple(lanes) or any(a is not b for a, b in zip(cached_templates, templates)):
            stacked = _concat_templates(templates)
            self._stacked = (tuple(lanes), tuple(templates), stacked)
        return stacked


def video_batch_tracker(model: torch.nn.Module, cfg, k: int) -> BatchSiamKPNTracker:
    """K lanes of one config over one model, each lane its own video (``toolkit.lanes.run_videos``)."""
    if k < 1:
        raise BadValue(f"a batch needs at least one lane, got {k}")
    return BatchSiamKPNTracker(model, [cfg] * k)
