"""torchvision ResNet weights converted for the atrous backbone: every tensor placed, the layer outputs equal to
torchvision's up to the shift and border its padding implies, and the real trainer starting from them."""
from __future__ import annotations

import logging
import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision

from helpers import tiny_cfg, tool_error, torch_threads
from siamkpn.cli.synthetic import main as synthetic_main
from siamkpn.cli.train import main as train_main
from siamkpn.config import ConfigError
from siamkpn.models.backbone.resnet_atrous import resnet18, resnet50
from siamkpn.models.backbone.torchvision_weights import (
    TorchvisionDownloadError,
    convert_torchvision_state,
    is_torchvision_layout,
    load_imagenet_backbone,
)
from siamkpn.models.checkpoint import CheckpointError, read_checkpoint

DOWNSAMPLES = ("layer2.0.downsample.0.weight", "layer3.0.downsample.0.weight", "layer4.0.downsample.0.weight")


def _randomise_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics and affine terms, so a misplaced BN tensor changes the outputs."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
    return model


@pytest.fixture(scope="module")
def tv_state():
    """A randomly initialised torchvision resnet50 (no download) with random BN statistics."""
    torch.manual_seed(0)
    return _randomise_bn(torchvision.models.resnet50()).state_dict()


@pytest.fixture(scope="module")
def nets(tv_state):
    """(converted atrous backbone, torchvision resnet50, torchvision dilated resnet50), float64, eval mode."""
    ours = resnet50((2, 3, 4))
    converted, _ = convert_torchvision_state(tv_state, ours, "random torchvision")
    ours.load_state_dict(converted, strict=True)
    tv = torchvision.models.resnet50()
    tv.load_state_dict(tv_state)
    dilated = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    dilated.load_state_dict(tv_state)
    return tuple(m.double().eval() for m in (ours, tv, dilated))


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    """Equal up to float64 rounding (1e-10 of the largest magnitude)."""
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10 * float(b.abs().max()))


def _rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape)), dtype=torch.float64)


def test_every_tensor_is_placed_and_downsamples_embed_the_1x1_at_the_centre_tap(tv_state):
    ours = resnet50((2, 3, 4))
    converted, report = convert_torchvision_state(tv_state, ours, "random torchvision")
    assert set(converted) == set(ours.state_dict())
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    for key, value in converted.items():
        if key in DOWNSAMPLES:
            assert value.shape[2:] == (3, 3) and tv_state[key].shape[2:] == (1, 1)
            assert torch.equal(value[:, :, 1, 1], tv_state[key][:, :, 0, 0])
            value = value.clone()
            value[:, :, 1, 1] = 0
            assert not value.any()  # every other tap is zero
        else:
            assert torch.equal(value, tv_state[key]), key
    assert is_torchvision_layout(tv_state, ours) and not is_torchvision_layout(converted, ours)


def test_stem_equals_torchvision_conv1_padding_on_a_zero_padded_image(nets):
    ours, tv, _ = nets
    x = _rand(2, 3, 63, 63, scale=255.0)
    with torch.no_grad():
        a = ours.maxpool(ours.relu(ours.bn1(ours.conv1(F.pad(x, (3, 3, 3, 3))))))
        b = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        _close(a, b)
        f = _rand(1, 64, 17, 17)
        _close(ours.layer1(f), tv.layer1(f))  # layer1 is the same network


def test_layer2_equals_torchvision_one_cell_shifted_except_the_first_four_rows_and_columns(nets):
    ours, tv, _ = nets
    f = _rand(1, 256, 31, 31)
    with torch.no_grad():
        a, b = ours.layer2(f), tv.layer2(f[:, :, 1:, 1:])
    assert a.shape == b.shape == (1, 512, 15, 15)
    _close(a[:, :, 4:, 4:], b[:, :, 4:, 4:])
    # the border torchvision computes from its padding zero really differs (the stated limit is tight)
    assert (a[:, :, 3, 4:] - b[:, :, 3, 4:]).abs().max() > 1e-3
    assert (a[:, :, 4:, 3] - b[:, :, 4:, 3]).abs().max() > 1e-3


