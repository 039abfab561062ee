"""A search's results: per-trial status, rows of results.csv, the best trial (printing: `console.py`).

Ray-free: works on a Ray `ResultGrid` passed in (duck-typed).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Optional

from .errors import UserError
from .labels import strategy_name
from .space import SearchSpace, active_params, decode, trial_config

# ---------------------------------------------------------------------------------------------------
# Results


def trial_status(status: Optional[str], last: dict, error: bool) -> str:
    """finished | stopped_early | diverged | failed (or unfinished for an interrupted search)."""
    if error or status == "ERROR" or ended_fatally(last):  # out of GPU memory, or a UserError: not retried
        return "failed"
    if last.get("diverged") == 1:
        return "diverged"
    if last.get("budget_done") == 1:
        return "finished"
    if status in (None, "TERMINATED"):
        return "stopped_early"
    return "unfinished"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def collect_rows(spec: SearchSpace, results, statuses: dict) -> list[dict]:
    """One dict per trial from a Ray `ResultGrid` (and the final Trial statuses seen by the live view)."""
    metric = spec.search.metric
    rows = []
    for i in range(len(results)):
        r = results[i]
        trial_id = Path(r.path).name if r.path else str(i)
        last = dict(r.metrics or {})
        history = []
        try:
            df = r.metrics_dataframe
            if df is not None:
                history = df.to_dict("records")
        except Exception:
            history = []
        if not last and history:
            last = history[-1]
        config = dict(r.config or {})
        params = {k: config[k] for k in spec.dim_keys if k in config}
        try:
            cfg = trial_config(spec.base_flat, params, spec.dims)
            strategy, active = strategy_name(cfg), active_params(params, spec.dims, spec.base_cfg)
        except UserError:
            strategy, active = "invalid", params
        status = trial_status(statuses.get(trial_id), last, r.error is not None)

        def best_of(key, mode="max"):
            vals = [h.get(key) for h in history if _finite(h.get(key))]
            return (max if mode == "max" else min)(vals) if vals else None

        row = {"trial_id": trial_id, "status": status, "strategy": strategy}
        for key in spec.dim_keys:
            row[key] = decode(active[key]) if key in active else None
        row.update({
            "final_test_top1": last.get("test_top1"),
            "best_test_top1": best_of("test_top1"),
            "convergence_epoch": last.get("convergence_epoch"),
            "epoch_equiv": last.get("epoch_equiv"),
            "backprops": last.get("backprops"),
            "samples_forward": last.get("samples_forward"),
            "time_s": last.get("time_total_s"),
        })
        if metric != "test_top1":
            row[f"final_{metric}"] = last.get(metric)
            row[f"best_{metric}"] = best_of(metric, spec.search.mode)
        row["error"] = _error_line(r.error) if r.error is not None else None
        if r.error is None and last.get("user_error") == 1:
            row["error"] = str(last.get("fatal_error", "a user error"))[:300]
        if r.error is None and last.get("oom") == 1:
            row["error"] = oom_reason(last, params.get("optim.batch_size", spec.base_cfg.optim.batch_size),
                                      spec.resources.gpu)
        row["_params"], row["_active"], row["_last"] = params, active, last
        row["_errored"] = r.error is not None  # Ray's ERROR: --resume retries it from its checkpoint
        rows.append(row)
    return rows


def ended_fatally(last: dict) -> bool:
    """The trial returned after an error that a retry repeats (out of GPU memory, a user error)."""
    return last.get("oom") == 1 or last.get("user_error") == 1


def oom_reason(last: dict, batch_size: Optional[int] = None, gpu: Optional[float] = None) -> str:
    """The `error` of a trial that ran out of GPU memory (its last report has `oom: 1`)."""
    ee = last.get("epoch_equiv")
    where = f" at epoch-equivalent {ee:.3g}" if _finite(ee) else ""
    settings = ", ".join(x for x in (f"optim.batch_size {batch_size}" if batch_size else "",
                                     f"resources.gpu {gpu:g}" if gpu is not None else "") if x)
    return (f"CUDA out of memory{where}{f' ({settings})' if settings else ''}: lower optim.batch_size or raise "
            "resources.gpu (not retried: the same settings run out again)")


def _error_line(error) -> str:
    text = str(error).strip().splitlines()
    return (text[-1] if text else type(error).__name__)[:200]


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan"
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v))
    return v


def write_results(rows: list[dict], spec: SearchSpace, path: Path) -> None:
    columns = [k for k in (rows[0] if rows else {"trial_id": 0, "status": 0}) if not k.startswith("_")]
    if not rows:
        columns = ["trial_id", "status", "strategy", *spec.dim_keys]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_value(row.get(c)) for c in columns])


def best_row(rows: list[dict], spec: SearchSpace) -> Optional[dict]:
    """The best finished trial by its final metric (any non-failed trial when none finished)."""
    metric, mode = spec.search.metric, spec.search.mode
    key = f"final_{metric}"
    for pool in ([r for r in rows if r["status"] == "finished"],
                 [r for r in rows if r["status"] in ("stopped_early", "diverged", "unfinished")]):
        scored = [r for r in pool if _finite(r.get(key))]
        if scored:
            return (max if mode == "max" else min)(scored, key=lambda r: r[key])
    return None
