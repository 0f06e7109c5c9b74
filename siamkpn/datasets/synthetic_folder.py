"""The folders the synthetic-data generator owns: a marker lists the videos it wrote, so a rerun can replace them.

Each part folder (`<out>/train`, `<out>/test/OTB100`, `<out>/test/VOT2018`) gets a marker file
``.siamkpn_synthetic.json`` {"part", "videos"} before any video is written. Writing a part again first removes
the video folders the marker lists (and only those: `<folder>/crop511/<video>` for the training set,
`<folder>/<video>` for a test set), so a smaller set never keeps videos or frames of a larger, older one. A
part folder that holds files but no marker was not written by this generator (or by a version before the
marker): it is refused, never cleaned.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from typing import List, Sequence

from toolkit.atomic import atomic_write_json
from toolkit.errors import BadInput

__all__ = ["MARKER", "SyntheticOutputError", "check_part_folder", "claim_part_folder"]

MARKER = ".siamkpn_synthetic.json"
# the names the generator gives videos; anything else in a marker is not deleted
_VIDEO_NAME = {"train": re.compile(r"synth_\d{5}"), "otb": re.compile(r"Synth\d{3}"), "vot": re.compile(r"synth\d{3}")}


class SyntheticOutputError(BadInput, ValueError):
    """An output folder the generator cannot (or must not) write into."""


def _video_root(folder: str, part: str) -> str:
    return os.path.join(folder, "crop511") if part == "train" else folder


def _marked_videos(folder: str, part: str) -> List[str]:
    """Videos an earlier run listed in the folder's marker; refuses a folder with files but no valid marker."""
    path = os.path.join(folder, MARKER)
    if not os.path.isfile(path):
        raise SyntheticOutputError(
            f"{folder} already holds files but no {MARKER}, so they were not written by this generator (or by a "
            "version before the marker); choose an empty or new --out folder, or delete this one yourself")
    try:
        with open(path, encoding="utf-8") as f:
            marker = json.load(f)
        videos = marker["videos"]
        if marker.get("part") != part or not isinstance(videos, list):
            raise ValueError(f"part {marker.get('part')!r}, expected {part!r}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SyntheticOutputError(f"{path}: not a marker of a synthetic {part} set ({err}); "
                                   "delete the folder yourself or choose another --out") from None
    return [v for v in videos if isinstance(v, str) and _VIDEO_NAME[part].fullmatch(v)]


def check_part_folder(folder: str, part: str) -> None:
    """Raise SyntheticOutputError unless `folder` can hold the `part` ('train', 'otb', 'vot'); changes nothing."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):  # folders still to be made: the nearest existing one must be a folder
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise SyntheticOutputError(f"cannot write the synthetic {part} set into {folder}: {existing} is a file, "
                                   "not a folder")
    if os.path.isdir(folder) and os.listdir(folder):
        _marked_videos(folder, part)


def claim_part_folder(folder: str, part: str, videos: Sequence[str]) -> None:
    """Make `folder` ready for `videos`: remove the videos an earlier run wrote there, then mark the new ones."""
    check_part_folder(folder, part)
    old = _marked_videos(folder, part) if os.path.isdir(folder) and os.listdir(folder) else []
    os.makedirs(folder, exist_ok=True)
    # the marker names old and new videos until the old ones are gone: an interrupted run can still be cleaned
    atomic_write_json(os.path.join(folder, MARKER), {"part": part, "videos": sorted(set(old) | set(videos))})
    root = _video_root(folder, part)
    for name in old:
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
    atomic_write_json(os.path.join(folder, MARKER), {"part": part, "videos": sorted(videos)})
