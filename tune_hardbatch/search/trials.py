"""A trial as every part of a search reads it: one record (`Trial`), its status, and why it failed.

A record is built from a Ray Tune `Result` (`Trial.from_result`, duck-typed: no Ray here) or from the
trial's directory on disk (`Trial.from_dir`: every whole line of its result.json, a running trial's last
one being written left out; damaged files read as far as they are whole); what a phase knows beyond Ray's
config (the strategy label, family and active parameters of a search trial, the arm of a confirmation
trial) is added by `results.search_trials` and `judgement.confirmed_trials`. Results, confirmation, history, verdict, report, console, importances and
MLflow tracking take these records; the live view classifies Ray's running trials with the same `classify`.

Statuses (`classify`, from Ray's status and the last report): finished (trained its whole budget),
stopped_early (by the scheduler), diverged, failed (an error, out of GPU memory, a user error); at the end
of an interrupted phase, unfinished; in the live view, running, waiting (at a rung) and pending; read from disk while the search
runs, running.

The one rule that chooses among trials (`choose`: an arm's best for the confirmation, the report's curves,
best_config.yaml) compares them at one budget every compared trial reached: the trials that trained their
whole budget by their final values when there are any, else every trial at the highest budget all of them
reached (`common_values`, also the tuning curves' values). When the trials started: `start_order`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..errors import UserError
from ..files import problem_of, read_json
from ..metrics import is_finite
from .space import decode


@dataclass(frozen=True)
class Trial:
    trial_id: str
    status: str
    phase: str = "search"  # search | confirmation
    strategy: str = "?"  # a confirmation trial: its arm's label
    params: dict = field(default_factory=dict)  # the trial's Ray config (sampled, encoded values)
    active: dict = field(default_factory=dict)  # the params that apply (encoded); a confirmation trial: its arm's
    last: dict = field(default_factory=dict)  # the last report
    history: list = field(default_factory=list)  # every report, in order
    error: Optional[str] = None  # one line: why it failed
    errored: bool = False  # Ray's ERROR (an exception, a killed worker): --resume retries it from its checkpoint
    arm: Optional[str] = None  # a declared arm's search trial, a confirmation trial: its arm
    # what the trial is compared as in a joint search (`labels.strategy_family`), never parsed from its label
    family: Optional[str] = None
    # confirmation trials: the seed
    seed: Optional[int] = None

    def final(self, metric: str):
        """`metric` of the last report (None when it reported none)."""
        return self.last.get(metric)

    def best(self, metric: str, mode: str = "max"):
        """The best finite `metric` over every report (None when none is finite)."""
        values = [h.get(metric) for h in self.history if is_finite(h.get(metric))]
        return (max if mode == "max" else min)(values) if values else None

    def param(self, key: str):
        """The decoded value of an active parameter (None when `key` does not apply to this trial)."""
        return decode(self.active[key]) if key in self.active else None

    def decoded(self) -> dict:
        """The active parameters, decoded (a step-wise plan as its list)."""
        return {k: decode(v) for k, v in self.active.items()}

    def reports(self) -> list:
        """Every report in order (the last one alone for a record built without its history)."""
        return self.history or ([self.last] if self.last else [])

    def reached(self, metric: str) -> float:
        """The furthest budget (`budget_of`) of a report with a finite `metric`; NaN without one."""
        budgets = [budget_of(h) for h in self.reports() if is_finite(h.get(metric))]
        return max(budgets) if budgets and all(is_finite(b) for b in budgets) else math.nan

    def report_at(self, metric: str, budget: float) -> Optional[dict]:
        """The first report with a finite `metric` whose budget reaches `budget` (None when none does)."""
        return next((h for h in self.reports() if is_finite(h.get(metric)) and budget_of(h) >= budget - 1e-9),
                    None)

    def started(self) -> Optional[float]:
        """When the trial started (seconds since the epoch), from its first report: Ray's `timestamp` (whole
        seconds) minus `time_total_s`; None when the report has neither."""
        first = self.reports()[0] if self.reports() else {}
        ts, total = first.get("timestamp"), first.get("time_total_s")
        return float(ts) - float(total) if is_finite(ts) and is_finite(total) else None

    @classmethod
    def from_result(cls, result, index: int, statuses: dict, phase: str = "search",
                    batch_size: Optional[int] = None, gpu: Optional[float] = None) -> "Trial":
        """The record of a Ray `Result` (`path`, `metrics`, `metrics_dataframe`, `config`, `error`);
        `statuses`: trial id -> Ray's status at the end (the live view's); `batch_size`, `gpu`: the
        settings an out-of-memory error names (the trial's own batch size first)."""
        trial_id = Path(result.path).name if result.path else str(index)
        last, history = dict(result.metrics or {}), _dataframe_records(result)
        if not last and history:
            last = history[-1]
        config = dict(result.config or {})
        errored = result.error is not None
        error = failure(result.error, last, config.get("optim.batch_size", batch_size), gpu)
        return cls(trial_id, classify(statuses.get(trial_id), last, errored), phase, params=config, last=last,
                   history=history, error=error, errored=errored)

    @classmethod
    def from_dir(cls, trial_dir: Path, status: str, phase: str = "search",
                 problems: Optional[list] = None) -> "Trial":
        """The record of a trial directory (`result.json`, `params.json`); its strategy is the caller's.
        A damaged file is read as far as it is whole (params.json: else the config of the first report), and
        each problem appended to `problems` as ("<file>: what is wrong", what the record does instead); a last
        report being written by a running trial (`status` running) is no problem."""
        problems = [] if problems is None else problems
        reports, damage = _json_lines(trial_dir / "result.json")
        if damage and not (status == "running" and damage == CUT_SHORT):
            problems.append((f"{trial_dir / 'result.json'}: {damage}",
                             f"read its {len(reports)} whole report{'' if len(reports) == 1 else 's'}"))
        params = _params(trial_dir / "params.json", problems)
        if params is None:
            config = reports[0].get("config") if reports else None
            params = config if isinstance(config, dict) else {}
        history = [_without_config(h) for h in reports]
        return cls(trial_dir.name, status, phase, params={k: v for k, v in params.items() if k != "strategy"},
                   last=history[-1] if history else {}, history=history)


def _params(path: Path, problems: list) -> Optional[dict]:
    """A trial's params.json (Ray's config); None when missing or damaged (a problem said)."""
    if not path.exists():
        return None
    try:
        data = read_json(path)
    except UserError as exc:
        problems.append((problem_of(exc), "its params are taken from its first report"))
        return None
    if not isinstance(data, dict):
        problems.append((f"{path}: is not a JSON object", "its params are taken from its first report"))
        return None
    return data


# ---------------------------------------------------------------------------------------------------
# Choosing among trials at one budget


def budget_of(report: dict) -> float:
    """Where a report sits on the compute axis (epoch-equivalents of compute): `asha_time`, the early
    stopper's clock (compute_equiv plus half a report's compute: the first report whose asha_time reaches b
    is the one whose compute is nearest b), else `compute_equiv`, else `epoch_equiv`; NaN without any."""
    for key in ("asha_time", "compute_equiv", "epoch_equiv"):
        if is_finite(report.get(key)):
            return float(report[key])
    return math.nan


def compute_of(report: dict) -> float:
    """A report's compute: `compute_equiv`, else `epoch_equiv` (NaN without either)."""
    for key in ("compute_equiv", "epoch_equiv"):
        if is_finite(report.get(key)):
            return float(report[key])
    return math.nan


@dataclass(frozen=True)
class Compared:
    """Trials' values of a metric at one budget: `pairs` [(trial, value)] in the trials' order, `budget` where
    they were compared in epoch-equivalents of compute (the rung's milestone; else the least compute of the
    reports compared; with `full`, the most of the trials' final computes; NaN where the reports carry
    none), `full` whether each trial trained its whole budget (then every value is the trial's final one);
    `threshold` the budget (`budget_of`) each trial's value was read at (NaN with `full` or final values)."""
    pairs: list
    budget: float
    full: bool
    threshold: float = math.nan

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.pairs]


