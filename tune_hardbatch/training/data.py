"""Datasets decoded once into uint8 tensors [N, C, H, W] held on the run's device.

Sources: scikit-learn's bundled `digits`, torchvision's CIFAR-10/100, MNIST, Fashion-MNIST, SVHN and
STL-10 (files under `data.root`), an `imagefolder` tree (decoded with Pillow, cached on disk) and
`synthetic` random images. Images keep their native size here; `data.image_size` is applied on the
device by `augment` (only mixed-size image folders are resized here, see `_load_imagefolder`).

Splits (`load_dataset`), all fixed by `split_seed` so every trial and seed sees the same sets: the limits keep
the first n of a permutation, then `val_fraction` holds out a stratified validation set from the training
set. An image folder's own val/ beside test/ is the validation set instead.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..errors import UserError
from .config import DataConfig
from .datasets import DATASETS

DEFAULT_ROOT = "~/.cache/tune-hardbatch/data"
DEFAULT_CACHE_DIR = "~/.cache/tune-hardbatch/decoded"
_CHUNK = 256  # images per decode task
_warned_cache_dirs: set[str] = set()


@dataclass
class Dataset:
    train_x: torch.Tensor  # uint8 [M, C, H, W]
    train_y: torch.Tensor  # int64 [M]
    test_x: torch.Tensor  # uint8 [T, C, H, W]
    test_y: torch.Tensor  # int64 [T]
    classes: list[str]
    val_x: Optional[torch.Tensor] = None  # uint8 [V, C, H, W]; None becomes an empty [0, C, H, W]
    val_y: Optional[torch.Tensor] = None  # int64 [V]; empty when there is no validation set

    def __post_init__(self):
        if self.val_x is None:
            self.val_x = self.train_x.new_empty((0, *self.train_x.shape[1:]))
            self.val_y = self.train_y.new_empty((0,))

    @property
    def has_val(self) -> bool:
        return len(self.val_y) > 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])


def load_dataset(cfg: DataConfig, seed: int, device: torch.device | str = "cpu") -> Dataset:
    """Load `cfg.name`, apply the limits and the validation split (see the module docstring), move to
    `device`. `seed` (the trial seed) only draws `synthetic` data; the splits depend on `split_seed` alone."""
    loader = _LOADERS.get(cfg.name)
    if loader is None:
        raise UserError("data.name", f"got {cfg.name!r}; allowed: {', '.join(DATASETS)}")
    ds = loader(cfg, seed)
    if ds.train_x.shape[0] == 0:
        raise UserError("data.root", f"{cfg.name} has no training samples")
    keep = limit_indices(len(ds.train_y), cfg.train_limit, cfg.split_seed)
    ds.train_x, ds.train_y = ds.train_x[keep], ds.train_y[keep]
    keep = limit_indices(len(ds.test_y), cfg.test_limit, cfg.split_seed)
    ds.test_x, ds.test_y = ds.test_x[keep], ds.test_y[keep]
    if cfg.val_fraction > 0:
        train, val = split_indices(ds.train_y, cfg.val_fraction, cfg.split_seed)
        ds.val_x, ds.val_y = ds.train_x[val], ds.train_y[val]
        ds.train_x, ds.train_y = ds.train_x[train], ds.train_y[train]
    device = torch.device(device)
    return Dataset(ds.train_x.to(device), ds.train_y.to(device), ds.test_x.to(device), ds.test_y.to(device),
                   list(ds.classes), ds.val_x.to(device), ds.val_y.to(device))


def limit_indices(n: int, limit: Optional[int], split_seed: int) -> torch.Tensor:
    """The first `limit` of a `split_seed` permutation of range(n); all of range(n) in order without one."""
    if limit is None or limit >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))[:limit]


def split_indices(labels: torch.Tensor, fraction: float, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices into `labels`, disjoint, both in ascending order: per class (in class
    order) a `split_seed` permutation of its indices, the first round(fraction x n_c) held out (halves up).

    UserError (data.val_fraction) when a class would keep no training sample or nothing is held out.
    """
    labels = labels.cpu()
    gen = torch.Generator().manual_seed(split_seed)
    val = []
    for c in torch.unique(labels).tolist():
        members = (labels == c).nonzero().flatten()
        k = math.floor(fraction * len(members) + 0.5)
        if k >= len(members):
            raise UserError("data.val_fraction", f"got {fraction}; class {c} has {len(members)} training "
                            "sample(s) and would keep none; allowed: a smaller fraction")
        val.append(members[torch.randperm(len(members), generator=gen)[:k]])
    val = torch.cat(val).sort().values
    if len(val) == 0:
        raise UserError("data.val_fraction", f"got {fraction}; it holds out no sample of {len(labels)} "
                        "(round(fraction x class size) is 0 for every class); allowed: a larger fraction")
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[val] = True
    return (~is_val).nonzero().flatten(), val


