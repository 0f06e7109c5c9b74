"""Procedural tracking videos: textured objects moving over cluttered, textured backgrounds.

Every video has one target (a shape filled with a texture), one to three moving distractors (some share
the target's shape or colours), static clutter made of the same kind of shapes, and optionally a camera
pan, an illumination change and an occluder that passes in front of the target. Objects move with
momentum, bounce at the frame border, change scale and aspect smoothly and sometimes change direction
abruptly. Everything is drawn from one numpy Generator, so a video is a pure function of its seed.

Boxes are integer pixel extents [x1, y1, x2, y2) (exclusive ends): the object covers pixel columns
x1..x2-1, so its centre in pixel coordinates is (x1 + x2 - 1) / 2.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .synthetic_draw import SHAPES, TEXTURES, appearance, background, paste, random_colors

__all__ = ["SceneConfig", "SyntheticVideo", "render_video", "TAGS", "SHAPES", "TEXTURES"]

TAGS = ("camera_motion", "illum_change", "motion_change", "size_change", "occlusion")


@dataclass
class SceneConfig:
    """Scene statistics; sizes and speeds are fractions of the frame's shorter side."""

    width: int = 320
    height: int = 240
    min_object: float = 0.10
    max_object: float = 0.30
    distractors: Tuple[int, int] = (1, 3)
    occlusion_prob: float = 0.5
    camera_motion_prob: float = 0.5
    illum_prob: float = 0.3
    max_speed: float = 0.03
    noise_sigma: float = 2.0


@dataclass
class SyntheticVideo:
    """Frames (uint8 BGR), target boxes [T,4], distractor boxes [T,D,4] with visible fractions, tags."""

    frames: List[np.ndarray]
    boxes: np.ndarray
    visible: np.ndarray
    distractor_boxes: np.ndarray
    distractor_visible: np.ndarray
    tags: Dict[str, np.ndarray]
    attributes: List[str] = field(default_factory=list)


class _Mover:
    """Position, scale and aspect of one object with momentum; integer box kept inside the frame."""

    def __init__(self, rng: np.random.Generator, cfg: SceneConfig, size: float) -> None:
        self.rng, self.cfg = rng, cfg
        self.short = min(cfg.width, cfg.height)
        self.base = np.log(size)
        self.log_s, self.v_s = self.base, 0.0
        self.aspect = self.aspect0 = rng.uniform(-0.6, 0.6)
        self.v_a = 0.0
        self.cx, self.cy = rng.uniform(0.25, 0.75) * cfg.width, rng.uniform(0.25, 0.75) * cfg.height
        self.v = rng.normal(0, 0.4, 2) * cfg.max_speed * self.short

    def size(self) -> Tuple[int, int]:
        s = np.exp(self.log_s)
        w = int(np.clip(round(s * np.exp(self.aspect / 2)), 8, self.cfg.width - 4))
        h = int(np.clip(round(s * np.exp(-self.aspect / 2)), 8, self.cfg.height - 4))
        return w, h

    def step(self) -> float:
        """Advance one frame; returns the change of velocity (pixels/frame)."""
        rng, vmax = self.rng, self.cfg.max_speed * self.short
        old = self.v.copy()
        if rng.random() < 0.02:  # abrupt change of direction
            self.v = rng.normal(0, 0.6, 2) * vmax
        else:
            self.v = 0.92 * self.v + rng.normal(0, 0.08, 2) * vmax
        speed = float(np.hypot(*self.v))
        if speed > vmax:
            self.v *= vmax / speed
        self.v_s = 0.9 * self.v_s + rng.normal(0, 0.006)
        self.log_s += self.v_s
        lo, hi = self.base - 0.45, self.base + 0.45
        if not lo <= self.log_s <= hi:
            self.log_s, self.v_s = float(np.clip(self.log_s, lo, hi)), -self.v_s
        self.v_a = 0.9 * self.v_a + rng.normal(0, 0.004)
        self.aspect = float(np.clip(self.aspect + self.v_a, self.aspect0 - 0.3, self.aspect0 + 0.3))
        self.cx, self.cy = self.cx + self.v[0], self.cy + self.v[1]
        w, h = self.size()
        for axis, (c, half, limit) in enumerate(((self.cx, w / 2, self.cfg.width), (self.cy, h / 2, self.cfg.height))):
            if c - half < 1 or c + half > limit - 1:
                self.v[axis] = abs(self.v[axis]) if c - half < 1 else -abs(self.v[axis])
                c = float(np.clip(c, half + 1, limit - 1 - half))
                if axis == 0:
                    self.cx = c
                else:
                    self.cy = c
        return float(np.hypot(*(self.v - old)))

    def box(self) -> np.ndarray:
        w, h = self.size()
        x1 = int(np.clip(round(self.cx - w / 2), 0, self.cfg.width - w))
        y1 = int(np.clip(round(self.cy - h / 2), 0, self.cfg.height - h))
        return np.array([x1, y1, x1 + w, y1 + h], np.float64)


