"""Faults on purpose, for tests only: the `TUNE_HARDBATCH_TEST_CRASH` hook of the trainable. No Ray."""

from __future__ import annotations

import os
import random
from typing import Optional

CRASH_ENV = "TUNE_HARDBATCH_TEST_CRASH"  # test hook, see `CrashHook`


class CrashHook:
    """Test hook (`TUNE_HARDBATCH_TEST_CRASH`): comma-separated fields that make trials fail on purpose.

    - `epoch=N`: fail when a trial reaches epoch N (before reporting it);
    - `prob=P,seed=S` (instead of, or as well as, `epoch`): only a fraction P of the trials fail, each at
      an epoch drawn from 1..its last epoch (or at `epoch`); both drawn from (S, trial id), so
      deterministic per trial;
    - `marker=/abs/dir`: fail once per trial (an O_EXCL file `<trial id>.crashed` there), so the retry
      from the last checkpoint succeeds; without it the trial fails every time it gets there;
    - `kind=crash` (default: RuntimeError) or `kind=oom` (`torch.OutOfMemoryError`, the real type of a
      CUDA out-of-memory error, simulated without a GPU);
    - `min_batch=B`: only trials whose optim.batch_size is at least B (a batch that "does not fit").
    """

    def __init__(self, text: str):
        fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        self.epoch = int(fields["epoch"]) if "epoch" in fields else None
        self.prob = float(fields.get("prob", 1.0))
        self.seed = fields.get("seed", "0")
        self.marker_dir = fields.get("marker")
        self.kind = fields.get("kind", "crash")
        self.min_batch = int(fields.get("min_batch", 0))
        if self.kind not in ("crash", "oom") or (self.epoch is None and "prob" not in fields):
            raise ValueError(f"{CRASH_ENV}={text!r}: needs epoch=N or prob=P, and kind crash or oom")

    def crash_epoch(self, trial_id: str, last_epoch: int) -> Optional[int]:
        """The epoch at which this trial fails (None: it does not)."""
        rng = random.Random(f"{self.seed}/{trial_id}")  # str seeds are hashed with sha512: stable
        if rng.random() >= self.prob:
            return None
        return self.epoch if self.epoch is not None else rng.randint(1, max(1, last_epoch))

    def check(self, epoch: int, trial_id: str, last_epoch: int = 0, batch_size: int = 0) -> None:
        if batch_size < self.min_batch or epoch != self.crash_epoch(trial_id, last_epoch):
            return
        if self.marker_dir is not None:
            os.makedirs(self.marker_dir, exist_ok=True)
            try:
                fd = os.open(os.path.join(self.marker_dir, f"{trial_id}.crashed"),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.close(fd)
        if self.kind == "oom":
            import torch

            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (injected at "
                                              f"epoch {epoch} by {CRASH_ENV})")
        raise RuntimeError(f"injected crash at epoch {epoch} ({CRASH_ENV})")