def common_values(trials: Iterable[Trial], metric: str, rungs: Sequence[float] = ()) -> Compared:
    """The values of `trials` (those with a finite `metric`) at one budget: their final values when every
    one of them trained its whole budget (status finished), else each one's value at its first report that
    reaches the highest budget all of them reached (the least of their furthest budgets; with the early
    stopper's `rungs`, the highest rung milestone at or below it where the trial that went least far stopped
    there, so the values are the ones the rung compared). Where a trial's reports carry no budget, the final
    values (budget NaN)."""
    pool = [t for t in trials if is_finite(t.reached(metric)) or is_finite(t.final(metric))]
    if pool and all(t.status == "finished" and is_finite(t.final(metric)) for t in pool):
        return Compared([(t, float(t.final(metric))) for t in pool], _most(compute_of(t.last) for t in pool), True)
    reach = [t.reached(metric) for t in pool]
    if not all(is_finite(r) for r in reach):
        return Compared([(t, float(t.final(metric))) for t in pool if is_finite(t.final(metric))], math.nan, False)
    rung = max((m for m in rungs if m <= min(reach, default=0.0) + 1e-9), default=None)
    if rung is not None:  # the rung only where the trial that went least far reported no further than it
        least = pool[reach.index(min(reach))]
        rung = rung if budget_of(least.report_at(metric, rung)) >= min(reach) - 1e-9 else None
    threshold = min(reach, default=math.nan) if rung is None else rung
    at = [(t, t.report_at(metric, threshold)) for t in pool]
    budget = rung if rung is not None else -_most(-compute_of(h) for _, h in at)
    return Compared([(t, float(h[metric])) for t, h in at], budget, False, threshold)


