"""The worker side (`ray_backend.worker`): its warnings collector, GPU memory share and imports. Its
checkpoints: `test_checkpoints.py`."""

from __future__ import annotations

import json
import subprocess
import sys
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


def test_a_worker_imports_none_of_the_drivers_side():
    """Each new Ray worker imports `ray_backend.worker` (Ray unpickles the trainable by reference): the
    package must not pull in the driver, the verdict or scipy (~0.7 s a worker), nor torch before a trial
    runs; `run_search` still comes from the package on first use."""
    script = ("import json, sys\n"
              "import tune_hardbatch.ray_backend.worker\n"
              "before = sorted(m for m in ('tune_hardbatch.ray_backend.driver', 'tune_hardbatch.verdict', 'scipy', "
              "'torch', 'matplotlib', 'mlflow', 'optuna') if m in sys.modules)\n"
              "from tune_hardbatch.ray_backend import run_search, SearchFailed\n"
              "print(json.dumps({'before': before, 'after': run_search.__module__}))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"before": [], "after": "tune_hardbatch.ray_backend.driver"}
