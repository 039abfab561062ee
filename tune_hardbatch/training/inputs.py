"""What a training config needs of its data and model, checked before anything trains.

`check_inputs(configs)` answers, for each distinct data and model of the configs (a `train` run, or every
corner of a search space before Ray starts), with one `UserError` naming the key:
- the data is where the config says (an image folder's train/ and test/, torchvision's files);
- every stage has at least one full batch (`optim.batch_size` x the stage's multiplier <= its samples,
  counted after `data.train_limit` and the `data.val_fraction` split);
- the model takes the input: it is built once on the CPU and runs one forward pass (eval mode, no
  gradient) at the configured size, so a timm model with a fixed input size, or an image too small for
  a network's downsampling, is one line instead of a traceback in every trial.
Shapes and sizes come from each dataset's known layout or the folder's listing: nothing is decoded.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, Optional

from ..errors import UserError
from .config import Config, DataConfig
from .datasets import DATASETS
from .strategies.plan import make_plan, stage_sizes


@dataclass(frozen=True)
class Shape:
    num_train: int  # after data.train_limit and the data.val_fraction split
    channels: int
    height: int
    width: int
    classes: int


def data_shape(d: DataConfig, local: bool = True) -> Optional[Shape]:
    """The shape of a dataset without decoding it; None when its files are not visible here (`local`
    False: a cluster's workers may see other paths)."""
    if d.name == "synthetic":
        c, h, w = d.synthetic_shape
        return _limited(Shape(d.synthetic_train, c, h, w, d.synthetic_classes), d)
    info = DATASETS[d.name]
    if info.layout is not None:
        if info.files is not None and not d.download and not _tv_present(d):
            if local:
                raise UserError("data.root", f"{d.name} not found under {_root(d)}; put the torchvision files "
                                f"there (e.g. {_root(d)}/{info.files}) or set data.download=true when online")
            return None
        return _limited(Shape(*info.layout), d, _digits_labels if d.name == "digits" else None)
    return _imagefolder_shape(d, local)


def _root(d: DataConfig) -> str:
    from .data import DEFAULT_ROOT

    return os.path.abspath(os.path.expanduser(d.root if d.root is not None else DEFAULT_ROOT))


def _tv_present(d: DataConfig) -> bool:
    return os.path.exists(os.path.join(_root(d), DATASETS[d.name].files))


def _limited(shape: Shape, d: DataConfig, labels=None) -> Shape:
    """`shape` with num_train after data.train_limit and data.val_fraction. With `labels` (a function
    giving the training labels: digits, image folders) the count is exact (data.load_dataset's own split,
    and its UserErrors); otherwise it assumes balanced classes: n - classes x round(val_fraction x n / classes)."""
    n = min(shape.num_train, d.train_limit) if d.train_limit else shape.num_train
    if d.val_fraction > 0 and labels is not None:
        from .data import limit_indices, split_indices

        y = labels()
        n = len(split_indices(y[limit_indices(len(y), d.train_limit, d.split_seed)], d.val_fraction,
                              d.split_seed)[0])
    elif d.val_fraction > 0:
        n -= shape.classes * math.floor(d.val_fraction * n / shape.classes + 0.5)
    return Shape(n, shape.channels, shape.height, shape.width, shape.classes)


def _digits_labels():
    from .data import _load_digits

    return _load_digits(DataConfig(), 0).train_y


def _imagefolder_shape(d: DataConfig, local: bool) -> Optional[Shape]:
    from .data import _listing, _split_dirs, check_own_val

    if not local and (d.root is None or not os.path.isdir(d.root)):
        return None
    train_dir, test_dir, val_dir = _split_dirs(_root(d))
    check_own_val(d, val_dir)
    samples, classes = _listing(train_dir)
    for other in (test_dir, val_dir):  # a test/ or val/ split without images is the same mistake
        if other is not None:
            _listing(other)
    if d.image_size:
        h = w = d.image_size
    else:
        from PIL import Image

        try:
            with Image.open(samples[0][0]) as img:  # reads the header only
                w, h = img.size
        except Exception as exc:  # the same words as the decoder's (data._decode_one)
            raise UserError("data.root", f"cannot read image {samples[0][0]}: {exc}") from None
    def labels():
        import torch

        return torch.tensor([t for _, t in samples], dtype=torch.int64)

    return _limited(Shape(len(samples), 3, h, w, len(classes)), d, labels)


def check_batches(cfg: Config, shape: Shape) -> None:
    """Every step-wise stage (or the whole training set) holds at least one full batch."""
    plan = make_plan(cfg, shape.num_train)
    for st, size in zip(plan, stage_sizes(shape.num_train, plan)):
        batch = cfg.optim.batch_size * st.batch_multiplier
        if size < batch:
            where = f"step-wise stage {st.index + 1} ({size} of {shape.num_train} samples)" if len(plan) > 1 \
                else f"the training set ({size} samples{_reduced_by(cfg.data)})"
            raise UserError("optim.batch_size", f"a batch of {batch} is larger than {where}; allowed: a batch "
                            "size that gives at least one full batch in every stage")


def _reduced_by(d: DataConfig) -> str:
    keys = [k for k, on in (("data.train_limit", d.train_limit), ("data.val_fraction", d.val_fraction)) if on]
    return f" after {' and '.join(keys)}" if keys else ""


def check_model(cfg: Config, shape: Shape) -> None:
    """Build the model on the CPU and run one forward pass at the configured input size."""
    import torch

    from .models import create_model

    side = cfg.data.image_size or shape.width
    h, w = (cfg.data.image_size,) * 2 if cfg.data.image_size else (shape.height, shape.width)
    model = create_model(cfg.model, shape.classes, shape.channels, side).eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, shape.channels, h, w))
    except Exception as exc:  # timm's assertions, too-small feature maps, shape mismatches
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError("model.name", f"{cfg.model.name} cannot take {shape.channels}x{h}x{w} input ({text}); "
                        "allowed: a model that fits this input size, or another data.image_size") from None
    if tuple(out.shape) != (1, shape.classes):
        raise UserError("model.name", f"{cfg.model.name} gives outputs of shape {tuple(out.shape)} for one "
                        f"{shape.channels}x{h}x{w} image, not (1, {shape.classes}); allowed: a classifier")


class InputChecker:
    """`check(cfg)` for many configs: each dataset is looked at once and each distinct model built once."""

    def __init__(self, local: bool = True):
        self.local = local
        self.shapes: dict = {}
        self.built: set = set()

    def check(self, cfg: Config) -> None:
        if cfg.data not in self.shapes:
            self.shapes[cfg.data] = data_shape(cfg.data, self.local)
        shape = self.shapes[cfg.data]
        if shape is None:
            return
        check_batches(cfg, shape)
        key = (cfg.model, cfg.data.image_size, shape)
        if key not in self.built:
            check_model(cfg, shape)
            self.built.add(key)


def check_inputs(configs: Iterable[Config], local: bool = True) -> int:
    """Data, batches and model of each config; returns how many distinct models were built."""
    checker = InputChecker(local)
    for cfg in configs:
        checker.check(cfg)
    return len(checker.built)
