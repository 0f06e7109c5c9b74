"""tools/vot_integration.py: the trackers.ini section the VOT toolkit reads, written or replaced in place."""
from __future__ import annotations

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import tiny_cfg, tool_error
from siamkpn.cli.vot_integration import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def files(tmp_path):
    folder = tmp_path / "my 100% model"  # a space and a percent sign: both must survive configparser
    folder.mkdir()
    (folder / "config.yaml").write_text(tiny_cfg(stack=1).dump())
    (folder / "model.pth").write_bytes(b"weights")
    (tmp_path / "ws").mkdir()
    return folder, tmp_path / "ws" / "trackers.ini"


def _toolkit_view(ini: Path) -> dict:
    """The sections as the VOT toolkit reads them: configparser with interpolation, env_* keys -> variables."""
    parser = configparser.ConfigParser()
    parser.read(ini)
    out = {}
    for name in parser.sections():
        sec = dict(parser[name])
        env = {k[4:].upper(): v for k, v in sec.items() if k.startswith("env_")}
        out[name] = ({k: v for k, v in sec.items() if not k.startswith("env_")}, env)
    return out


def test_writes_and_replaces_the_section(files, capsys):
    folder, ini = files
    ini.write_text("# my workspace\n[Other]\nprotocol = traxpython\ncommand = other\n\n[SiamKPN]\ncommand = old\n"
                   "env_STALE = 1\n\n[Last]\ncommand = last\n")
    argv = ["--config", str(folder / "config.yaml"), "--snapshot", str(folder / "model.pth"), "--out", str(ini),
            "--device", "cpu", "--threads", "2"]
    assert main(argv) == 0
    view = _toolkit_view(ini)
    assert list(view) == ["Other", "SiamKPN", "Last"] and ini.read_text().startswith("# my workspace\n")
    keys, env = view["SiamKPN"]
    assert keys["protocol"] == "traxpython" and keys["command"] == "siamkpn.cli.vot_trax"
    assert keys["python"] == sys.executable and int(keys["timeout"]) >= 60
    assert (Path(keys["paths"]) / "siamkpn" / "cli" / "vot_trax.py").is_file()
    assert env == {"SIAMKPN_CONFIG": str(folder / "config.yaml"), "SIAMKPN_SNAPSHOT": str(folder / "model.pth"),
                   "SIAMKPN_DEVICE": "cpu", "SIAMKPN_THREADS": "2", "SIAMKPN_FAST": "0"}
    assert view["Other"][0]["command"] == "other" and view["Last"][0]["command"] == "last"

    # a second name is appended; rerunning with --fast replaces only its own section
    assert main(argv + ["--name", "SiamKPN-fast", "--fast"]) == 0
    assert main(argv + ["--name", "SiamKPN-fast", "--fast"]) == 0
    view = _toolkit_view(ini)
    assert list(view) == ["Other", "SiamKPN", "Last", "SiamKPN-fast"]
    assert view["SiamKPN-fast"][1]["SIAMKPN_FAST"] == "1" and view["SiamKPN"][1]["SIAMKPN_FAST"] == "0"
    assert ini.read_text().count("[SiamKPN-fast]") == 1


def test_new_file_from_relative_paths(files, tmp_path, monkeypatch):
    folder, ini = files
    monkeypatch.chdir(folder)
    assert main(["--config", "config.yaml", "--snapshot", "model.pth", "--out", str(ini)]) == 0
    keys, env = _toolkit_view(ini)["SiamKPN"]
    assert env["SIAMKPN_CONFIG"] == str(folder / "config.yaml") and "SIAMKPN_DEVICE" not in env


@pytest.mark.parametrize("change, expected", [
    ({"--snapshot": "missing.pth"}, "missing.pth"),
    ({"--name": "Siam KPN"}, "--name"),
    ({"--out": "nowhere/trackers.ini"}, "nowhere"),
    ({"--threads": "0"}, "--threads"),
    ({"--config": "bad.yaml"}, "NOT_A_KEY"),
])
def test_bad_input_is_one_error_line(files, capsys, change, expected):
    folder, ini = files
    (folder / "bad.yaml").write_text("TRACK:\n  NOT_A_KEY: 1\n")
    args = {"--config": str(folder / "config.yaml"), "--snapshot": str(folder / "model.pth"), "--out": str(ini)}
    args.update({k: (str(folder / v) if k in ("--snapshot", "--config", "--out") else v) for k, v in change.items()})
    line = tool_error(capsys, main, [x for kv in args.items() for x in kv], 2)
    assert line.startswith("siamkpn-vot-integration: error: ") and expected in line, line
    assert not ini.exists()