def test_layer3_layer4_equal_strided_torchvision_at_every_subsampled_cell_and_dilated_everywhere(nets):
    ours, tv, dilated = nets
    g = _rand(1, 512, 11, 11)
    with torch.no_grad():
        a3 = ours.layer3(g)
        a4 = ours.layer4(a3)
        b3 = tv.layer3(g)
        b4 = tv.layer4(b3)
        _close(a3[:, :, ::2, ::2], b3)  # borders included
        _close(a4[:, :, ::4, ::4], b4)
        _close(a3, dilated.layer3(g))
        _close(a4, dilated.layer4(a3))


def test_whole_backbone_layer2_equals_torchvision_on_the_crop_shifted_7_pixels_inside_the_border(tv_state):
    ours = resnet50((2,))
    converted, report = convert_torchvision_state(tv_state, ours, "random torchvision")
    ours.load_state_dict(converted, strict=True)
    assert any(k.startswith("layer4.") for k in report.unexpected)  # layers not built are reported, unused
    tv = torchvision.models.resnet50()
    tv.load_state_dict(tv_state)
    ours, tv = ours.double().eval(), tv.double().eval()
    x = _rand(1, 3, 255, 255, scale=255.0)
    with torch.no_grad():
        a = ours(x)
        b = tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x[:, :, 7:, 7:]))))))
    assert a.shape == b.shape == (1, 512, 31, 31)
    _close(a[:, :, 6:26, 6:26], b[:, :, 6:26, 6:26])
    for row in (5, 26):  # one cell further out the padding of one network reaches it
        assert (a[:, :, row, 6:26] - b[:, :, row, 6:26]).abs().max() > 1e-3


def test_basic_block_resnet18_converts_the_same_way():
    torch.manual_seed(2)
    state = _randomise_bn(torchvision.models.resnet18()).state_dict()
    ours = resnet18((2, 3))
    converted, report = convert_torchvision_state(state, ours, "random torchvision resnet18")
    ours.load_state_dict(converted, strict=True)
    tv = torchvision.models.resnet18()
    tv.load_state_dict(state)
    ours, tv = ours.double().eval(), tv.double().eval()
    f = _rand(1, 64, 31, 31)
    with torch.no_grad():
        a2, b2 = ours.layer2(f), tv.layer2(f[:, :, 1:, 1:])
        _close(a2[:, :, 4:, 4:], b2[:, :, 4:, 4:])  # 3 later 3x3 convolutions in layer2, as in resnet50
        assert (a2[:, :, 3, 4:] - b2[:, :, 3, 4:]).abs().max() > 1e-3
        _close(ours.layer3(a2)[:, :, ::2, ::2], tv.layer3(a2))


def test_torchvision_file_is_recognised_and_pysot_layout_still_loads_verbatim(tv_state, tmp_path):
    tv_file = tmp_path / "resnet50-tv.pth"
    torch.save(tv_state, tv_file)
    ours = resnet50((2, 3))
    report = load_imagenet_backbone(ours, str(tv_file))
    assert "fc.weight" in report.unexpected
    assert torch.equal(ours.state_dict()["layer2.0.downsample.0.weight"][:, :, 1, 1],
                       tv_state["layer2.0.downsample.0.weight"][:, :, 0, 0])
    # a file already in this backbone's layout (pysot's resnet50.model) is loaded as it is, not converted
    pysot_like = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in ours.state_dict().items()}
    pysot_file = tmp_path / "resnet50.model"
    torch.save(pysot_like, pysot_file)
    other = resnet50((2, 3))
    load_imagenet_backbone(other, str(pysot_file))
    assert all(torch.equal(other.state_dict()[k], v) for k, v in pysot_like.items())


