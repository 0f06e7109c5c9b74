"""siamkpn-test never writes outside --results-dir: video names from a benchmark json are data, not paths."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import tiny_cfg, tool_error, torch_threads
from siamkpn.cli.test import main
from tiny_bench import FRAMES, write_otb_video, write_tiny_snapshot

VICTIM_TEXT = "the user's own file\n"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("names")
    (tmp / "config.yaml").write_text(tiny_cfg(stack=1).dump())
    write_tiny_snapshot(tmp / "tiny_e7.pth", seed=0)
    write_otb_video(tmp / "OTB100", "SeqA", 0)
    return tmp


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("kind", ["climbs out", "absolute"])
def test_a_video_name_that_is_a_path_writes_nothing_outside_the_results(bench, tmp_path, capsys, kind, overwrite):
    """Before: ``<results>/OTB100/tiny_e7/../../../x.txt`` and ``/abs/victim.txt`` written (the user's file
    replaced with --overwrite), exit 0."""
    victim = tmp_path / "victim"
    victim.with_suffix(".txt").write_text(VICTIM_TEXT)
    name = "../../../x" if kind == "climbs out" else str(victim)
    entry = {"video_dir": "SeqA", "img_names": [f"SeqA/img/{i:04d}.jpg" for i in range(1, FRAMES + 1)],
             "gt_rect": [line.split(",") for line in (bench / "OTB100/SeqA/groundtruth_rect.txt").read_text().split()]}
    root = tmp_path / "OTB100"
    root.mkdir()
    (root / "SeqA").symlink_to(bench / "OTB100" / "SeqA", target_is_directory=True)
    (root / "OTB100.json").write_text(json.dumps({"SeqA": entry, name: entry}))
    before = _files(tmp_path)
    argv = ["--config", str(bench / "config.yaml"), "--snapshot", str(bench / "tiny_e7.pth"), "--device", "cpu",
            "--dataset", "OTB100", "--dataset-root", str(root), "--results-dir", str(tmp_path / "out" / "results"),
            *(["--overwrite"] if overwrite else [])]
    line = tool_error(capsys, main, argv, 2)
    assert line.startswith(f"siamkpn-test: error: {root / 'OTB100.json'}: video name {name!r} ")
    assert _files(tmp_path) == before  # nothing written anywhere, the user's file untouched
    assert victim.with_suffix(".txt").read_text() == VICTIM_TEXT
