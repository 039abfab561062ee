"""The worker side (`ray_backend.worker`): its warnings collector and GPU memory share. Its checkpoints:
`test_checkpoints.py`."""

from __future__ import annotations

import warnings

from tune_hardbatch.ray_backend import worker
from tune_hardbatch.ray_backend.worker import TrialWarnings


def test_trial_warnings_are_sent_once_each():
    notes = TrialWarnings()
    with notes:
        warnings.warn("a fallback", RuntimeWarning)
        warnings.warn("a fallback", RuntimeWarning)
    notes.add("trial t: unreadable checkpoint")
    notes.add("trial t: unreadable checkpoint")
    assert notes.take() == {"warnings": "RuntimeWarning: a fallback | trial t: unreadable checkpoint"}
    assert notes.take() == {}


def test_gpu_memory_cap_leaves_room_for_each_cuda_context():
    gib = 1 << 30
    assert worker.memory_fraction(0.25, 16 * gib) == 0.25 - 1 / 16  # four trials: 4 x (3 GiB + 1 GiB context)
    assert 0.25 - worker.memory_fraction(0.25, 141 * gib) < 0.01  # an H200: the context is under 1%
    assert worker.memory_fraction(0.05, 8 * gib) == 0.05  # never below 5% of the card
