"""A run's per-example top-1 correctness on the test set, kept as a file in its folder (`CORRECT_FILE`).

A confirmation run keeps its final model's (`Trainer.test_correct`), so that the verdict can split an arm's
seed-to-seed variance of test accuracy into test-set sampling noise and the variance of the model's true
accuracy (`verdict.variance`). The file holds the bits packed (`np.packbits`: n / 8 bytes) and n; it is
written whole (a temporary file, then a rename), and a file that is missing or cannot be read loads as None.
Pure numpy: no torch, no Ray.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

CORRECT_FILE = "test_correct.npz"


def save_correct(trial_dir: Path, correct: np.ndarray) -> Path:
    """`correct` (one bool per test example) as `CORRECT_FILE` in `trial_dir`, written whole."""
    bits = np.asarray(correct, dtype=bool).ravel()
    trial_dir = Path(trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    path = trial_dir / CORRECT_FILE
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:  # a file object: np.savez_compressed would add ".npz" to a name
        np.savez_compressed(f, bits=np.packbits(bits), n=np.int64(len(bits)))
    os.replace(tmp, path)
    return path


def load_correct(trial_dir: Path) -> Optional[np.ndarray]:
    """The bools `save_correct` wrote into `trial_dir`; None when the file is missing or damaged."""
    path = Path(trial_dir) / CORRECT_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            n, packed = int(data["n"]), data["bits"]
        if n < 0 or packed.dtype != np.uint8 or packed.ndim != 1 or len(packed) != (n + 7) // 8:
            return None
        return np.unpackbits(packed, count=n).astype(bool)
    except Exception:  # noqa: BLE001 - missing, truncated, not a zip, keys absent: no file to use
        return None
