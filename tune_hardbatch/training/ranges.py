"""The range of every numeric setting, and why: one `Range` per key, checked by `check` and rendered by
`describe` (README's table and the schema docstrings print the same text, so what is checked is what is
documented). The training config's own keys are here (`CONFIG_RANGES`); each strategy declares its own
(`Declaration.ranges`), the search sections theirs (`search.space.sections`). Cross-field rules (p_end <=
p_start, start < end) stay with their owners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Optional

from ..errors import UserError
from ..metrics import is_finite


@dataclass(frozen=True)
class Range:
    low: Optional[float] = None  # None: unbounded below
    high: Optional[float] = None  # None: unbounded above
    low_open: bool = False  # low itself excluded
    high_open: bool = False  # high itself excluded
    integer: bool = False
    null: Optional[str] = None  # what null means, where null is allowed
    text: Optional[str] = None  # what a text value means, where one is allowed (its owner's rules check it)
    why: str = ""  # what the number means: the reason for its bounds

    def contains(self, value: Any) -> bool:
        if value is None:
            return self.null is not None
        if isinstance(value, bool) or not is_finite(value):
            return False
        if self.integer and not isinstance(value, int):  # the config coerces 3.0 first; sections take ints
            return False
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return low_ok and high_ok


def describe(rng: Range, name: str = "x") -> str:
    """'an integer >= 1', '0 < keep <= 1', 'a number > 0, or null (off)' (`name`: the field, in a bound)."""
    kind = "an integer" if rng.integer else "a number"
    below = None if rng.low is None else f"{_num(rng.low)} {'<' if rng.low_open else '<='} "
    above = None if rng.high is None else f" {'<' if rng.high_open else '<='} {_num(rng.high)}"
    if below and above:
        text = (f"{kind} " if rng.integer else "") + f"{below}{name}{above}"
    elif below:
        text = f"{kind} {'>' if rng.low_open else '>='} {_num(rng.low)}"
    elif above:
        text = f"{kind}{above}"
    else:
        text = kind
    text += f", or {rng.text}" if rng.text is not None else ""
    return text + (f", or null ({rng.null})" if rng.null is not None else "")


def _num(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:g}"


def check(key: str, value: Any, rng: Range) -> None:
    """A value outside its range: one `UserError` naming the key, the value and the range (a list's every
    entry)."""
    if isinstance(value, str) and rng.text is not None:
        return
    if isinstance(value, (list, tuple)):
        bad = next((v for v in value if v is None or not rng.contains(v)), None) if value else "empty"
        if bad is None:
            return
        entry = replace(rng, null=None)
        raise UserError(key, f"got {list(value)!r}; allowed: a list, each entry "
                        f"{describe(entry, 'entry')}" + (f" ({rng.why})" if rng.why else ""))
    if not rng.contains(value):
        shown = "null" if value is None else repr(value)
        name = key.rpartition(".")[2]
        raise UserError(key, f"got {shown}; allowed: {describe(rng, name)}" + (f" ({name}: {rng.why})" if rng.why else ""))


def check_all(owner, ranges: dict, prefix: str = "") -> None:
    """Every key of `ranges` checked in `owner`: a dict, or a config read by dotted attributes ('data.pad')."""
    for key, rng in ranges.items():
        if isinstance(owner, dict):
            value = owner[key]
        else:
            value = owner
            for part in key.split("."):
                value = getattr(value, part)
        check(f"{prefix}{key}", value, rng)


CONFIG_RANGES = {
    "seed": Range(0, integer=True, why="fixes partition, subsets, initialisation and augmentation"),
    "epochs": Range(1, integer=True, why="epoch-equivalents of back-propagations"),
    "target_top1": Range(0, 100, low_open=True, null="no target", why="a test top-1 in percent"),
    "eval_batch_size": Range(1, integer=True, why="images per evaluation batch"),
    "compute_budget": Range(0, low_open=True, null="the whole budget", why="compute-equivalents of plain SGD"),
    "data.image_size": Range(4, 1024, integer=True, null="the native size", why="pixels per side"),
    "data.train_limit": Range(1, integer=True, null="all", why="training images"),
    "data.test_limit": Range(1, integer=True, null="all", why="test images"),
    "data.val_fraction": Range(0, 1, high_open=True, why="share of the training set held out; 0: none"),
    "data.split_seed": Range(0, integer=True, why="fixes limits and the validation split"),
    "data.pad": Range(0, 64, integer=True, null="image side / 8", why="crop padding in pixels"),
    "data.synthetic_shape": Range(1, integer=True, why="channels, height and width of synthetic images"),
    "data.synthetic_train": Range(1, integer=True, why="synthetic training images"),
    "data.synthetic_test": Range(1, integer=True, why="synthetic test images"),
    "data.synthetic_classes": Range(2, integer=True, why="a classifier needs two classes"),
    "optim.lr": Range(0, low_open=True, why="the peak learning rate"),
    "optim.momentum": Range(0, 1, high_open=True, why="1 would never forget a gradient"),
    "optim.weight_decay": Range(0, why="L2 penalty; 0: none"),
    "optim.batch_size": Range(1, integer=True, why="images per step"),
    "optim.warmup": Range(0, 1, low_open=True, high_open=True, why="share of a stage's steps rising to the peak"),
    "optim.label_smoothing": Range(0, 1, high_open=True, why="share of the target spread over the classes"),
    "convergence.tol": Range(0, why="share of the first train loss that counts as improvement"),
    "convergence.patience": Range(1, integer=True, why="reports without improvement that mark convergence"),
}
