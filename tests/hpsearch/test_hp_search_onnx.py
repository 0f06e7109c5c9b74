"""siamkpn-hp-search --backend onnx: epoch N runs the export folder <snapshot-dir>/checkpoint_eN/, scores as the
torch backend does on the same points, and the study records the backend, the precision and the folders' content
(a study of the other backend or of re-exported folders is refused; studies recorded before the backend read as
torch)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'siamkpn[onnx]')")
pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'siamkpn[onnx]')")

from helpers import tool_error, torch_threads  # noqa: E402
from hp_bench import bench, tool_argv  # noqa: E402,F401 - the shared session fixture (no conftest here: it would shadow tests/conftest.py)
from siamkpn.cli.hp_search import main  # noqa: E402
from siamkpn.config import load_cfg  # noqa: E402
from siamkpn.datasets.calibration import synthetic_pairs  # noqa: E402
from siamkpn.hpsearch import evaluate as ev  # noqa: E402
from siamkpn.hpsearch import study as st  # noqa: E402
from siamkpn.hpsearch.inputs import InputsError, SearchInputs, check_result_folder, search_settings  # noqa: E402
from siamkpn.models.backends import BACKENDS  # noqa: E402
from siamkpn.models.checkpoint import load_tracking_checkpoint  # noqa: E402
from siamkpn.models.model_builder import ModelBuilder  # noqa: E402
from siamkpn.models.onnx_export import export_onnx  # noqa: E402
from siamkpn.models.onnx_folder import SETTINGS_FILE  # noqa: E402
from toolkit.datasets import DatasetFactory  # noqa: E402

LEVEL1 = ["--level", "1", "--batch", "4", "--no-progress"]  # 2 epochs x 4 points, 4 lanes per forward pass


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def exports(bench, tmp_path_factory) -> Path:
    """A snapshot folder with the bench's checkpoint_e1/e2.pth and their export folders checkpoint_e1/, _e2/."""
    root = tmp_path_factory.mktemp("hp_onnx")
    cfg = load_cfg(str(bench / "config.yaml"), freeze=True)
    with torch_threads(1):
        for epoch in (1, 2):
            shutil.copy(bench / f"checkpoint_e{epoch}.pth", root)
            model = ModelBuilder(cfg)
            load_tracking_checkpoint(model, str(root / f"checkpoint_e{epoch}.pth"))
            export_onnx(model.eval(), cfg, str(root / f"checkpoint_e{epoch}"),
                        synthetic_pairs(cfg.TRACK.EXEMPLAR_SIZE, cfg.TRACK.INSTANCE_SIZE, 1))
    return root


def _box_difference(a: Path, b: Path) -> float:
    """The largest coordinate difference between the result files of two result folders (same frames and failure
    markers required)."""
    from toolkit.results import read_vot

    worst, files = 0.0, sorted(p.relative_to(a) for p in a.rglob("*.txt") if "time" not in p.name)
    assert files
    for rel in files:
        if "baseline" in rel.parts:
            x, y = read_vot(a / rel), read_vot(b / rel)
            assert [len(v) for v in x] == [len(v) for v in y]  # the same failures and re-initialisations
            x, y = [c for v in x for c in v], [c for v in y for c in v]
        else:
            x, y = (np.loadtxt(p / rel, delimiter=",").ravel() for p in (a, b))
        worst = max(worst, float(np.max(np.abs(np.asarray(x) - np.asarray(y)))))
    return worst


