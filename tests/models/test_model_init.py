"""KPN.HEATMAP_INIT_PROB: the focal-loss prior on the heat-map output biases, nothing else changed."""
from __future__ import annotations

import math

import pytest
import torch

from helpers import tiny_cfg
from siamkpn.models.model_builder import ModelBuilder


def _build(prob):
    cfg = tiny_cfg(stack=2)
    cfg.KPN.HEATMAP_INIT_PROB = prob
    torch.manual_seed(0)
    return ModelBuilder(cfg).state_dict()


def test_heatmap_prior_sets_only_the_heatmap_output_biases():
    default, prior = _build(0.0), _build(0.1)
    changed = sorted(k for k in default if not torch.equal(default[k], prior[k]))
    heat_biases = sorted(k for k in default if ".heatmap.head" in k and k.endswith(".1.bias"))
    assert changed == heat_biases and len(heat_biases) >= 2  # every stage (and level) of the heat-map head
    for key in heat_biases:
        assert torch.allclose(prior[key], torch.full_like(prior[key], math.log(0.1 / 0.9)))


@pytest.mark.parametrize("prob", [1.0, -0.2])
def test_heatmap_prior_outside_the_unit_interval_is_refused(prob):
    with pytest.raises(ValueError, match="HEATMAP_INIT_PROB"):
        _build(prob)
