"""The confirmation phase on Ray Tune: arms x seeds after the search, with the search's resources,
storage (`<experiment>/confirm`), retries, live view and MLflow (child runs tagged phase=confirmation
under the same parent). Which arms, their configs and the verdict are Ray-free (`confirmation.py`).
"""

from __future__ import annotations

from pathlib import Path

from ..confirmation import (
    ArmLabel,
    ArmRun,
    choose_arms,
    confirm_rows,
    confirm_seeds,
    load_arms,
    save_arms,
    verdict_from_confirmation,
    verdict_from_grid,
)
from ..results import write_results
from ..space import SearchSpace
from ..space.schema import CONFIRM_DIR, CONFIRM_RESULTS_FILE
from . import ray_private
from .callbacks import CheckpointPruner, LiveCallback, TrackingCallback
from .tuner import confirm_tuner

CONFIRM_COLUMNS = ("trial_id", "status", "arm", "family", "seed", "final_test_top1", "convergence_epoch",
                   "epoch_equiv", "samples_forward", "samples_with_grad", "time_s", "error")


def verdict_phase(spec: SearchSpace, exp_dir: Path, rows: list[dict], concurrency: int, tracking: tuple,
                  live_interval_s: float, stream) -> tuple[list[dict], dict]:
    """(confirmation rows, verdict): a seed grid is its own confirmation; else arms x seeds are trained."""
    if spec.self_confirming:
        return [], verdict_from_grid(spec, rows)
    saved = load_arms(exp_dir)
    if saved is None:
        arms, notes = choose_arms(spec, rows)
        seeds = confirm_seeds(spec)
        save_arms(exp_dir, arms, seeds, notes)
    else:
        arms, seeds, notes = saved["arms"], saved["seeds"], saved["notes"]
    if not arms:
        return [], verdict_from_confirmation(spec, [], seeds, notes)
    print(f"\nconfirmation: {len(arms)} arms x {len(seeds)} seeds {seeds} on the full training set, test "
          f"set reported: " + ", ".join(f"{a['arm']} (trial {a['trial_id']})" for a in arms), file=stream, flush=True)
    crows = _train_arms(spec, exp_dir, arms, seeds, concurrency, tracking, live_interval_s, stream)
    return crows, verdict_from_confirmation(spec, crows, seeds, notes)


def _train_arms(spec, exp_dir, arms, seeds, concurrency, tracking, live_interval_s, stream) -> list[dict]:
    confirm_dir = exp_dir / CONFIRM_DIR
    live = LiveCallback(["seed"], "test_top1", "max", len(arms) * len(seeds), interval_s=live_interval_s,
                        stream=stream, label=ArmLabel(arms))
    callbacks = [live, *ray_private.history_loggers(), CheckpointPruner(confirm_dir)]
    tracker, background = tracking
    tracking_callback = None
    if tracker is not None:
        tracking_callback = TrackingCallback(tracker, spec, confirm_dir, background, phase="confirmation",
                                             describe=ArmRun(arms))
        callbacks.append(tracking_callback)
    results = confirm_tuner(spec, exp_dir, arms, seeds, concurrency, callbacks).fit()
    crows = confirm_rows(results, live.final_status, arms)
    if tracking_callback is not None:
        tracking_callback.end_the_rest(crows)
    write_results([{k: r.get(k) for k in CONFIRM_COLUMNS} for r in crows], spec, exp_dir / CONFIRM_RESULTS_FILE)
    return crows
