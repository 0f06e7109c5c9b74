"""pysot's training augmentation: geometry of the crop and its box, flip, colour, blur, gray, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from siamkpn.datasets.augmentation import RGB_VAR, Augmentation

SIZE = 63  # output crop side used by most tests (small, fast)
IMG = 127  # prepared image side (odd, like 511)


def _object_image(box, value=(255, 255, 255), side=IMG):
    """Black image with a filled rectangle covering pixel columns x1..x2 and rows y1..y2 (inclusive)."""
    img = np.zeros((side, side, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2 + 1, x1:x2 + 1] = value
    return img


def _extent(crop, thresh=127.0):
    """Continuous extent of the bright region: sub-pixel edges from the column/row mean profiles."""
    mask = crop.mean(axis=2) / 255.0
    cols, rows = mask.max(axis=0), mask.max(axis=1)
    xs, ys = np.nonzero(cols > thresh / 255.0)[0], np.nonzero(rows > thresh / 255.0)[0]
    return xs[0], ys[0], xs[-1], ys[-1]


def test_no_jitter_is_the_central_crop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (IMG, IMG, 3), dtype=np.uint8)
    aug = Augmentation(0, 0, 0, 0, 0)
    crop, box = aug(img, [50, 40, 80, 90], SIZE, rng=np.random.default_rng(1))
    c = IMG // 2 - (SIZE - 1) // 2  # crop starts at centre - (size-1)/2
    np.testing.assert_array_equal(crop, img[c:c + SIZE, c:c + SIZE].astype(np.float32))
    np.testing.assert_allclose(box, [50 - c, 40 - c, 80 - c, 90 - c])
    assert crop.dtype == np.float32


@pytest.mark.parametrize("seed", range(12))
def test_box_follows_the_object_under_shift_and_scale(seed):
    # object pixels 50..76 x 55..70; its corner box in pixel-index coordinates is exactly that
    obj = (50, 55, 76, 70)
    img = _object_image(obj)
    aug = Augmentation(shift=8, scale=0.25, blur=0, flip=0, color=0)
    crop, box = aug(img, obj, SIZE, rng=np.random.default_rng(seed))
    x1, y1, x2, y2 = _extent(crop)
    # bilinear resampling moves the 50% edge by at most one output pixel
    np.testing.assert_allclose([x1, y1, x2, y2], box, atol=1.0)


def test_shift_and_scale_are_random_and_bounded():
    obj = (50, 56, 76, 70)  # centred on the image centre (63, 63)
    img = _object_image(obj)
    aug = Augmentation(shift=10, scale=0.2, blur=0, flip=0, color=0)
    boxes = np.array([aug(img, obj, SIZE, rng=np.random.default_rng(s))[1] for s in range(300)])
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    width = boxes[:, 2] - boxes[:, 0]
    # the object's width in the crop is w / scale_x with scale_x uniform in [0.8, 1.2]
    assert width.min() >= 26 / 1.2 - 1e-6 and width.max() <= 26 / 0.8 + 1e-6
    assert width.max() - width.min() > 0.8 * (26 / 0.8 - 26 / 1.2)
    # scaling is about the crop centre, so only the shift (<= 10 px, then scaled) moves the centre
    assert np.abs(centre - (SIZE - 1) / 2).max() <= 10 / 0.8 + 1e-6
    assert centre[:, 0].std() > 2 and centre[:, 1].std() > 2


def test_flip_mirrors_image_and_box():
    obj = (45, 55, 70, 70)
    img = _object_image(obj)
    img[:, :10] = 90  # asymmetric content
    plain = Augmentation(shift=8, scale=0.1, blur=0, flip=0, color=0)
    flip = Augmentation(shift=8, scale=0.1, blur=0, flip=1.0, color=0)
    c0, b0 = plain(img, obj, SIZE, rng=np.random.default_rng(3))
    c1, b1 = flip(img, obj, SIZE, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(c1, c0[:, ::-1])
    np.testing.assert_allclose(b1, [SIZE - 1 - b0[2], b0[1], SIZE - 1 - b0[0], b0[3]])
    np.testing.assert_allclose(_extent(c1), b1, atol=1.0)


def test_flip_probability():
    img = np.zeros((IMG, IMG, 3), np.uint8)
    img[:, IMG // 2 + 1:] = 200  # bright right half
    aug = Augmentation(0, 0, 0, flip=0.3, color=0)
    flipped = [aug(img, (50, 50, 70, 70), SIZE, rng=np.random.default_rng(s))[0][:, 0].mean() > 100
               for s in range(600)]
    assert abs(np.mean(flipped) - 0.3) < 0.06


def test_colour_offset_is_pysot_pca_in_bgr_order():
    img = np.full((IMG, IMG, 3), 128, np.uint8)
    aug = Augmentation(0, 0, 0, 0, color=1.0)
    offsets = []
    for s in range(1500):
        crop, _ = aug(img, (50, 50, 70, 70), SIZE, rng=np.random.default_rng(s))
        d = crop.reshape(-1, 3) - 128.0
        assert np.allclose(d, d[0], atol=1e-3)  # one offset per channel, the same on every pixel
        offsets.append(d[0])
    std = np.std(offsets, axis=0)
    # the image is BGR; RGB_VAR rows are R, G, B: blue varies most
    expected = np.linalg.norm(RGB_VAR, axis=1)[::-1]
    np.testing.assert_allclose(std, expected, rtol=0.1)


def test_colour_probability_zero_leaves_pixels():
    img = np.full((IMG, IMG, 3), 77, np.uint8)
    crop, _ = Augmentation(0, 0, 0, 0, 0)(img, (50, 50, 70, 70), SIZE, rng=np.random.default_rng(0))
    assert np.all(crop == 77)


def test_blur_is_a_normalised_cross_kernel():
    img = np.zeros((IMG, IMG, 3), np.uint8)
    img[IMG // 2, IMG // 2] = 255
    crop, _ = Augmentation(0, 0, blur=1.0, flip=0, color=0)(img, (50, 50, 70, 70), SIZE,
                                                             rng=np.random.default_rng(5))
    g = crop[..., 0]
    centre = (SIZE - 1) // 2
    assert g.sum() == pytest.approx(255.0, rel=1e-4)  # kernel sums to one
    ys, xs = np.nonzero(g > 1e-3)
    # energy only on the centre row and the centre column (a '+' shaped motion kernel)
    assert np.all((ys == centre) | (xs == centre))
    assert g[centre].max() < 255  # spread out


def test_gray_makes_equal_channels():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (IMG, IMG, 3), dtype=np.uint8)
    crop, _ = Augmentation(4, 0.05, 0, 0, 0)(img, (50, 50, 70, 70), SIZE, gray=True, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(crop[..., 0], crop[..., 1])
    np.testing.assert_array_equal(crop[..., 1], crop[..., 2])
    assert crop.std() > 10


def test_same_generator_same_result_and_values_in_range():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (IMG, IMG, 3), dtype=np.uint8)
    aug = Augmentation(10, 0.2, 0.5, 0.5, 1.0)
    a = aug(img, (50, 50, 70, 70), SIZE, rng=np.random.default_rng(9))
    b = aug(img, (50, 50, 70, 70), SIZE, rng=np.random.default_rng(9))
    c = aug(img, (50, 50, 70, 70), SIZE, rng=np.random.default_rng(10))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert a[0].min() >= 0 and a[0].max() <= 255