def _trials(out: Path, dataset: str) -> dict:
    """{configuration: {metric: value}} of the study's completed trials."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=f"hp_search_{dataset}",
                              storage=f"sqlite:///{out / dataset / 'hp_search.db'}")
    return {t.user_attrs["key"]: dict(t.user_attrs["metrics"]) for t in study.get_trials(states=(TrialState.COMPLETE,))}


@pytest.mark.parametrize("dataset", ["OTB100", "VOT2019"])
def test_an_onnx_search_scores_the_points_as_the_torch_backend(bench, exports, tmp_path, capsys, dataset):
    runs = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        assert main(tool_argv(bench, out, dataset, *LEVEL1, "--backend", backend, snapshots=exports)) == 0
        assert "8 configurations evaluated" in capsys.readouterr().out
        runs[backend] = _trials(out, dataset)
    torch_scores, onnx_scores = runs["torch"], runs["onnx"]
    assert set(onnx_scores) == set(torch_scores) and len(onnx_scores) == 8
    metrics = sorted(next(iter(torch_scores.values())))
    assert metrics and len({json.dumps(m, sort_keys=True) for m in torch_scores.values()}) > 1  # the points differ
    boxes = _box_difference(tmp_path / "torch" / dataset, tmp_path / "onnx" / dataset)
    worst = max(abs(onnx_scores[k][m] - torch_scores[k][m]) for k in torch_scores for m in metrics
                if torch_scores[k][m] == torch_scores[k][m])
    print(f"{dataset}: largest box difference {boxes:.1e} px; largest score difference over 8 configurations x "
          f"{metrics}: {worst:.1e}")
    assert boxes <= 1e-2  # float32 reassociation only (measured: 6.1e-05 px OTB, 1.0e-04 px 4-decimal VOT files)
    # Measured: equal scores. A box difference d moves an overlap by about d / (box side), so a mean-overlap metric
    # (VOT accuracy) by at most ~1e-5 for d = 1e-4 px on these 20-40 px boxes; threshold metrics (success, precision,
    # failures, EAO) only move when an overlap sits within that of a threshold.
    assert worst <= 1e-5
    record = json.loads(next((tmp_path / "onnx" / dataset).glob("checkpoint_e1_*/hp_search_inputs.json")).read_text())
    assert record["settings"]["backend"] == "onnx" and record["settings"]["precision"] == "float32"
    assert set(record["snapshot"]) == {SETTINGS_FILE, "template.onnx", "track.onnx"}  # every file of the folder


def test_a_missing_export_folder_is_named_before_any_work(bench, exports, tmp_path, capsys):
    snapshots = tmp_path / "snapshots"
    shutil.copytree(exports / "checkpoint_e1", snapshots / "checkpoint_e1")
    (snapshots / "checkpoint_e2").mkdir()  # an export that did not finish: no siamkpn_onnx.json
    out = tmp_path / "res"
    argv = tool_argv(bench, out, "OTB100", *LEVEL1, "--end-epoch", "3", "--backend", "onnx", snapshots=snapshots)
    line = tool_error(capsys, main, argv)
    assert line.startswith("siamkpn-hp-search: error: 2 ONNX export folder(s) not found"), line
    assert f"{snapshots / 'checkpoint_e2'}, {snapshots / 'checkpoint_e3'};" in line
    assert (f"siamkpn-export-onnx --config {bench / 'config.yaml'} --snapshot {snapshots / 'checkpoint_e2'}.pth "
            f"--out {snapshots / 'checkpoint_e2'}") in line
    assert not out.exists()  # refused before the study or any result was written
    # the rest of what the onnx backend cannot do is refused up front too
    for extra, part in ((["--device", "cuda"], "--device cuda: backend onnx runs on the CPU"),
                        (["--search-region", "127"], "--search-region [127]: the ONNX graphs take a fixed search")):
        argv = tool_argv(bench, out, "OTB100", *LEVEL1, "--backend", "onnx", *extra, snapshots=exports)
        assert part in tool_error(capsys, main, argv)
    assert not out.exists()


def test_a_torch_study_is_not_resumed_with_the_onnx_backend(bench, exports, tmp_path, capsys):
    out = tmp_path / "res"
    one = ["--penalty-k", "0.1", "--window-influence", "0.5", "--lr", "0.5", "--end-epoch", "1", "--level", "1"]
    assert main(tool_argv(bench, out, "OTB100", *one, snapshots=exports)) == 0
    capsys.readouterr()
    line = tool_error(capsys, main, tool_argv(bench, out, "OTB100", *one, "--backend", "onnx", snapshots=exports))
    assert "study 'hp_search_OTB100'" in line and "holds results of other inputs: " in line
    assert "settings.backend: recorded 'torch', now 'onnx'; settings.precision: recorded '<absent>', now " \
           "'float32'" in line
    # another study in the same folder: the configuration's own record refuses it as well
    line = tool_error(capsys, main, tool_argv(bench, out, "OTB100", *one, "--backend", "onnx", "--study-name", "new",
                                              snapshots=exports))
    assert "checkpoint_e1_pk-0.100_wi-0.500_lr-0.500 holds results of other inputs: settings.backend: " \
           "recorded 'torch', now 'onnx'" in line


def _settings(bench: Path, backend: str = "torch", precision=None, **track) -> dict:
    cfg = load_cfg(str(bench / "config.yaml"), ["TRACK.BACKEND", backend])
    cfg.TRACK.update(track)
    return search_settings(cfg, DatasetFactory.create_dataset("OTB100", bench / "OTB100"), False, precision)


def test_re_exported_folders_and_other_backends_are_refused_old_records_read_as_torch(bench, exports, tmp_path):
    storage = st.open_storage(f"sqlite:///{tmp_path / 'hp.db'}")
    onnx = SearchInputs.build(_settings(bench, "onnx", "float32"), {1: BACKENDS["onnx"].epoch_path(str(exports), 1)})
    attrs = {"dataset": "OTB100", "metric": "success_auc"}
    st.open_study(storage, "onnx", {**attrs, **onnx.study_attrs()})
    st.open_study(storage, "onnx", {**attrs, **onnx.study_attrs()})  # the same folders: fine
    # epoch 1's folder re-exported (here: the other epoch's graphs in its place): every changed file is named
    other = SearchInputs.build(onnx.settings, {1: BACKENDS["onnx"].epoch_path(str(exports), 2)})
    with pytest.raises(InputsError, match=r"snapshot_e1\.siamkpn_onnx\.json\.sha256: recorded"):
        st.open_study(storage, "onnx", {**attrs, **other.study_attrs()})
    fast_int8 = SearchInputs(_settings(bench, "onnx", "int8", FAST=True), onnx.snapshots)
    with pytest.raises(InputsError, match=r"settings\.mode: recorded 'exact', now 'fast'; settings\.precision: "
                                          r"recorded 'float32', now 'int8'"):
        st.open_study(storage, "onnx", {**attrs, **fast_int8.study_attrs()})

    # studies and result folders recorded before the backend was: TRACK.BACKEND in the config, or no key at all
    torch_now = SearchInputs.build(_settings(bench), {1: BACKENDS["torch"].epoch_path(str(exports), 1)})
    assert torch_now.settings["backend"] == "torch" and "TRACK.BACKEND" not in torch_now.settings["config"]
    for name, config_backend in (("before-backend-key", None), ("backend-in-config", "torch")):
        legacy = json.loads(json.dumps(torch_now.settings))
        del legacy["backend"]
        if config_backend:
            legacy["config"]["TRACK.BACKEND"] = config_backend
        legacy_attrs = {**attrs, "settings": legacy, "snapshot_e1": torch_now.snapshots[1]}
        st.open_study(storage, name, legacy_attrs)
        st.open_study(storage, name, {**attrs, **torch_now.study_attrs()})  # resumed by this version: fine
        with pytest.raises(InputsError, match=r"settings\.backend: recorded 'torch', now 'onnx'"):
            st.open_study(storage, name, {**attrs, **onnx.study_attrs()})
        folder = tmp_path / name
        check_result_folder(str(folder), {"settings": legacy, "snapshot": torch_now.snapshots[1]}, [])
        check_result_folder(str(folder), torch_now.folder_record(1), [])
        with pytest.raises(InputsError, match=r"settings\.backend: recorded 'torch', now 'onnx'"):
            check_result_folder(str(folder), onnx.folder_record(1), [])


def test_fast_mode_records_int8_where_every_folder_has_the_int8_graph(bench, exports, tmp_path, capsys):
    """The precision recorded is the one the loaded model runs in; folders with and without an int8 graph are
    refused in fast mode (their epochs would be scored at other precisions)."""
    snapshots = tmp_path / "snapshots"
    for epoch in (1, 2):
        folder = snapshots / f"checkpoint_e{epoch}"
        shutil.copytree(exports / f"checkpoint_e{epoch}", folder)
        if epoch == 1:  # stands in for an --int8 export: the float32 graph named as the int8 one (no calibration)
            settings = json.loads((folder / SETTINGS_FILE).read_text())
            settings["files"]["track_int8"] = "track.onnx"
            (folder / SETTINGS_FILE).write_text(json.dumps(settings))
    onnx = BACKENDS["onnx"]
    assert ev.export_precision(onnx, str(snapshots), [1], fast=True) == "int8"
    assert ev.export_precision(onnx, str(snapshots), [1, 2], fast=False) == "float32"
    cfg = load_cfg(str(bench / "config.yaml"), ["TRACK.BACKEND", "onnx", "TRACK.FAST", "True"], freeze=True)
    data = DatasetFactory.create_dataset("OTB100", bench / "OTB100")
    evaluator = ev.BatchEvaluator(cfg, data, str(tmp_path / "res"), str(snapshots), progress=False)
    assert onnx.precision(evaluator.model(1)) == "int8" and onnx.precision(evaluator.model(2)) == "float32"
    line = tool_error(capsys, main, tool_argv(bench, tmp_path / "res", "OTB100", *LEVEL1, "--backend", "onnx",
                                              "--fast", snapshots=snapshots))
    assert f"{snapshots / 'checkpoint_e1'} have one, {snapshots / 'checkpoint_e2'} do not" in line
    assert main(tool_argv(bench, tmp_path / "res", "OTB100", *LEVEL1, "--backend", "onnx", "--fast",
                          "--end-epoch", "1", snapshots=snapshots)) == 0
    record = json.loads(next((tmp_path / "res" / "OTB100").glob("checkpoint_e1_*/hp_search_inputs.json")).read_text())
    assert (record["settings"]["mode"], record["settings"]["precision"]) == ("fast", "int8")