# ---------------------------------------------------------------------------------------------------
# Bundled and generated data


def _load_digits(cfg: DataConfig, seed: int) -> Dataset:
    """scikit-learn's 1797 8x8 digits (0..16 scaled to 0..255); fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]  # [n, 1, 8, 8]
    y = digits.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return Dataset(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (xtr, ytr, xte, yte)),
                   classes=[str(i) for i in range(10)])


def _load_synthetic(cfg: DataConfig, seed: int) -> Dataset:
    """Uniform random uint8 images and labels, the same for the same seed."""
    g = torch.Generator().manual_seed(seed)
    k = cfg.synthetic_classes

    def draw(n: int):
        x = torch.randint(0, 256, (n, *cfg.synthetic_shape), generator=g, dtype=torch.uint8)
        return x, torch.randint(0, k, (n,), generator=g, dtype=torch.int64)

    return Dataset(*draw(cfg.synthetic_train), *draw(cfg.synthetic_test), classes=[str(i) for i in range(k)])


# ---------------------------------------------------------------------------------------------------
# torchvision datasets (files under data.root; download only when asked)

def _data_root(cfg: DataConfig) -> str:
    return os.path.abspath(os.path.expanduser(cfg.root if cfg.root is not None else DEFAULT_ROOT))


def _torchvision(cfg: DataConfig, build) -> tuple:
    """(train, test) from `build(root, train: bool)`; missing files become one UserError line."""
    root = _data_root(cfg)
    try:
        return build(root, True), build(root, False)
    except Exception as exc:  # torchvision: RuntimeError (missing/corrupt), URLError (offline download)
        text = str(exc).lower()
        if not (isinstance(exc, (RuntimeError, OSError)) or "not found" in text or "download=true" in text):
            raise
        where = f"put the torchvision files there (e.g. {root}/{DATASETS[cfg.name].files})"
        if cfg.download:
            raise UserError("data.root", f"{cfg.name} download into {root} failed ({exc}); {where}") from None
        raise UserError("data.root", f"{cfg.name} not found under {root}; {where} "
                                     "or set data.download=true when online") from None


def _tensor(a, dtype=None) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(np.asarray(a)))
    return t.to(dtype) if dtype is not None else t


def _load_cifar(cfg: DataConfig, seed: int) -> Dataset:
    """CIFAR-10/100: .data is [N, 32, 32, 3] uint8 numpy (HWC)."""
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10 if cfg.name == "cifar10" else tvd.CIFAR100
    tr, te = _torchvision(cfg, lambda root, train: cls(root, train=train, download=cfg.download))
    x = [_tensor(d.data).permute(0, 3, 1, 2).contiguous() for d in (tr, te)]
    y = [torch.tensor(d.targets, dtype=torch.int64) for d in (tr, te)]
    return Dataset(x[0], y[0], x[1], y[1], classes=list(tr.classes))


def _load_mnist(cfg: DataConfig, seed: int) -> Dataset:
    """MNIST / Fashion-MNIST: .data is a [N, 28, 28] uint8 tensor."""
    import torchvision.datasets as tvd

    cls = tvd.MNIST if cfg.name == "mnist" else tvd.FashionMNIST
    tr, te = _torchvision(cfg, lambda root, train: cls(root, train=train, download=cfg.download))
    return Dataset(tr.data[:, None].contiguous(), _tensor(tr.targets, torch.int64),
                   te.data[:, None].contiguous(), _tensor(te.targets, torch.int64), classes=list(tr.classes))


def _load_split_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """SVHN / STL-10: split='train'/'test', .data is [N, 3, H, W] uint8 numpy, .labels."""
    import torchvision.datasets as tvd

    cls = tvd.SVHN if cfg.name == "svhn" else tvd.STL10
    tr, te = _torchvision(cfg, lambda root, train: cls(root, split="train" if train else "test",
                                                       download=cfg.download))
    classes = [str(i) for i in range(10)] if cfg.name == "svhn" else list(tr.classes)
    return Dataset(_tensor(tr.data), _tensor(tr.labels, torch.int64),
                   _tensor(te.data), _tensor(te.labels, torch.int64), classes=classes)


# ---------------------------------------------------------------------------------------------------
# Image folders: root/train/<class>/*, root/test/<class>/* (or root/val/<class>/*), optionally root/val/


def _load_imagefolder(cfg: DataConfig, seed: int) -> Dataset:
    """Decode `root/train` and `root/test` (or `root/val`) class folders to uint8 [N, 3, H, W]; a `root/val`
    beside `root/test` is the validation set.

    Every image is converted to RGB (grayscale and RGBA become 3 channels). If a split's images do not
    all have the same size, each is resized (Pillow bilinear) to `image_size` x `image_size` when set,
    else to the split's most common size; a test or val split of another size than train is resized to
    the train size. Decoded splits are cached under `cache_dir` (see `_cached_split`).
    """
    train_dir, test_dir, val_dir = _split_dirs(_data_root(cfg))
    check_own_val(cfg, val_dir)
    train_samples, classes = _listing(train_dir)
    cache_dir = os.path.abspath(os.path.expanduser(cfg.cache_dir or DEFAULT_CACHE_DIR))
    xtr, ytr = _cached_split(train_dir, train_samples, classes, cfg.image_size, cache_dir)
    xte, yte = _other_split(test_dir, train_dir, classes, cfg.image_size, cache_dir, xtr.shape[2:])
    if val_dir is None:
        return Dataset(xtr, ytr, xte, yte, classes=classes)
    xva, yva = _other_split(val_dir, train_dir, classes, cfg.image_size, cache_dir, xtr.shape[2:])
    return Dataset(xtr, ytr, xte, yte, classes=classes, val_x=xva, val_y=yva)


def _other_split(split_dir, train_dir, classes, image_size, cache_dir, hw) -> tuple[torch.Tensor, torch.Tensor]:
    """A test or val split labelled with the training classes and resized to the training size `hw`."""
    class_to_idx = {c: i for i, c in enumerate(classes)}
    listing, split_classes = _listing(split_dir)
    unknown = sorted(set(split_classes) - set(classes))
    if unknown:
        raise UserError("data.root", f"class folder(s) {', '.join(unknown)} in {split_dir} "
                                     f"are not in {train_dir}")
    samples = [(p, class_to_idx[split_classes[t]]) for p, t in listing]
    x, y = _cached_split(split_dir, samples, classes, image_size, cache_dir)
    return (_resize_batch(x, tuple(hw)) if x.shape[2:] != hw else x), y


def check_own_val(cfg: DataConfig, val_dir: Optional[str]) -> None:
    """An image folder's own val/ is the validation set: then no fraction of train may be held out too."""
    if val_dir is not None and cfg.val_fraction > 0:
        raise UserError("data.val_fraction", f"got {cfg.val_fraction}; {os.path.dirname(val_dir)} has its own "
                        "val/ beside test/, which is the validation set; allowed: 0")


