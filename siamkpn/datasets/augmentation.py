"""pysot's training-pair augmentation: crop around the prepared crop's centre with scale/shift jitter,
PCA colour jitter, motion blur, horizontal flip (and grayscale on request).

Semantics follow pysot's `Augmentation(shift, scale, blur, flip, color)`: `scale` is the maximal relative
change of the crop side (independently in x and y), `shift` the maximal shift of the crop in pixels of
the prepared image, `blur`, `flip` and `color` are probabilities. Random numbers come from a
`numpy.random.Generator` passed per call, so a sample is reproducible from its own seed.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from siamkpn.datasets.prepare.crop import crop_hwc

__all__ = ["Augmentation", "RGB_VAR"]

# pysot's colour jitter: eigenvectors scaled by the eigenvalues of the ImageNet RGB pixel covariance.
RGB_VAR = np.array([[-0.55919361, 0.98062831, -0.41940627],
                    [1.72091413, 0.19879334, -1.82968581],
                    [4.64467907, 4.73710203, 4.88324118]], dtype=np.float32)


def _uniform(rng: np.random.Generator) -> float:
    return rng.random() * 2.0 - 1.0


class Augmentation:
    """Crop a `size` square around the image centre with jitter; returns (image float, corner box in the crop).

    Args:
        shift: maximal crop shift in pixels (uniform in [-shift, shift] per axis, kept inside the image).
        scale: maximal relative crop-size change (factor uniform in [1-scale, 1+scale] per axis).
        blur: probability of a random line (motion) blur.
        flip: probability of a horizontal flip.
        color: probability of the PCA colour offset.
    """

    def __init__(self, shift: float, scale: float, blur: float, flip: float, color: float) -> None:
        self.shift = float(shift)
        self.scale = float(scale)
        self.blur = float(blur)
        self.flip = float(flip)
        self.color = float(color)

    def _shift_scale(self, image: np.ndarray, bbox: np.ndarray, size: int,
                     rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        im_h, im_w = image.shape[:2]
        cx, cy = im_w // 2, im_h // 2
        crop_w = crop_h = float(size - 1)
        scale_x = scale_y = 1.0
        if self.scale:
            scale_x = 1.0 + _uniform(rng) * self.scale
            scale_y = 1.0 + _uniform(rng) * self.scale
            # never larger than the image itself
            scale_x = min(scale_x, im_w / crop_w)
            scale_y = min(scale_y, im_h / crop_h)
            crop_w, crop_h = crop_w * scale_x, crop_h * scale_y
        x1, y1 = cx - crop_w / 2.0, cy - crop_h / 2.0
        x2, y2 = cx + crop_w / 2.0, cy + crop_h / 2.0
        if self.shift:
            sx = _uniform(rng) * self.shift
            sy = _uniform(rng) * self.shift
            sx = max(-x1, min(im_w - 1 - x2, sx))
            sy = max(-y1, min(im_h - 1 - y2, sy))
            x1, y1, x2, y2 = x1 + sx, y1 + sy, x2 + sx, y2 + sy
        box = (bbox - np.array([x1, y1, x1, y1])) / np.array([scale_x, scale_y, scale_x, scale_y])
        return crop_hwc(image, (x1, y1, x2, y2), size), box

    @staticmethod
    def _color(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        offset = (RGB_VAR @ rng.standard_normal((3, 1))).reshape(3)[::-1]  # rows are RGB, the image is BGR
        return image - offset

    @staticmethod
    def _blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        size = int(rng.choice(np.arange(5, 46, 2)))
        kernel = np.zeros((size, size))
        c = size // 2
        wx = rng.random()
        kernel[:, c] += wx / size
        kernel[c, :] += (1.0 - wx) / size
        return cv2.filter2D(image, -1, kernel)

    @staticmethod
    def _gray(image: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)

    def __call__(self, image: np.ndarray, bbox: Sequence[float], size: int, gray: bool = False,
                 rng: Optional[np.random.Generator] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Augment `image` (HxWx3 BGR) whose target is the corner box `bbox`; returns (float32 crop, box)."""
        rng = np.random.default_rng() if rng is None else rng
        box = np.asarray(bbox, dtype=np.float64).reshape(4)
        if gray:
            image = self._gray(image)
        crop, box = self._shift_scale(image, box, int(size), rng)
        crop = crop.astype(np.float32)
        if self.color > rng.random():
            crop = self._color(crop, rng).astype(np.float32)
        if self.blur > rng.random():
            crop = self._blur(crop, rng)
        if self.flip and self.flip > rng.random():
            crop = cv2.flip(crop, 1)
            width = crop.shape[1]
            box = np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]])
        # the colour offset can leave the 0..255 range a camera produces; keep pixel values realistic
        np.clip(crop, 0.0, 255.0, out=crop)
        return crop, box