def _visible(alpha: np.ndarray, covers: List[np.ndarray]) -> float:
    total = float(alpha.sum())
    if total <= 0:
        return 0.0
    seen = alpha.copy()
    for cover in covers:
        seen *= 1.0 - cover
    return float(seen.sum()) / total


class _Occluder:
    """An object that passes in front of the target once, across its box, during frames [start, start+length)."""

    def __init__(self, rng: np.random.Generator, num_frames: int) -> None:
        self.start = int(rng.integers(int(num_frames * 0.15), max(int(num_frames * 0.7), int(num_frames * 0.15) + 1)))
        self.length = int(rng.integers(max(5, num_frames // 8), max(6, num_frames // 4) + 1))
        self.horizontal = bool(rng.random() < 0.5)
        self.sign = 1.0 if rng.random() < 0.5 else -1.0
        self.across = rng.uniform(0.35, 0.6)  # size along the pass, relative to the target: partial occlusion
        self.along = rng.uniform(1.1, 1.4)
        self.jitter = rng.uniform(-0.15, 0.15)
        self.appearance = appearance(rng)

    def box(self, t: int, target: np.ndarray) -> Optional[np.ndarray]:
        if not self.start <= t < self.start + self.length:
            return None
        p = (t - self.start) / max(self.length - 1, 1)
        cx, cy = (target[0] + target[2]) / 2, (target[1] + target[3]) / 2
        tw, th = target[2] - target[0], target[3] - target[1]
        if not self.horizontal:  # same geometry with x and y exchanged
            cx, cy, tw, th = cy, cx, th, tw
        ow, oh = self.across * tw, self.along * th
        ox = cx + self.sign * (-(tw + ow) / 2 + p * (tw + ow))
        oy = cy + self.jitter * th
        box = np.array([ox - ow / 2, oy - oh / 2, ox + ow / 2, oy + oh / 2])
        return box if self.horizontal else box[[1, 0, 3, 2]]


def _attributes(boxes: np.ndarray, tags: Dict[str, np.ndarray], illum: bool, short: int) -> List[str]:
    """OTB-style attribute codes derived from the rendered motion."""
    size = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    aspect = np.log((boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1]))
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    speed = np.hypot(*np.diff(centre, axis=0).T) if len(boxes) > 1 else np.zeros(1)
    attrs = ["BC"]  # every video has clutter and distractors
    if illum:
        attrs.append("IV")
    if size.max() / size.min() > 1.5:
        attrs.append("SV")
    if tags["occlusion"].any():
        attrs.append("OCC")
    if np.ptp(aspect) > 0.3:
        attrs.append("DEF")
    if speed.max() > 0.025 * short:
        attrs.append("FM")
    return attrs


def render_video(rng: np.random.Generator, num_frames: int, cfg: Optional[SceneConfig] = None) -> SyntheticVideo:
    """Render one video of `num_frames` frames from `rng` (see the module docstring)."""
    cfg = cfg or SceneConfig()
    width, height = cfg.width, cfg.height
    short = min(width, height)
    margin = int(0.15 * short)
    canvas = background(rng, height + 2 * margin, width + 2 * margin)
    t_colors = random_colors(rng, 3, (0.5, 1.0), (0.45, 1.0))
    t_shape = SHAPES[rng.integers(len(SHAPES))]
    target_app = appearance(rng, t_colors, t_shape)
    target = _Mover(rng, cfg, rng.uniform(cfg.min_object, cfg.max_object) * short)
    movers, apps = [], []
    for i in range(int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))):
        if i == 0 and rng.random() < 0.5:  # a hard distractor: the target's shape and some of its colours
            colors = t_colors.copy()
            colors[rng.integers(3)] = random_colors(rng, 1, (0.5, 1.0), (0.45, 1.0))[0]
            apps.append(appearance(rng, colors, t_shape))
        else:
            apps.append(appearance(rng))
        movers.append(_Mover(rng, cfg, np.exp(target.base) * rng.uniform(0.6, 1.2)))
    occluder = _Occluder(rng, num_frames) if num_frames >= 10 and rng.random() < cfg.occlusion_prob else None
    pan = rng.random() < cfg.camera_motion_prob
    illum = rng.random() < cfg.illum_prob
    amp, period, phase = rng.uniform(0.15, 0.35), rng.uniform(30, 90), rng.uniform(0, 2 * np.pi)
    cam, cam_v = np.array([margin, margin], np.float64), np.zeros(2)
    # sensor noise: random windows of one noise field (drawing fresh noise every frame costs more than the rest)
    noise = rng.standard_normal((height + 32, width + 32, 3), dtype=np.float32) * np.float32(cfg.noise_sigma)

    frames, boxes, visible = [], np.zeros((num_frames, 4)), np.zeros(num_frames)
    d_boxes, d_visible = np.zeros((num_frames, len(movers), 4)), np.zeros((num_frames, len(movers)))
    tags = {tag: np.zeros(num_frames, np.int64) for tag in TAGS}
    gain_prev = None
    for t in range(num_frames):
        if t > 0:
            dv = target.step()
            tags["motion_change"][t] = dv > 0.3 * cfg.max_speed * short
            for m in movers:
                m.step()
            if pan:
                cam_v = np.clip(0.9 * cam_v + rng.normal(0, 0.4, 2), -3, 3)
                cam = np.clip(cam + cam_v, 0, 2 * margin)
                tags["camera_motion"][t] = np.hypot(*cam_v) > 0.5
        ox, oy = int(round(cam[0])), int(round(cam[1]))
        frame = canvas[oy:oy + height, ox:ox + width].copy()
        d_alpha = []
        for i, (m, app) in enumerate(zip(movers, apps)):
            d_boxes[t, i] = m.box()
            d_alpha.append(paste(frame, app, d_boxes[t, i]))
        boxes[t] = target.box()
        t_alpha = paste(frame, target_app, boxes[t])
        o_box = occluder.box(t, boxes[t]) if occluder is not None else None
        covers = [paste(frame, occluder.appearance, o_box)] if o_box is not None else []
        visible[t] = _visible(t_alpha, covers)
        tags["occlusion"][t] = visible[t] < 0.97
        for i in range(len(movers)):
            d_visible[t, i] = _visible(d_alpha[i], d_alpha[i + 1:] + [t_alpha] + covers)
        gain = 1.0 + amp * np.sin(2 * np.pi * t / period + phase) if illum else 1.0
        tags["illum_change"][t] = gain_prev is not None and abs(gain - gain_prev) > 0.004
        gain_prev = gain
        frame *= gain
        if cfg.noise_sigma > 0:
            dx, dy = rng.integers(0, 33, 2)
            frame += noise[dy:dy + height, dx:dx + width]
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        if t >= 5:
            ratio = np.sqrt(np.prod(boxes[t, 2:] - boxes[t, :2]) / np.prod(boxes[t - 5, 2:] - boxes[t - 5, :2]))
            tags["size_change"][t] = abs(np.log(ratio)) > 0.077
    return SyntheticVideo(frames, boxes, visible, d_boxes, d_visible, tags,
                          _attributes(boxes, tags, illum, short))