def _split_dirs(root: str) -> tuple[str, str, Optional[str]]:
    """(root/train, root/test, root/val or None); with val/ but no test/: (root/train, root/val, None).
    A UserError says what is missing."""
    if not os.path.isdir(root):
        raise UserError("data.root", f"{root} does not exist or is not a directory")
    train_dir = os.path.join(root, "train")
    if not os.path.isdir(train_dir):
        raise UserError("data.root", f"no train/ split in {root}; expected {root}/train/<class>/<image>")
    test_dir, val_dir = (os.path.join(root, name) for name in ("test", "val"))
    if os.path.isdir(test_dir):
        return train_dir, test_dir, (val_dir if os.path.isdir(val_dir) else None)
    if os.path.isdir(val_dir):
        return train_dir, val_dir, None
    raise UserError("data.root", f"neither test/ nor val/ in {root}; expected {root}/test/<class>/<image>")


def _listing(split_dir: str) -> tuple[list[tuple[str, int]], list[str]]:
    """torchvision ImageFolder's (path, class index) samples and sorted classes, without decoding."""
    from torchvision.datasets import ImageFolder

    try:
        folder = ImageFolder(split_dir)
    except FileNotFoundError as exc:
        if "class folder" in str(exc):
            raise UserError("data.root",
                            f"no images in {split_dir}; expected {split_dir}/<class>/<image>") from None
        raise UserError("data.root", f"{split_dir}: {exc}") from None  # names the empty class folder(s)
    return folder.samples, list(folder.classes)