def _most(values: Iterable[float]) -> float:
    finite = [v for v in values if is_finite(v)]
    return max(finite) if finite else math.nan


@dataclass(frozen=True)
class Choice:
    """The trial `choose` chose: its `value` at the budget it was compared at (`budget`, epoch-equivalents
    of compute: with `full`, the trial's own final compute), whether that is the full budget (`full`: among
    the trials that trained it) and how many trials it was compared with (`compared`, itself included)."""
    trial: Trial
    value: float
    budget: float
    full: bool
    compared: int


def choose(trials: Iterable[Trial], metric: str, mode: str = "max",
           rungs: Sequence[float] = ()) -> Optional[Choice]:
    """The best of `trials` by `metric` at one budget every compared trial reached: when some trained their
    whole budget (status finished), those by their final values; else every trial at the highest budget all
    of them reached (`common_values`, with the early stopper's `rungs`). A trial that trained its whole
    budget is never preferred for that alone, nor one that went further: a trial stopped at a rung with a
    higher early value is not compared with the finished ones at all. Ties: the first in `trials`' order.
    None without a finite value."""
    trials = list(trials)
    finished = [t for t in trials if t.status == "finished" and is_finite(t.final(metric))]
    compared = common_values(finished or trials, metric, rungs)
    if not compared.pairs:
        return None
    sign = 1.0 if mode == "max" else -1.0
    best, value = max(compared.pairs, key=lambda p: sign * p[1])  # max keeps the first of equal values
    budget = compute_of(best.last) if compared.full else compared.budget
    return Choice(best, value, budget, compared.full, len(compared.pairs))


def start_order(trials: Iterable[Trial]) -> list[Trial]:
    """`trials` in the order they started (`Trial.started`; Ray's timestamps are whole seconds, so trials
    that started within a second may swap); those without a start time last, in their given order."""
    indexed = list(enumerate(trials))
    return [t for _, t in sorted(indexed, key=lambda it: (it[1].started() is None, it[1].started() or 0.0, it[0]))]


def read_reports(trial_dir: Path) -> list[dict]:
    """A trial's reported results (without their config), from its result.json; [] if none yet (a damaged
    line is left out)."""
    return [_without_config(h) for h in _json_lines(trial_dir / "result.json")[0]]


