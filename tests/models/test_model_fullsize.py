"""The full-size published configs on parts the small reference fixtures do not cover: layer4 (dilation 4),
three fused levels and two stages, checked against a functional restatement of MODEL_SPEC.md."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import REPO
from siamkpn.config import load_cfg
from siamkpn.models.model_builder import ModelBuilder


def _bn(x, sd, p):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        False, 0.0, 1e-5)


def _bottleneck_layer(x, sd, prefix, blocks, stride, dilation):
    """A ResNet-50 atrous layer exactly as MODEL_SPEC.md words it."""
    for i in range(blocks):
        p = f"{prefix}.{i}"
        has_ds = p + ".downsample.0.weight" in sd
        s = stride if i == 0 else 1
        if has_ds and dilation > 1:
            d2, pad2 = dilation // 2, dilation // 2
        elif dilation > 1:
            d2, pad2 = dilation, dilation
        else:
            d2, pad2 = 1, 2 - s
        out = F.relu(_bn(F.conv2d(x, sd[p + ".conv1.weight"]), sd, p + ".bn1"))
        out = F.relu(_bn(F.conv2d(out, sd[p + ".conv2.weight"], stride=s, padding=pad2, dilation=d2), sd, p + ".bn2"))
        out = _bn(F.conv2d(out, sd[p + ".conv3.weight"]), sd, p + ".bn3")
        if has_ds:
            w = sd[p + ".downsample.0.weight"]
            if w.shape[-1] == 1:
                identity = F.conv2d(x, w, stride=s)
            else:
                dd = dilation // 2 if dilation > 1 else 1
                identity = F.conv2d(x, w, stride=s, padding=dd if dilation > 1 else 0, dilation=dd)
            identity = _bn(identity, sd, p + ".downsample.1")
        else:
            identity = x
        x = F.relu(out + identity)
    return x


def _randomise_bn(model, gen):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


@pytest.fixture(scope="module")
def stack2_model():
    torch.manual_seed(0)
    cfg = load_cfg(str(REPO / "experiments" / "siamkpn_r50_stack2_difstd" / "config.yaml"))
    model = ModelBuilder(cfg).eval()
    with torch.no_grad():
        _randomise_bn(model, torch.Generator().manual_seed(1))
        for name in ("heatmap_weight", "offsets_weight", "objsize_weight"):
            getattr(model.kpn_head, name).copy_(torch.tensor([0.3, -0.2, 0.5]))
    return cfg, model


def test_backbone_layers_2_3_4_follow_the_spec(stack2_model):
    _, model = stack2_model
    sd = {k[len("backbone."):]: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    x = torch.rand(1, 3, 127, 127, generator=torch.Generator().manual_seed(2)) * 255
    with torch.inference_mode():
        ours = model.backbone(x)
        y = F.relu(_bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=0), sd, "bn1"))
        y = F.max_pool2d(y, 3, 2, 1)
        expected = []
        for idx, (blocks, stride, dil) in enumerate([(3, 1, 1), (4, 2, 1), (6, 1, 2), (3, 1, 4)], start=1):
            y = _bottleneck_layer(y, sd, f"layer{idx}", blocks, stride, dil)
            if idx >= 2:
                expected.append(y)
    assert [tuple(t.shape) for t in ours] == [(1, 512, 15, 15), (1, 1024, 15, 15), (1, 2048, 15, 15)]
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)


def test_three_levels_two_stages_fused_by_softmax_weights(stack2_model):
    cfg, model = stack2_model
    gen = torch.Generator().manual_seed(3)
    zf = [torch.randn(2, 256, 15, 15, generator=gen) for _ in range(3)]
    xf = [torch.randn(2, 256, 31, 31, generator=gen) for _ in range(3)]
    with torch.inference_mode():
        fused = model.kpn_head(zf, xf)
        per_level = [getattr(model.kpn_head, f"kpn{i}")(zf[i], xf[i]) for i in range(3)]
    weight = torch.softmax(torch.tensor([0.3, -0.2, 0.5]), 0)
    for name, channels in (("heatmap", 1), ("offsets", 2), ("objsize", 2)):
        assert len(fused[name]) == cfg.TRAIN.STACK == 2
        for s in range(2):
            expected = sum(weight[i] * per_level[i][name][s] for i in range(3))
            assert fused[name][s].shape == (2, channels, 31, 31)
            torch.testing.assert_close(fused[name][s], expected, rtol=1e-5, atol=1e-5)
    # batch samples are independent: sample 1 alone gives the same result as inside the batch
    with torch.inference_mode():
        single = model.kpn_head([z[1:] for z in zf], [x[1:] for x in xf])
    torch.testing.assert_close(single["heatmap"][1], fused["heatmap"][1][1:], rtol=1e-5, atol=1e-4)


def test_end_to_end_shapes_and_finite(stack2_model):
    _, model = stack2_model
    gen = torch.Generator().manual_seed(4)
    with torch.inference_mode():
        out = model.track(model.template(torch.rand(1, 3, 127, 127, generator=gen) * 255),
                          torch.rand(1, 3, 255, 255, generator=gen) * 255)
    for name in ("heatmap", "offsets", "objsize"):
        assert all(torch.isfinite(t).all() for t in out[name])
