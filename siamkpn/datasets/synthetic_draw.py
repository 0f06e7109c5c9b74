"""Drawing primitives of the synthetic videos: colours, textures, shape masks, pasting, backgrounds.

An object's look is a canonical (texture, mask) pair, warped onto its box every frame with sub-pixel
accuracy, so its appearance stays consistent while it moves and scales (it is trackable).
"""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

__all__ = ["SHAPES", "TEXTURES", "random_colors", "appearance", "paste", "background"]

SHAPES = ("ellipse", "rectangle", "triangle", "diamond", "star", "cross", "hexagon", "rounded")
TEXTURES = ("stripes", "checker", "dots", "noise", "rings", "gradient")
_CANON = 96  # side of the canonical texture/mask an object is warped from
_SUPER = 4  # mask supersampling for smooth edges


def random_colors(rng: np.random.Generator, n: int, sat: Tuple[float, float],
                  val: Tuple[float, float]) -> np.ndarray:
    """n random BGR colours (float32) with saturation and value drawn from the given ranges."""
    hsv = np.stack([rng.uniform(0, 180, n), rng.uniform(*sat, n) * 255, rng.uniform(*val, n) * 255], 1)
    return cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2BGR)[0].astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    grid = rng.random((cells, cells)).astype(np.float32)
    field_ = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return (field_ - field_.min()) / max(float(np.ptp(field_)), 1e-6)


