"""One real training step of the published SiamKPN-3s config (ResNet-50, 3 stages) on CPU, batch 2."""
from __future__ import annotations

import numpy as np
import torch

from conftest import REPO
from siamkpn.config import load_cfg
from siamkpn.datasets.targets import KeypointTarget
from siamkpn.engine.distributed import DistInfo
from siamkpn.engine.trainer import Trainer
from siamkpn.models.model_builder import ModelBuilder


class TwoPairs(torch.utils.data.Dataset):
    def __init__(self, cfg):
        self.target = KeypointTarget(cfg)

    def __len__(self):
        return 2

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        hm, off, size = self.target(np.array([100.0 + 5 * i, 90.0, 160.0, 170.0 - 7 * i]), 31, neg=False)
        return {"template": rng.uniform(0, 255, (3, 127, 127)).astype(np.float32),
                "search": rng.uniform(0, 255, (3, 255, 255)).astype(np.float32),
                "label_heatmap": hm, "label_offsets": off, "label_objsize": size}


def test_one_step_of_stack3_r50(tmp_path):
    cfg = load_cfg(str(REPO / "experiments" / "siamkpn_r50_stack3_difstd" / "config.yaml"),
                   ["TRAIN.BATCH_SIZE", "2", "TRAIN.NUM_WORKERS", "0", "TRAIN.EPOCH", "1",
                    "TRAIN.LR_WARMUP.WARMUP", "False", "BACKBONE.TRAIN_EPOCH", "0",
                    "TRAIN.SNAPSHOT_DIR", str(tmp_path / "s"), "TRAIN.LOG_DIR", str(tmp_path / "l")])
    torch.manual_seed(0)
    trainer = Trainer(cfg, ModelBuilder(cfg), TwoPairs(cfg), DistInfo(), progress=False)
    trainer._prepare_epoch(0)
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    batch = next(iter(trainer.loader))
    assert batch["label_heatmap"].shape == (2, 3, 1, 31, 31)
    losses = trainer._step(trainer._to_device(batch))
    assert losses is not None and all(np.isfinite(v) for v in losses.values())
    changed = {k for k, v in trainer.model.named_parameters() if not torch.equal(v, before[k])}
    assert "kpn_head.kpn2.objsize.head3.1.bias" in changed and "backbone.layer4.2.conv3.weight" in changed
    assert "backbone.layer1.0.conv1.weight" not in changed  # not in TRAIN_LAYERS
