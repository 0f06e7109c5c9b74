"""Cheap completeness check of encoded JPEG and PNG files: a cut (truncated) file lacks its end marker.

OpenCV decodes a truncated JPEG without an error: the missing rows come out grey and libjpeg prints
"Premature end of JPEG file" without naming the file. So readers check the encoded bytes first.

- JPEG: the last end-of-image marker FFD9 must come after the last start-of-scan marker FFDA. Entropy-coded
  data never holds FFD9 (encoders stuff every FF byte), so a file cut inside its scan has no FFD9 after that
  scan; an EOI that belongs to an EXIF thumbnail sits before the main scan. Bytes after the EOI (padding,
  appended data) are allowed.
- PNG: the IEND chunk must be present (trailing bytes after it are allowed).
Other formats are left to the decoder. Standard library only: benchmark frames (toolkit) and training crops
(siamkpn.datasets) share this one check.
"""
from __future__ import annotations

from typing import Optional

__all__ = ["truncation"]

_JPEG_SOI, _JPEG_EOI, _JPEG_SOS = b"\xff\xd8", b"\xff\xd9", b"\xff\xda"
_PNG_SIGNATURE, _PNG_IEND = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def truncation(data: bytes) -> Optional[str]:
    """Why an encoded JPEG or PNG image is cut short, or None when it looks whole (or is another format)."""
    if data[:2] == _JPEG_SOI:
        eoi = data.rfind(_JPEG_EOI)  # searched from the end: a whole file's EOI is found at once
        if eoi < 0 or data.find(_JPEG_SOS, eoi) >= 0:
            return "truncated JPEG: no end-of-image marker FFD9 after the image data"
    elif data[:8] == _PNG_SIGNATURE:
        if data.rfind(_PNG_IEND, 8) < 0:
            return "truncated PNG: no IEND chunk"
    return None
