"""The cut-file check of frames (toolkit) and training crops (siamkpn, which uses toolkit's): whole files pass, cut
files are named."""
from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from toolkit.datasets import image_file

CHECKS = pytest.mark.parametrize("check", [image_file], ids=["toolkit"])


def _image(h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)


def _encode(ext: str, img: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def _with_exif_thumbnail(jpeg: bytes) -> bytes:
    """The JPEG with an APP1 (Exif) segment holding a whole small JPEG: an end marker before the main scan."""
    thumb = _encode(".jpg", _image(16, 16))
    payload = b"Exif\x00\x00" + thumb
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


JPEG = _encode(".jpg", _image(), cv2.IMWRITE_JPEG_QUALITY, 90)
PROGRESSIVE = _encode(".jpg", _image(), cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
THUMBED = _with_exif_thumbnail(JPEG)
PNG = _encode(".png", _image())

WHOLE = {
    "jpeg": JPEG,
    "jpeg + zero padding": JPEG + b"\x00" * 300,
    "jpeg + appended bytes": JPEG + b"trailer written by some cameras",
    "progressive jpeg": PROGRESSIVE,
    "jpeg with exif thumbnail": THUMBED,
    "png": PNG,
    "png + padding": PNG + b"\x00" * 16,
}
CUT = {
    "jpeg at 60%": (JPEG[: len(JPEG) * 6 // 10], "JPEG"),
    "jpeg without its last 2 bytes": (JPEG[:-2], "JPEG"),
    "progressive jpeg at 70%": (PROGRESSIVE[: len(PROGRESSIVE) * 7 // 10], "JPEG"),
    "jpeg with exif thumbnail at 80%": (THUMBED[: len(THUMBED) * 8 // 10], "JPEG"),
    "jpeg header only": (JPEG[:200], "JPEG"),
    "png at 60%": (PNG[: len(PNG) * 6 // 10], "PNG"),
    "png without IEND": (PNG[:-12], "PNG"),
}


@CHECKS
@pytest.mark.parametrize("name", list(WHOLE))
def test_whole_files_pass_and_decode(check, name):
    data = WHOLE[name]
    assert check.truncation(data) is None
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (96, 128, 3)


@CHECKS
@pytest.mark.parametrize("name", list(CUT))
def test_cut_files_are_reported(check, name):
    data, kind = CUT[name]
    problem = check.truncation(data)
    assert problem is not None and problem.startswith(f"truncated {kind}")


def test_opencv_imread_alone_decodes_a_cut_jpeg_silently(tmp_path):
    # why the check exists: cv2.imread gives a full-size image (grey where data is missing) and no error
    for i, data in enumerate((CUT["jpeg at 60%"][0], CUT["jpeg with exif thumbnail at 80%"][0])):
        path = tmp_path / f"cut{i}.jpg"
        path.write_bytes(data)
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert img is not None and img.shape == (96, 128, 3)


@CHECKS
def test_other_formats_and_empty_data_are_left_to_the_decoder(check):
    bmp = _encode(".bmp", _image())
    assert check.truncation(bmp) is None and check.truncation(bmp[:100]) is None
    assert check.truncation(b"") is None and check.truncation(b"not an image") is None
