"""Same weights in, same numbers out: neck and every stage's head outputs equal the published model's."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from siamkpn.config import load_cfg
from siamkpn.models.checkpoint import load_checkpoint
from siamkpn.models.model_builder import ModelBuilder


def build_reference_model(reference_dir):
    cfg = load_cfg(str(reference_dir / "config.yaml"))
    model = ModelBuilder(cfg).eval()
    load_checkpoint(model, str(reference_dir / "weights_fp16.pth"), strict=True)
    return cfg, model


@pytest.fixture(scope="module")
def reference(reference_dir):
    cfg, model = build_reference_model(reference_dir)
    io = np.load(reference_dir / "model_io.npz")
    tol = json.loads((reference_dir / "meta.json").read_text())["tolerances"]
    return cfg, model, io, tol


def test_neck_features(reference):
    _, model, io, tol = reference
    with torch.inference_mode():
        zf = model.template(torch.from_numpy(io["z"]))
        xf = model.extract(torch.from_numpy(io["x"]))
    for level in range(len(zf)):
        np.testing.assert_allclose(zf[level].numpy(), io[f"zf_{level}"], rtol=0, atol=tol["neck_features_abs"])
        np.testing.assert_allclose(xf[level].numpy(), io[f"xf_{level}"], rtol=0, atol=tol["neck_features_abs"])


def test_every_stage_output(reference):
    cfg, model, io, tol = reference
    atol = {"heatmap": tol["heatmap_logits_abs"], "offsets": tol["offsets_abs"], "objsize": tol["objsize_abs"]}
    with torch.inference_mode():
        out = model.track(model.template(torch.from_numpy(io["z"])), torch.from_numpy(io["x"]))
    for name, stages in out.items():
        assert len(stages) == cfg.TRAIN.STACK
        for s, tensor in enumerate(stages):
            np.testing.assert_allclose(tensor.numpy(), io[f"{name}_{s}"], rtol=0, atol=atol[name],
                                       err_msg=f"{name} stage {s}")


def test_cached_template_kernels_give_identical_outputs(reference):
    """The template side computed once gives bit-identical outputs to recomputing it per frame."""
    _, model, io, _ = reference
    with torch.inference_mode():
        zf = model.template(torch.from_numpy(io["z"]))
        kernels = model.template_kernels(zf)
        a = model.track(zf, torch.from_numpy(io["x"]))
        b = model.track(zf, torch.from_numpy(io["x"]), kernels=kernels)
    for name in a:
        for ta, tb in zip(a[name], b[name]):
            assert torch.equal(ta, tb)
