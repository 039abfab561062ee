"""The worker side's checkpoint policy (`ray_backend.worker.CheckpointPolicy`) and warnings collector."""

from __future__ import annotations

import warnings

from tune_hardbatch.ray_backend import worker
from tune_hardbatch.ray_backend.worker import CheckpointPolicy, TrialWarnings


def test_every_k_epoch_equivalents_plus_first_and_last():
    policy = CheckpointPolicy(every=3)
    saved = []
    for ee in range(1, 9):
        if policy.due({"epoch_equiv": float(ee)}, finished=ee == 8):
            policy.saved({"epoch_equiv": float(ee)}, started=0.0)
            saved.append(ee)
    assert saved == [1, 4, 7, 8]


def test_auto_keeps_checkpoints_at_two_percent_of_the_time(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(worker.time, "perf_counter", lambda: clock[0])
    policy = CheckpointPolicy(every=None)
    saved, spent = [], 0.0
    for epoch in range(1, 201):  # epochs of 1 s; each checkpoint costs 0.2 s
        clock[0] += 1.0
        report = {"epoch_equiv": float(epoch)}
        if policy.due(report, finished=epoch == 200):
            start = clock[0]
            clock[0] += 0.2
            spent += 0.2
            policy.saved(report, start)
            saved.append(epoch)
    assert saved[0] == 1 and saved[-1] == 200
    assert spent / clock[0] <= CheckpointPolicy.AUTO_SHARE + 0.002  # at most 2% (+ the forced last one)
    assert 10 <= len(saved) <= 25  # about every 10 s of training: a retry loses at most that


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