def _without_config(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "config"}


CUT_SHORT = "its last line is cut short"  # a line being written by a running trial, or a copy cut short


def _json_lines(path: Path) -> tuple[list[dict], Optional[str]]:
    """A JSON-lines file's objects, every line that is one ([] when the file is missing), and what was wrong
    with the others (None: nothing): a last line without its newline that is not whole is `CUT_SHORT`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], None
    except OSError as exc:
        what = "is a directory, expected a file" if isinstance(exc, IsADirectoryError) else \
            f"cannot read it ({exc.strerror or exc})"
        return [], what
    out, bad = [], []
    lines = data.split(b"\n")
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:  # not UTF-8 (UnicodeDecodeError), not JSON
            record = None
        if isinstance(record, dict):
            out.append(record)
        else:
            bad.append(i)
    if not bad:
        return out, None
    cut = bad[-1] == len(lines)  # the last line, without its newline
    damaged = bad[:-1] if cut else bad
    what = [f"line{'s' if len(damaged) > 1 else ''} {', '.join(map(str, damaged))} "
            f"{'are' if len(damaged) > 1 else 'is'} damaged"] if damaged else []
    return out, "; ".join(what + ([CUT_SHORT] if cut else []))


def _dataframe_records(result) -> list[dict]:
    try:
        df = result.metrics_dataframe
        return df.to_dict("records") if df is not None else []
    except Exception:  # noqa: BLE001 - a trial without a readable progress file still has its last report
        return []


# ---------------------------------------------------------------------------------------------------
# Status and failure


def classify(ray_status: Optional[str], last: dict, errored: bool = False, live: bool = False) -> str:
    """A trial's status from Ray's (TERMINATED, ERROR, RUNNING, PENDING, ...; None: not seen) and its last
    report. At the end of a phase (`live` False) a trial Ray did not end is unfinished; in the live view
    (`live` True) it is running, waiting (paused at a rung of synchronous halving) or pending."""
    if errored or ray_status == "ERROR":
        return "failed"
    if live and ray_status != "TERMINATED":
        return {"RUNNING": "running", "PAUSED": "waiting"}.get(ray_status, "pending")  # waiting: at a rung
    if ended_fatally(last):  # out of GPU memory, or a UserError: the trial returned, not retried
        return "failed"
    if last.get("diverged") == 1:
        return "diverged"
    if last.get("budget_done") == 1:
        return "finished"
    if ray_status in (None, "TERMINATED"):
        return "stopped_early"
    return "unfinished"


def ended_fatally(last: dict) -> bool:
    """The trial returned after an error that a retry repeats (out of GPU memory, a user error)."""
    return last.get("oom") == 1 or last.get("user_error") == 1


def failure(error, last: dict, batch_size: Optional[int] = None, gpu: Optional[float] = None) -> Optional[str]:
    """A trial's `error` line: Ray's error (its last line), else out of GPU memory, else a user error."""
    if error is not None:
        text = str(error).strip().splitlines()
        return (text[-1] if text else type(error).__name__)[:200]
    if last.get("oom") == 1:
        return oom_reason(last, batch_size, gpu)
    if last.get("user_error") == 1:
        return str(last.get("fatal_error", "a user error"))[:300]
    return None


def oom_reason(last: dict, batch_size: Optional[int] = None, gpu: Optional[float] = None) -> str:
    """The `error` of a trial that ran out of GPU memory (its last report has `oom: 1`)."""
    ee = last.get("epoch_equiv")
    where = f" at epoch-equivalent {ee:.3g}" if is_finite(ee) else ""
    settings = ", ".join(x for x in (f"optim.batch_size {batch_size}" if batch_size else "",
                                     f"resources.gpu {gpu:g}" if gpu is not None else "") if x)
    return (f"CUDA out of memory{where}{f' ({settings})' if settings else ''}: lower optim.batch_size or raise "
            "resources.gpu (not retried: the same settings run out again)")
