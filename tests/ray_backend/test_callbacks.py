"""The driver's callbacks that keep its memory flat (the tracking callback's tests are with `tracking`)."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tune_hardbatch.ray_backend import callbacks


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_memory_goes_back_to_the_system():
    blocks = [bytes(2048) + bytes([i % 256]) for i in range(150_000)]  # ~300 MiB from malloc, not pymalloc
    keep = blocks[-1]  # the heap's top stays in use: freeing the rest cannot shrink it by itself
    del blocks
    held = rss_mib()
    assert callbacks.release_free_memory()
    assert held - rss_mib() > 200, "the freed blocks' pages stayed resident"
    assert keep


def test_every_trim_every_ended_trials_the_allocator_is_trimmed(monkeypatch):
    trims = []
    monkeypatch.setattr(callbacks, "release_free_memory", lambda: trims.append(1))
    monkeypatch.setattr(callbacks.ray_private, "forget_analysis", lambda trial, keep: None)
    forget = callbacks.ForgetAnalysis(["test_top1"])
    for i in range(2 * callbacks.TRIM_EVERY + 1):
        (forget.on_trial_complete if i % 2 else forget.on_trial_error)(0, [], SimpleNamespace(trial_id=str(i)))
    assert len(trims) == 2