def _cache_key(split_dir: str, samples: list[tuple[str, int]], image_size: Optional[int]) -> str:
    """sha256 over the split path, each file's (relative path, size, mtime_ns, label) and image_size."""
    h = hashlib.sha256(f"v1\0{split_dir}\0{image_size}\n".encode())
    for path, target in samples:
        st = os.stat(path)
        h.update(f"{os.path.relpath(path, split_dir)}\0{st.st_size}\0{st.st_mtime_ns}\0{target}\n".encode())
    return h.hexdigest()


def _cached_split(split_dir, samples, classes, image_size, cache_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of one split from `<cache_dir>/<key>/` when present, else decoded and stored there."""
    entry = os.path.join(cache_dir, _cache_key(split_dir, samples, image_size))
    hit = _cache_load(entry, len(samples))
    if hit is not None:
        return hit
    x = _decode_images([p for p, _ in samples], image_size)
    y = np.array([t for _, t in samples], dtype=np.int64)
    _cache_store(entry, x, y, classes)
    return torch.from_numpy(x), torch.from_numpy(y)


def _cache_load(entry: str, n: int):
    try:
        x = np.load(os.path.join(entry, "x.npy"))
        y = np.load(os.path.join(entry, "y.npy"))
    except (OSError, ValueError):
        return None
    if x.dtype != np.uint8 or x.ndim != 4 or len(x) != n or y.shape != (n,):
        return None
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y, np.int64))


def _cache_store(entry: str, x: np.ndarray, y: np.ndarray, classes: list[str]) -> None:
    """Write to a temp dir, then `os.replace` it into place; an unwritable cache only warns (once)."""
    parent, tmp = os.path.dirname(entry), None
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
        np.save(os.path.join(tmp, "x.npy"), x)
        np.save(os.path.join(tmp, "y.npy"), y)
        with open(os.path.join(tmp, "meta.json"), "w") as fh:
            json.dump({"classes": classes, "shape": list(x.shape)}, fh)
        os.replace(tmp, entry)
        tmp = None
    except OSError as exc:
        if not os.path.isdir(entry) and parent not in _warned_cache_dirs:  # a racing run may have won
            _warned_cache_dirs.add(parent)
            warnings.warn(f"data.cache_dir: cannot write decoded-image cache in {parent} ({exc}); "
                          "images will be decoded again next run", stacklevel=2)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _decode_one(path: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # UnidentifiedImageError, truncated data, decompression bombs, ...
        raise UserError("data.root", f"cannot read image {path}: {exc}") from None


def _decode_chunk(paths: list[str]) -> list[np.ndarray]:
    return [_decode_one(p) for p in paths]


def _resize_one(args) -> np.ndarray:
    from PIL import Image

    a, (h, w) = args
    return a if a.shape[:2] == (h, w) else np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR))


def _decode_images(paths: list[str], image_size: Optional[int]) -> np.ndarray:
    """Decode with Pillow in a thread pool -> uint8 [N, 3, H, W]; mixed sizes are resized (see above)."""
    chunks = [paths[i: i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        images = [a for chunk in pool.map(_decode_chunk, chunks) for a in chunk]
        sizes = collections.Counter(a.shape[:2] for a in images)
        if len(sizes) > 1:
            hw = (image_size, image_size) if image_size else sizes.most_common(1)[0][0]
            images = list(pool.map(_resize_one, ((a, hw) for a in images), chunksize=_CHUNK))
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))


def _resize_batch(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased) resize of a uint8 batch, in float, back to uint8."""
    out = torch.nn.functional.interpolate(x.float(), size=hw, mode="bilinear", align_corners=False,
                                          antialias=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


_LOADERS = {  # one per name of `datasets.DATASETS`
    "digits": _load_digits,
    "cifar10": _load_cifar,
    "cifar100": _load_cifar,
    "mnist": _load_mnist,
    "fashion_mnist": _load_mnist,
    "svhn": _load_split_dataset,
    "stl10": _load_split_dataset,
    "imagefolder": _load_imagefolder,
    "synthetic": _load_synthetic,
}
