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
