"""The sampler of one training epoch: this rank's disjoint share of the epoch's indices, whole batches only."""
from __future__ import annotations

from typing import List

import torch
from torch.utils.data import Dataset, Sampler

__all__ = ["EpochShardSampler"]


class EpochShardSampler(Sampler):
    """This rank's share of one epoch's sample indices, whole batches only.

    A dataset with `epoch_indices(epoch)` (TrainingSet: every index is a distinct, already shuffled
    sample) decides the epoch's indices; any other dataset is permuted with a seed per epoch. Ranks take
    interleaved slices, so N processes see disjoint samples and a resumed epoch sees the same ones.
    """

    def __init__(self, dataset: Dataset, rank: int, world_size: int, batch_size: int, seed: int) -> None:
        self.dataset, self.rank, self.world, self.batch, self.seed = dataset, rank, world_size, batch_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> List[int]:
        if hasattr(self.dataset, "epoch_indices"):
            indices = list(self.dataset.epoch_indices(self.epoch))
        else:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            indices = torch.randperm(len(self.dataset), generator=gen).tolist()
        usable = len(indices) // (self.world * self.batch) * (self.world * self.batch)
        return indices[:usable][self.rank::self.world]

    def __iter__(self):
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())
