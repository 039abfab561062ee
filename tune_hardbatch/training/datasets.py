"""The datasets `data.name` can name, and what is known of each before anything is decoded: where it comes
from, its layout, the torchvision files that show it is present, whether it holds digits, whether it needs
`data.root`. Pure (no torch): config validation and the input checks read it before torch is imported; the
loaders are `data.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class DatasetInfo:
    source: str  # sklearn | torchvision | folder | synthetic
    layout: Optional[tuple[int, int, int, int, int]] = None  # (training samples, channels, height, width, classes)
    files: Optional[str] = None  # torchvision's files under data.root: present means no download is needed
    digits: bool = False  # flipping a digit changes its meaning: augmentation crops only
    needs_root: bool = False  # data.root must be given (no default location)


# in the order error messages list them
DATASETS = {
    "digits": DatasetInfo("sklearn", (1437, 1, 8, 8, 10), digits=True),  # bundled with scikit-learn
    "cifar10": DatasetInfo("torchvision", (50000, 3, 32, 32, 10), "cifar-10-batches-py"),
    "cifar100": DatasetInfo("torchvision", (50000, 3, 32, 32, 100), "cifar-100-python"),
    "stl10": DatasetInfo("torchvision", (5000, 3, 96, 96, 10), "stl10_binary"),
    "svhn": DatasetInfo("torchvision", (73257, 3, 32, 32, 10), "train_32x32.mat", digits=True),
    "mnist": DatasetInfo("torchvision", (60000, 1, 28, 28, 10), "MNIST/raw", digits=True),
    "fashion_mnist": DatasetInfo("torchvision", (60000, 1, 28, 28, 10), "FashionMNIST/raw"),
    "imagefolder": DatasetInfo("folder", needs_root=True),  # root/train/<class>/*, root/test/<class>/*
    "synthetic": DatasetInfo("synthetic"),  # random images of data.synthetic_shape
}
NAMES = tuple(DATASETS)
