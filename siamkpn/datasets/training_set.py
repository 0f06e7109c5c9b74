"""The training pairs of SiamKPN: pysot's TrkDataset over prepared sub-datasets, with keypoint labels.

Indexing: `len(dataset)` is VIDEOS_PER_EPOCH x TRAIN.EPOCH (pysot's length, every epoch back to back);
`epoch_indices(e)` is the index range of epoch e. Sample i depends only on (seed, i): its video comes
from a seeded shuffle of the sub-datasets' NUM_USE picks and every random draw (gray, negative, frames,
augmentation) from its own generator. So DataLoader workers and ranks, which receive different
indices, draw different samples, and a resumed epoch sees exactly the samples it would have seen.

A crop that cannot be read (missing, truncated, corrupt) is logged with its path and the reason, counted in
`skipped`, and the sample is replaced by another one chosen deterministically from (seed, i).
"""
from __future__ import annotations

import logging
import math
import os
from typing import Dict, NamedTuple, Optional, Tuple

import cv2
import numpy as np
from torch.utils.data import Dataset

from toolkit.datasets.image_file import truncation
from toolkit.errors import BadValue

from .augmentation import Augmentation
from .prepare.crop import CONTEXT_AMOUNT
from .sub_dataset import Sample, SubDataset

__all__ = ["TrainingSet", "Pair", "read_crop", "resolve_data_root", "resolve_path", "worker_init_fn"]

logger = logging.getLogger(__name__)

DATA_ROOT_ENV = "SIAMKPN_DATA"
MAX_REPLACEMENTS = 100  # unreadable crops in a row before giving up on a sample


def resolve_data_root(cfg, data_root: Optional[str] = None) -> str:
    """Folder that relative ROOT/ANNO paths start from: argument, cfg.DATASET.DATA_ROOT, $SIAMKPN_DATA, cwd."""
    for root in (data_root, cfg.DATASET.DATA_ROOT, os.environ.get(DATA_ROOT_ENV)):
        if root:
            return os.path.abspath(os.path.expanduser(root))
    return os.getcwd()


def resolve_path(path: str, root: str) -> str:
    """`path` itself when absolute, else joined to `root`."""
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(root, path)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: one OpenCV thread per worker (workers already run in parallel).

    Call `before_worker_fork()` in the parent first: see there why.
    """
    cv2.setNumThreads(1)
    cv2.ocl.setUseOpenCL(False)


def before_worker_fork() -> None:
    """Shrink OpenCV's thread pool in the parent before DataLoader workers are forked.

    The pool's threads do not survive fork; if the parent ever used the pool (e.g. it generated or
    augmented images itself), a forked worker that touches it (`cv2.setNumThreads`, or any parallel
    OpenCV call) waits forever on a condition variable that those threads held. The parent does no image
    work once workers exist, so one OpenCV thread there costs nothing.
    """
    cv2.setNumThreads(1)


def read_crop(path: str) -> Tuple[Optional[np.ndarray], str]:
    """(BGR image, "") of a crop file, or (None, why) when it is missing, truncated or cannot be decoded."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        return None, f"missing or unreadable: {err.strerror or type(err).__name__}"
    # OpenCV decodes a cut JPEG with grey rows and no error: such a crop would train on a wrong image
    problem = truncation(data)
    if problem is not None:
        return None, problem
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    return (image, "") if image is not None else (None, "corrupt: cannot be decoded")


def _seed_key(seed: int) -> int:
    return int(seed) % (2**63)  # SeedSequence wants non-negative entropy


class Pair(NamedTuple):
    """A planned training pair: the two crops, whether it is negative or grayscale, and its generator."""

    template: Sample
    search: Sample
    neg: bool
    gray: bool
    rng: np.random.Generator