def test_wrong_torchvision_depth_and_incomplete_file_name_the_file_and_key(tv_state, tmp_path):
    r18 = tmp_path / "resnet18-tv.pth"
    torch.save(torchvision.models.resnet18().state_dict(), r18)
    with pytest.raises(CheckpointError, match=r"resnet18-tv\.pth.*resnet50|resnet50.*resnet18-tv\.pth") as err:
        load_imagenet_backbone(resnet50((2, 3)), str(r18))
    assert "layer1.0.conv1.weight" in str(err.value)
    partial = {k: v for k, v in tv_state.items() if not k.startswith("layer2.3.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"partial\.pth lacks .*layer2\.3\.conv1\.weight"):
        load_imagenet_backbone(resnet50((2, 3)), str(tmp_path / "partial.pth"))


def test_torchvision_keyword_downloads_the_imagenet_weights_for_the_depth(tv_state, monkeypatch):
    """The download itself is replaced (tests never download); the URL asked for and the conversion are real."""
    asked = []

    def fake_download(url, **kwargs):
        asked.append((url, kwargs.get("check_hash")))
        return tv_state

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    ours = resnet50((2, 3))
    load_imagenet_backbone(ours, "torchvision")
    assert asked == [(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url, True)]
    assert torch.equal(ours.state_dict()["conv1.weight"], tv_state["conv1.weight"])
    load_imagenet_backbone(resnet50((2, 3)), "torchvision:IMAGENET1K_V2")
    assert asked[-1][0] == torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url
    with pytest.raises(ConfigError, match="BACKBONE.PRETRAINED torchvision:NOPE.*ResNet50_Weights.NOPE"):
        load_imagenet_backbone(resnet50((2, 3)), "torchvision:NOPE")


def _train_config(tmp_path, pretrained: str):
    """A SiamKPN on resnet50 layers 2-3 (16-channel neck) with a 159-pixel search region; layer3 trains."""
    cfg = tiny_cfg(stack=2)
    cfg.BACKBONE.TYPE = "resnet50"
    cfg.BACKBONE.PRETRAINED = pretrained
    cfg.BACKBONE.TRAIN_LAYERS = ["layer3"]
    cfg.BACKBONE.TRAIN_EPOCH = 0
    cfg.ADJUST.KWARGS.in_channels = [512, 1024]
    cfg.TRAIN.SEARCH_SIZE = 159
    cfg.TRAIN.OUTPUT_SIZE = 19
    cfg.DATASET.NAMES = ["SYNTH"]
    cfg.DATASET.VIDEOS_PER_EPOCH = 2
    cfg.TRAIN.EPOCH = 1
    cfg.TRAIN.BATCH_SIZE = 2
    cfg.TRAIN.NUM_WORKERS = 0
    cfg.TRAIN.LR_WARMUP.WARMUP = False
    cfg.TRAIN.SNAPSHOT_DIR = str(tmp_path / "snapshot")
    cfg.TRAIN.LOG_DIR = str(tmp_path / "logs")
    path = tmp_path / "config.yaml"
    path.write_text(cfg.dump())
    return path


def test_the_trainer_starts_from_a_torchvision_file(tv_state, tmp_path, caplog):
    assert synthetic_main(["--out", str(tmp_path / "synth"), "--seed", "1", "--train-videos", "2",
                           "--train-frames", "4", "--parts", "train"]) == 0
    tv_file = tmp_path / "resnet50-tv.pth"
    torch.save(tv_state, tv_file)
    config = _train_config(tmp_path, str(tv_file))
    with torch_threads(1), caplog.at_level(logging.INFO):
        status = train_main(["--cfg", str(config), "--data-root", str(tmp_path / "synth" / "train"),
                             "--device", "cpu", "--no-progress"])
    assert status == 0
    assert "torchvision ImageNet weights converted" in caplog.text
    trained = read_checkpoint(str(tmp_path / "snapshot" / "checkpoint_e1.pth"))["state_dict"]
    expected, _ = convert_torchvision_state(tv_state, resnet50((2, 3)), "random torchvision")
    frozen = [k for k in expected if not k.startswith("layer3.")]
    # frozen layers (BN statistics fixed too) are exactly the converted torchvision tensors
    assert all(torch.equal(trained[f"backbone.{k}"], expected[k]) for k in frozen)
    # layer3 took a finite optimiser step from them
    conv = "layer3.1.conv2.weight"
    assert torch.isfinite(trained[f"backbone.{conv}"]).all()
    assert not torch.equal(trained[f"backbone.{conv}"], expected[conv])


def test_the_trainer_reports_an_offline_torchvision_download_in_one_line(tmp_path, monkeypatch, capsys):
    def offline(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    config = _train_config(tmp_path, "torchvision")
    line = tool_error(capsys, train_main, ["--cfg", str(config), "--data-root", str(tmp_path), "--device", "cpu",
                                          "--no-progress"], code=1)
    assert "resnet50-0676ba61.pth" in line and "BACKBONE.PRETRAINED to its path" in line
    with pytest.raises(TorchvisionDownloadError):
        load_imagenet_backbone(resnet50((2,)), "torchvision")
