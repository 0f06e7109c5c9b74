"""The tracker's crop: window placement, average-colour padding (uint8-truncated) and bilinear resizing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from siamkpn.tracker.subwindow import crop_window, get_subwindow


def _image(h=40, w=60, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _padded_reference(img, xmin, ymin, size, fill):
    """Independent construction: pad the whole frame generously with `fill`, then slice the window."""
    pad = size + max(img.shape)
    big = np.empty((img.shape[0] + 2 * pad, img.shape[1] + 2 * pad, 3), np.uint8)
    big[...] = fill
    big[pad:pad + img.shape[0], pad:pad + img.shape[1]] = img
    return big[ymin + pad:ymin + pad + size, xmin + pad:xmin + pad + size]


def test_inside_crop_is_the_exact_slice():
    img = _image()
    # centre 30.0, size 11: xmin = floor(30 - 6 + 0.5) = 24
    out = get_subwindow(img, (30.0, 20.0), 11, 11, (0, 0, 0))
    assert crop_window((30.0, 20.0), 11) == (24, 14)
    np.testing.assert_array_equal(out, img[14:25, 24:35])
    assert out.dtype == np.uint8 and out.flags.c_contiguous


def test_window_corner_rounds_half_up():
    # pos - (sz+1)/2 + 0.5 lands exactly on an integer: floor keeps it (ties go up, unlike round-half-even)
    # size 10: half = 5.5, so pos - half = 4.5 / -1.5 (round-half-even would give 4 / -2)
    assert crop_window((10.0, 4.0), 10) == (5, -1)
    assert crop_window((9.9999, 4.0), 10) == (4, -1)
    assert crop_window((-2.5, 0.0), 4) == (-5, -2)


@pytest.mark.parametrize("pos", [(2.0, 3.0), (57.0, 35.0), (30.0, -5.0), (70.0, 20.0), (30.0, 50.0), (-30.0, -30.0)])
def test_out_of_frame_parts_take_the_truncated_average(pos):
    img = _image()
    avg = np.array([127.8, 0.99, 254.5])
    size = 21
    out = get_subwindow(img, pos, size, size, avg)
    xmin, ymin = crop_window(pos, size)
    expected = _padded_reference(img, xmin, ymin, size, np.array([127, 0, 254], np.uint8))
    np.testing.assert_array_equal(out, expected)


def test_resize_is_bilinear_of_the_padded_window():
    img = _image(50, 70, seed=3)
    avg = img.mean(axis=(0, 1))
    pos, size, model_sz = (5.3, 44.7), 33, 127
    out = get_subwindow(img, pos, model_sz, size, avg)
    xmin, ymin = crop_window(pos, size)
    window = _padded_reference(img, xmin, ymin, size, avg.astype(np.uint8))
    np.testing.assert_array_equal(out, cv2.resize(window, (model_sz, model_sz), interpolation=cv2.INTER_LINEAR))
    assert out.shape == (model_sz, model_sz, 3)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        get_subwindow(np.zeros((10, 10), np.uint8), (5, 5), 5, 5, (0, 0, 0))
    with pytest.raises(ValueError, match="float32"):
        get_subwindow(np.zeros((10, 10, 3), np.float32), (5, 5), 5, 5, (0, 0, 0))
    with pytest.raises(ValueError, match="positive"):
        get_subwindow(_image(), (5, 5), 5, 0, (0, 0, 0))
