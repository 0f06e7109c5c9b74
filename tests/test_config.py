"""Config: independent defaults, file + override merging, and clear errors for unknown keys."""
from __future__ import annotations

from pathlib import Path

import pytest

from siamkpn.config import ConfigError, get_cfg, load_cfg


def test_get_cfg_returns_independent_copies():
    a, b = get_cfg(), get_cfg()
    a.TRACK.LR = 0.123
    a.DATASET.NAMES.append("GOT10K")
    assert b.TRACK.LR == 0.4 and "GOT10K" not in b.DATASET.NAMES


def test_file_then_opts(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("TRACK:\n  LR: 0.3\n  PENALTY_K: 1\nTRAIN:\n  STACK: 2\n")
    cfg = load_cfg(str(path), ["TRACK.LR", "0.7", "DATASET.NAMES", "['SYNTH']"])
    assert cfg.TRACK.LR == 0.7 and cfg.TRAIN.STACK == 2 and cfg.DATASET.NAMES == ["SYNTH"]
    assert isinstance(cfg.TRACK.PENALTY_K, float) and cfg.TRACK.PENALTY_K == 1.0


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("TRACK:\n  PENALTY_KK: 0.1\n")
    with pytest.raises(ConfigError, match=r"TRACK\.PENALTY_KK.*typo\.yaml"):
        load_cfg(str(path))
    with pytest.raises(ConfigError, match=r"TRAIN\.NOPE.*--opts"):
        load_cfg(None, ["TRAIN.NOPE", "1"])


def test_wrong_type_and_bad_yaml_are_reported(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("TRAIN:\n  STACK: three\n")
    with pytest.raises(ConfigError, match=r"TRAIN\.STACK.*bad\.yaml"):
        load_cfg(str(path))
    path.write_text("TRAIN: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_cfg(str(path))
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_cfg(str(tmp_path / "missing.yaml"))


def test_free_form_kwargs_nodes_accept_new_keys(tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text("BACKBONE:\n  KWARGS:\n    used_layers: [2, 3]\nTRAIN:\n  LR:\n    KWARGS:\n      start_lr: 0.01\n")
    cfg = load_cfg(str(path))
    assert cfg.BACKBONE.KWARGS.used_layers == [2, 3] and cfg.TRAIN.LR.KWARGS.start_lr == 0.01


def test_python_config_is_refused_not_executed(tmp_path):
    """yacs runs a .py config as code: only .yaml/.yml are configs (ConfigError naming the file)."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.py"
    path.write_text(f"open({str(marker)!r}, 'w').close()\nfrom yacs.config import CfgNode\ncfg = CfgNode()\n")
    with pytest.raises(ConfigError, match=r"evil\.py.*\.yaml or \.yml"):
        load_cfg(str(path))
    assert not marker.exists()
    yml = tmp_path / "c.yml"
    yml.write_text("TRACK:\n  LR: 0.25\n")
    assert load_cfg(str(yml)).TRACK.LR == 0.25


@pytest.mark.parametrize("opts,key", [(["TRAIN.EPOCH"], "TRAIN.EPOCH"),
                                      (["TRAIN.EPOCH", "2", "TRAIN.BATCH_SIZE"], "TRAIN.BATCH_SIZE"),
                                      (["TRAIN.EPOCH", "TRAIN.BATCH_SIZE", "4"], "TRAIN.EPOCH")])
def test_odd_opts_name_the_key_without_value(opts, key):
    with pytest.raises(ConfigError, match=rf"KEY VALUE pairs.*'{key}' has no value"):
        load_cfg(None, opts)


def test_training_safety_keys_have_sane_defaults():
    train = get_cfg().TRAIN
    assert 0.0 < train.MAX_BAD_FRACTION < 1.0
    assert train.HUGE_LOSS > 1e3 and train.MAX_WEIGHT_ABS >= 1e3  # above what healthy training produces


def test_compatibility_only_keys_warn_outside_the_published_configs(tmp_path):
    import warnings

    from siamkpn.config import COMPAT_ONLY_KEYS, CompatKeyWarning

    repo = Path(__file__).resolve().parents[1]
    published = sorted((repo / "experiments").glob("siamkpn_r50_*/config.yaml"))
    assert len(published) == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompatKeyWarning)
        for path in published:  # as released: they set META_ARC / TRAIN.EVAL / TRACK.UPDATE_LR, silently
            load_cfg(str(path))
        (tmp_path / "dumped.yaml").write_text(get_cfg().dump())  # every key, default values: nothing to say
        load_cfg(str(tmp_path / "dumped.yaml"))
    edited = tmp_path / "edited.yaml"
    edited.write_text((repo / "experiments/siamkpn_r50_stack3_difstd/config.yaml").read_text() + "\n# my change\n")
    with pytest.warns(CompatKeyWarning, match="META_ARC is accepted only so that the published configs load"):
        load_cfg(str(edited))
    with pytest.warns(CompatKeyWarning, match="--opts: CUDA"):
        load_cfg(None, ["CUDA", "False"])
    assert set(COMPAT_ONLY_KEYS) == {"META_ARC", "CUDA", "TRAIN.EVAL", "TRACK.UPDATE_LR"}
    with pytest.raises(ConfigError, match="TRAIN.LOG_GRADS"):  # never read, so no longer accepted
        load_cfg(None, ["TRAIN.LOG_GRADS", "True"])


REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(REPO.glob("experiments/*/config.yaml")) + sorted(
    (REPO.parent / "shared" / "spec" / "published-configs").glob("*/config.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_every_shipped_config_passes_the_value_rules(path):
    load_cfg(str(path))


def test_the_defaults_pass_the_value_rules():
    load_cfg(None)
    assert len(SHIPPED) >= 8  # the quick-start and the seven published configs at least


@pytest.mark.parametrize("opts,message", [
    (["TRACK.INSTANCE_SIZE", "100"], "TRACK.INSTANCE_SIZE = 100 (from --opts) must exceed TRACK.EXEMPLAR_SIZE 127 by "
                                     "a multiple of TRAIN.STRIDE 8 (nearest: 135)"),
    (["TRACK.INSTANCE_SIZE", "64"], "TRACK.INSTANCE_SIZE = 64 (from --opts) must exceed"),
    (["TRACK.INSTANCE_SIZE", "256"], "TRACK.INSTANCE_SIZE = 256 (from --opts) must exceed TRACK.EXEMPLAR_SIZE 127 by "
                                     "a multiple of TRAIN.STRIDE 8 (nearest: 255 or 263)"),
    (["TRACK.INSTANCE_SIZE", "160"], "(nearest: 159 or 167)"),
    (["TRACK.LR", "5"], "TRACK.LR = 5.0 (from --opts) must be in [0, 1]"),
    (["TRACK.CONTEXT_AMOUNT", "-1"], "TRACK.CONTEXT_AMOUNT = -1.0 (from --opts) must be at least 0"),
    (["TRAIN.EPOCH", "0"], "TRAIN.EPOCH = 0 (from --opts) must be at least 1"),
    (["TRAIN.START_EPOCH", "20"], "TRAIN.START_EPOCH = 20 (from --opts) must be below TRAIN.EPOCH 20"),
    (["TRAIN.BATCH_SIZE", "0"], "TRAIN.BATCH_SIZE = 0 (from --opts) must be at least 1"),
    (["TRAIN.BASE_LR", "0"], "TRAIN.BASE_LR = 0.0 (from --opts) must be above 0"),
    (["TRAIN.STACK", "4"], "TRAIN.STACK = 4 (from --opts) must be in [1, 3]"),
    (["TRAIN.OPTI", "adamw"], "TRAIN.OPTI = 'adamw' (from --opts) must be one of adam, sgd"),
    (["TRAIN.OUTPUT_SIZE", "25"], "TRAIN.OUTPUT_SIZE = 25 (from --opts) must be (SEARCH_SIZE - EXEMPLAR_SIZE) / "
                                  "STRIDE + 1 + BASE_SIZE = 31"),
    (["DATASET.SEARCH.SCALE", "1.0"], "DATASET.SEARCH.SCALE = 1.0 (from --opts) must be in [0, 1)"),
    (["DATASET.NAMES", "['VID', 'IMAGENET']"], "DATASET.NAMES (from --opts) lists 'IMAGENET'"),
])
def test_values_outside_their_range_name_key_value_rule_and_file(tmp_path, opts, message):
    path = tmp_path / "exp.yaml"
    path.write_text("TRACK:\n  LR: 0.3\n")
    with pytest.raises(ConfigError) as err:
        load_cfg(str(path), opts)
    assert str(err.value).startswith(f"config {path}: ") and message in str(err.value)


def test_a_bad_value_from_the_file_names_the_file_only(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("TRACK:\n  WINDOW_INFLUENCE: 1.5\nTRAIN:\n  EPOCH: 3\n  LR_WARMUP:\n    EPOCH: 3\n")
    with pytest.raises(ConfigError) as err:
        load_cfg(str(path))
    assert str(err.value) == f"config {path}: TRACK.WINDOW_INFLUENCE = 1.5 must be in [0, 1]"
    path.write_text("TRAIN:\n  EPOCH: 3\n  LR_WARMUP:\n    EPOCH: 3\n")
    with pytest.raises(ConfigError, match=r"TRAIN\.LR_WARMUP\.EPOCH = 3 must be below TRAIN\.EPOCH 3"):
        load_cfg(str(path))
    assert load_cfg(str(path), ["TRAIN.LR_WARMUP.WARMUP", "False"]).TRAIN.EPOCH == 3


def test_an_empty_config_is_one_error_naming_the_file(tmp_path):
    for text in ("", "# nothing yet\n"):
        path = tmp_path / "empty.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=rf"config file {path} is empty"):
            load_cfg(str(path))


def test_the_search_and_the_config_share_the_tracker_ranges():
    """The search's grid bounds are the config's ranges: what one refuses, the other refuses."""
    from siamkpn.hpsearch.grid import BOUNDS, parse_range

    for param, (low, high) in BOUNDS.items():
        key = f"TRACK.{param.upper()}"
        for value in (low, min(high, 7.0)):
            assert load_cfg(None, [key, str(value)])[key.split(".")[0]][key.split(".")[1]] == value
            parse_range(str(value), bounds=BOUNDS[param])
        for value in (low - 0.01, high + 0.01):
            if value == float("inf"):
                continue
            with pytest.raises(ConfigError, match=rf"{key} = "):
                load_cfg(None, [key, str(value)])
            with pytest.raises(ValueError):
                parse_range(str(value), bounds=BOUNDS[param])