def _texture(rng: np.random.Generator, kind: str, size: int, colors: np.ndarray) -> np.ndarray:
    """A size x size BGR float32 texture of `kind` in the given colours (3 x 3)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    if kind == "stripes":
        t = np.clip(np.sin(2 * np.pi * rng.uniform(1.5, 5) * u + rng.uniform(0, 6.3)) * 2, -1, 1) * 0.5 + 0.5
    elif kind == "checker":
        v = -xx * np.sin(theta) + yy * np.cos(theta)
        n = rng.uniform(2, 5)
        t = ((np.floor(u * n) + np.floor(v * n)) % 2).astype(np.float32)
    elif kind == "rings":
        r = np.hypot(xx - rng.uniform(0.3, 0.7), yy - rng.uniform(0.3, 0.7))
        t = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * r) * 2, -1, 1) * 0.5 + 0.5
    elif kind == "gradient":
        t = np.clip(u / max(float(u.max()), 1e-6), 0, 1)
    else:  # noise and dots start from smooth noise
        t = _smooth_noise(rng, size, size, int(rng.integers(3, 7)))
    tex = colors[0] * (1 - t[..., None]) + colors[1] * t[..., None]
    if kind in ("dots", "gradient"):
        for _ in range(int(rng.integers(3, 9))):
            c = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.circle(tex, c, int(rng.integers(size // 16, size // 6)), colors[2].tolist(), -1, cv2.LINE_AA)
    return tex + rng.normal(0, 4, tex.shape).astype(np.float32)


def _polygon(shape: str, rng: np.random.Generator) -> np.ndarray:
    """Outline of `shape` in unit coordinates, stretched to touch all four sides of [0, 1]^2."""
    a = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    if shape == "ellipse":
        pts = np.stack([np.cos(a), np.sin(a)], 1)
    elif shape == "rectangle":
        pts = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)
    elif shape == "triangle":
        pts = np.array([[0, 1], [rng.uniform(0.2, 0.8), 0], [1, 1]], np.float64)
    elif shape == "diamond":
        pts = np.array([[0.5, 0], [1, 0.5], [0.5, 1], [0, 0.5]], np.float64)
    elif shape == "star":
        k = np.arange(10) * np.pi / 5 - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.4, 0.6))
        pts = np.stack([r * np.cos(k), r * np.sin(k)], 1)
    elif shape == "cross":
        t = rng.uniform(0.3, 0.4)
        lo, hi = 0.5 - t / 2, 0.5 + t / 2
        pts = np.array([[lo, 0], [hi, 0], [hi, lo], [1, lo], [1, hi], [hi, hi], [hi, 1], [lo, 1], [lo, hi], [0, hi],
                        [0, lo], [lo, lo]], np.float64)
    elif shape == "hexagon":
        k = np.arange(6) * np.pi / 3
        pts = np.stack([np.cos(k), np.sin(k)], 1)
    else:  # rounded rectangle
        r = rng.uniform(0.15, 0.3)
        corners = [(1 - r, 1 - r, 0), (r, 1 - r, 0.5 * np.pi), (r, r, np.pi), (1 - r, r, 1.5 * np.pi)]
        q = np.linspace(0, np.pi / 2, 8)
        pts = np.concatenate([np.stack([cx + r * np.cos(q + s), cy + r * np.sin(q + s)], 1) for cx, cy, s in corners])
    pts = pts - pts.min(0)
    return pts / pts.max(0)


def _mask(shape: str, rng: np.random.Generator, size: int = _CANON) -> np.ndarray:
    big = size * _SUPER
    canvas = np.zeros((big, big), np.uint8)
    pts = np.round(_polygon(shape, rng) * big * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(canvas, [pts], 255, cv2.LINE_AA, shift=4)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def appearance(rng: np.random.Generator, colors: Optional[np.ndarray] = None,
               shape: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """A random object look (texture, mask); colours and shape random unless given."""
    colors = random_colors(rng, 3, (0.5, 1.0), (0.45, 1.0)) if colors is None else colors
    tex = _texture(rng, TEXTURES[rng.integers(len(TEXTURES))], _CANON, colors)
    return tex, _mask(shape or SHAPES[rng.integers(len(SHAPES))], rng)


def paste(frame: np.ndarray, look: Tuple[np.ndarray, np.ndarray], box: np.ndarray,
          want_alpha: bool = True) -> Optional[np.ndarray]:
    """Draw an object (texture, mask) into `frame` (float32, in place) filling `box`; returns its alpha map."""
    tex, mask = look
    height, width = frame.shape[:2]
    alpha = np.zeros((height, width), np.float32) if want_alpha else None
    x1, y1, x2, y2 = (float(v) for v in box)
    rx0, ry0 = max(int(np.floor(x1)) - 1, 0), max(int(np.floor(y1)) - 1, 0)
    rx1, ry1 = min(int(np.ceil(x2)) + 1, width), min(int(np.ceil(y2)) + 1, height)
    if rx1 <= rx0 or ry1 <= ry0:
        return alpha
    a, b = (x2 - x1) / tex.shape[1], (y2 - y1) / tex.shape[0]
    # canonical pixel i spans [i, i+1) -> frame [x1 + a*i, x1 + a*(i+1)); cv2 maps pixel centres
    m = np.array([[a, 0, x1 - rx0 + 0.5 * a - 0.5], [0, b, y1 - ry0 + 0.5 * b - 0.5]])
    size = (rx1 - rx0, ry1 - ry0)
    t = cv2.warpAffine(tex, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    al = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    roi = frame[ry0:ry1, rx0:rx1]
    roi += (t - roi) * al[..., None]
    if alpha is not None:
        alpha[ry0:ry1, rx0:rx1] = al
    return alpha


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A cluttered float32 background: smooth colour noise covered with static textured shapes."""
    colors = random_colors(rng, 3, (0.1, 0.6), (0.3, 0.9))
    t1 = _smooth_noise(rng, height, width, int(rng.integers(3, 7)))[..., None]
    t2 = _smooth_noise(rng, height, width, int(rng.integers(5, 12)))[..., None]
    canvas = colors[0] * (1 - t1) + colors[1] * t1
    canvas = canvas * (1 - 0.5 * t2) + colors[2] * 0.5 * t2
    short = min(height, width)
    for _ in range(int(rng.integers(20, 45) * height * width / (320 * 240))):
        s = rng.uniform(0.03, 0.16) * short
        w, h = s * np.exp(rng.uniform(-0.5, 0.5)), s * np.exp(rng.uniform(-0.5, 0.5))
        x, y = rng.uniform(-w / 2, width - w / 2), rng.uniform(-h / 2, height - h / 2)
        paste(canvas, appearance(rng), np.array([x, y, x + w, y + h]), want_alpha=False)
    return cv2.GaussianBlur(canvas, (0, 0), 0.7)