def test_shim_runs_the_tool(files):
    folder, ini = files
    run = subprocess.run([sys.executable, str(REPO / "tools" / "vot_integration.py"), "--config",
                          str(folder / "config.yaml"), "--snapshot", str(folder / "model.pth"), "--out", str(ini)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "[SiamKPN]" in ini.read_text()


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    """(config.yaml, model.pth, export folder) of a tiny model with small crops (quick to export)."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'siamkpn[onnx]')")
    import torch

    from helpers import torch_threads
    from siamkpn.datasets.calibration import synthetic_pairs
    from siamkpn.models.model_builder import ModelBuilder
    from siamkpn.models.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("vot_onnx")
    cfg = tiny_cfg(stack=1)
    cfg.TRACK.EXEMPLAR_SIZE, cfg.TRACK.INSTANCE_SIZE, cfg.TRACK.BASE_SIZE = 63, 95, 10
    (root / "config.yaml").write_text(cfg.dump())
    torch.manual_seed(0)
    model = ModelBuilder(cfg).eval()
    torch.save(model.state_dict(), root / "model.pth")
    with torch_threads(1):
        export_onnx(model, cfg, str(root / "model_onnx"), synthetic_pairs(63, 95, 1))
    return root / "config.yaml", root / "model.pth", root / "model_onnx"


def test_backend_onnx_writes_the_variable_and_checks_the_folder(onnx_export, tmp_path, capsys):
    config, pth, folder = onnx_export
    ini = tmp_path / "trackers.ini"
    base = ["--config", str(config), "--out", str(ini)]
    assert main(base + ["--snapshot", str(folder), "--backend", "onnx", "--name", "SiamKPN-onnx"]) == 0
    assert main(base + ["--snapshot", str(pth), "--backend", "torch"]) == 0
    assert main(base + ["--snapshot", str(pth), "--name", "Plain"]) == 0
    view = _toolkit_view(ini)
    assert view["SiamKPN-onnx"][1]["SIAMKPN_BACKEND"] == "onnx"
    assert view["SiamKPN-onnx"][1]["SIAMKPN_SNAPSHOT"] == str(folder)
    assert view["SiamKPN"][1]["SIAMKPN_BACKEND"] == "torch"
    assert "SIAMKPN_BACKEND" not in view["Plain"][1]  # the tracker process takes the config's TRACK.BACKEND
    before = ini.read_text()

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    other = tmp_path / "other.yaml"  # a config with other crop sizes than the export's
    cfg = tiny_cfg(stack=1)
    cfg.TRACK.BACKEND = "onnx"
    other.write_text(cfg.dump())
    cases = [(["--snapshot", str(pth), "--backend", "onnx"], ["is a file", "siamkpn-export-onnx", "--backend torch"]),
             (["--snapshot", str(folder), "--backend", "torch"], ["is a folder", "--backend onnx"]),
             (["--snapshot", str(folder)], ["is a folder", "--backend onnx"]),  # the config's TRACK.BACKEND: torch
             (["--snapshot", str(folder), "--backend", "onnx", "--device", "cuda"], ["--device cuda", "CPU"]),
             (["--snapshot", str(unfinished), "--backend", "onnx"], ["siamkpn_onnx.json is missing"]),
             (["--config", str(other), "--snapshot", str(folder)], ["TRACK.EXEMPLAR_SIZE", "export again"]),
             (["--snapshot", str(folder), "--backend", "tensorrt"], None)]
    for extra, parts in cases:
        argv = base + extra
        if parts is None:
            with pytest.raises(SystemExit) as exit_info:
                main(argv)
            assert exit_info.value.code == 2 and "invalid choice: 'tensorrt'" in capsys.readouterr().err
            continue
        line = tool_error(capsys, main, argv, 2)
        assert line.startswith("siamkpn-vot-integration: error: ") and all(p in line for p in parts), (extra, line)
    assert ini.read_text() == before  # nothing written by a refused run


def test_the_printed_command_survives_spaces_in_the_workspace_path(files, tmp_path, capsys):
    folder, _ = files
    ini = tmp_path / "my work's space" / "trackers.ini"
    ini.parent.mkdir()
    assert main(["--config", str(folder / "config.yaml"), "--snapshot", str(folder / "model.pth"), "--out", str(ini),
                 "--name", "SiamKPN-1"]) == 0
    out = capsys.readouterr().out
    command = out.split("`")[1]
    # it used to print the path bare: a shell split it at the space
    assert shlex.split(command) == ["vot", "evaluate", "--workspace", str(ini.parent), "SiamKPN-1"]