class TrainingSet(Dataset):
    """Training pairs with labels; item: dict of numpy arrays (see `__getitem__`).

    Args:
        cfg: the experiment config (DATASET.*, TRAIN.EXEMPLAR_SIZE/SEARCH_SIZE/OUTPUT_SIZE/EPOCH/SEED, and
            the TRAIN keys the keypoint labels read).
        data_root: folder for relative ROOT/ANNO paths (see `resolve_data_root`).
        seed: sampling seed (default TRAIN.SEED).
        epochs: number of epochs in the index space (default TRAIN.EPOCH).
    """

    def __init__(self, cfg, data_root: Optional[str] = None, seed: Optional[int] = None,
                 epochs: Optional[int] = None) -> None:
        super().__init__()
        from .targets import KeypointTarget  # written beside this module; imported here to keep import light

        train, data = cfg.TRAIN, cfg.DATASET
        expected = (train.SEARCH_SIZE - train.EXEMPLAR_SIZE) / train.STRIDE + 1 + train.BASE_SIZE
        if expected != train.OUTPUT_SIZE:
            raise BadValue(f"TRAIN.OUTPUT_SIZE {train.OUTPUT_SIZE} does not match (SEARCH_SIZE - EXEMPLAR_SIZE) / "
                             f"STRIDE + 1 + BASE_SIZE = {expected}")
        self.exemplar_size, self.search_size = int(train.EXEMPLAR_SIZE), int(train.SEARCH_SIZE)
        self.output_size = int(train.OUTPUT_SIZE)
        self.data_root = resolve_data_root(cfg, data_root)
        self.subsets = []
        start = 0
        for name in data.NAMES:
            if name not in data or not hasattr(data[name], "ROOT"):
                raise BadValue(f"DATASET.NAMES lists '{name}', which is not a DATASET sub-dataset node")
            node = data[name]
            sub = SubDataset(name, resolve_path(node.ROOT, self.data_root), resolve_path(node.ANNO, self.data_root),
                             node.FRAME_RANGE, node.NUM_USE, start)
            start += sub.num
            self.subsets.append(sub)
        if not self.subsets:
            raise BadValue("DATASET.NAMES is empty: no training data")
        self.total_use = sum(s.num_use for s in self.subsets)
        if self.total_use <= 0:
            raise BadValue("every DATASET.<name>.NUM_USE is 0: no training data")
        self.videos_per_epoch = int(data.VIDEOS_PER_EPOCH) if data.VIDEOS_PER_EPOCH > 0 else self.total_use
        self.epochs = int(train.EPOCH if epochs is None else epochs)
        self.seed = _seed_key(train.SEED if seed is None else seed)
        self.neg_prob, self.gray_prob = float(data.NEG), float(data.GRAY)
        self.template_aug = Augmentation(data.TEMPLATE.SHIFT, data.TEMPLATE.SCALE, data.TEMPLATE.BLUR,
                                         data.TEMPLATE.FLIP, data.TEMPLATE.COLOR)
        self.search_aug = Augmentation(data.SEARCH.SHIFT, data.SEARCH.SCALE, data.SEARCH.BLUR,
                                       data.SEARCH.FLIP, data.SEARCH.COLOR)
        self.target = KeypointTarget(cfg)
        self.skipped = 0  # samples replaced because a crop could not be read (this process)
        self._blocks: Dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.videos_per_epoch * self.epochs

    def epoch_indices(self, epoch: int) -> range:
        """Indices of epoch `epoch` (0-based)."""
        return range(epoch * self.videos_per_epoch, (epoch + 1) * self.videos_per_epoch)

    def _block(self, block: int) -> np.ndarray:
        """Global video indices of one pass: every sub-dataset's NUM_USE pick, concatenated and shuffled."""
        if block not in self._blocks:
            picks = [s.pick(np.random.default_rng([self.seed, 2, block, i])) for i, s in enumerate(self.subsets)]
            order = np.concatenate(picks)
            np.random.default_rng([self.seed, 1, block]).shuffle(order)
            if len(self._blocks) >= 2:
                self._blocks.pop(next(iter(self._blocks)))
            self._blocks[block] = order
        return self._blocks[block]

    def video_of(self, index: int) -> int:
        """Global video index that sample `index` starts from."""
        return int(self._block(index // self.total_use)[index % self.total_use])

    def _subset(self, video: int) -> Tuple[SubDataset, int]:
        for sub in self.subsets:
            if video < sub.start_idx + sub.num:
                return sub, video - sub.start_idx
        raise IndexError(f"video index {video} out of range")

    def plan(self, index: int, attempt: int = 0) -> Pair:
        """The pair behind sample `index` (attempt > 0: its deterministic replacement number `attempt`)."""
        if attempt == 0:
            rng = np.random.default_rng([self.seed, 0, index])
            video = self.video_of(index)
        else:
            rng = np.random.default_rng([self.seed, 3, index, attempt])
            video = self.video_of(int(rng.integers(len(self))))
        gray = self.gray_prob > rng.random()
        neg = self.neg_prob > rng.random()
        sub, local = self._subset(video)
        if neg:
            template = sub.random_target(rng, local)
            other = self.subsets[int(rng.integers(len(self.subsets)))]
            search = other.random_target(rng, exclude=local if other is sub else None)
        else:
            template, search = sub.positive_pair(local, rng)
        return Pair(template, search, bool(neg), bool(gray), rng)

    def _crop_box(self, image: np.ndarray, box: Tuple[float, ...]) -> np.ndarray:
        """Target box in the prepared crop: centred, scaled as the crop scaled the exemplar context."""
        h_img, w_img = image.shape[:2]
        w, h = (box[2] - box[0], box[3] - box[1]) if len(box) == 4 else box[:2]
        context = CONTEXT_AMOUNT * (w + h)
        scale = self.exemplar_size / math.sqrt((w + context) * (h + context))
        w, h = w * scale, h * scale
        cx, cy = w_img // 2, h_img // 2
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
        """{'template' [3,E,E], 'search' [3,S,S] float32 BGR 0..255, 'label_heatmap' [K,1,O,O], 'label_offsets',
        'label_objsize' [2,O,O], 'neg' (float32 scalar), 'bbox' [4] (corner box in the search crop)}."""
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"sample index {index} out of range [0, {len(self)})")
        for attempt in range(MAX_REPLACEMENTS):
            pair = self.plan(index, attempt)
            images = []
            for sample in (pair.template, pair.search):
                image, problem = read_crop(sample.path)
                if image is None:
                    self.skipped += 1
                    logger.warning("cannot read training crop %s (%s); sample %d replaced "
                                   "(%d skipped so far in this process)", sample.path, problem, index, self.skipped)
                    break
                images.append(image)
            else:
                return self._make_item(pair, images[0], images[1])
        raise RuntimeError(f"sample {index}: {MAX_REPLACEMENTS} replacement pairs in a row could not be read "
                           f"(last: {sample.path}); check the DATASET ROOT folders under {self.data_root}")

    def _make_item(self, pair: Pair, template_image: np.ndarray, search_image: np.ndarray) -> Dict[str, np.ndarray]:
        rng = pair.rng
        template, _ = self.template_aug(template_image, self._crop_box(template_image, pair.template.box),
                                        self.exemplar_size, gray=pair.gray, rng=rng)
        search, bbox = self.search_aug(search_image, self._crop_box(search_image, pair.search.box),
                                       self.search_size, gray=pair.gray, rng=rng)
        heatmap, offsets, objsize = self.target(bbox, self.output_size, pair.neg)
        return {
            "template": np.ascontiguousarray(template.transpose(2, 0, 1), dtype=np.float32),
            "search": np.ascontiguousarray(search.transpose(2, 0, 1), dtype=np.float32),
            "label_heatmap": np.asarray(heatmap, dtype=np.float32),
            "label_offsets": np.asarray(offsets, dtype=np.float32),
            "label_objsize": np.asarray(objsize, dtype=np.float32),
            "neg": np.array(pair.neg, dtype=np.float32),
            "bbox": np.asarray(bbox, dtype=np.float32),
        }
