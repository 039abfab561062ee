"""A search's history on disk: its directory, and each trial's record (`trials.Trial`: params, strategy,
reported results in order, final status).

Reads the Ray Tune experiment directory (`<trial>/result.json`, `params.json`) and results.csv's final
statuses; works on a finished, running, interrupted or half-copied search. No Ray, no MLflow.

What `report` can do without is read defensively: a damaged file (not UTF-8, cut short, a directory in its
place) is skipped, or read as far as it is whole, with one `warning:` line naming it and what is wrong
(`warn_skipped`); a missing one is no warning (the search has not written it yet).
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import UserError
from ..files import load_yaml, problem_of, read_json, read_text
from ..output.logs import tool_logger
from .space import RESULTS_FILE, SPACE_FILE, STATUSES, SearchSpace, load_space
from .space.arms import arm_of
from .trials import Trial

log = tool_logger(__name__)
_WARNED: set = set()  # the problems said so far: `report --sync` reads the search's files twice
ROW_STATUSES = (*STATUSES, "unfinished")  # what results.csv and confirm_results.csv say of a trial


def warn_skipped(problem: str, consequence: str) -> None:
    """One `warning:` line: `problem` ("<file>: what is wrong with it") and what the report does instead."""
    line = f"{problem}; {consequence}"
    if line not in _WARNED:
        _WARNED.add(line)
        log.warning("%s", line)


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def optional_json(path: Path, consequence: str) -> Optional[Any]:
    """A JSON file the report can do without: None when it is missing, or damaged (with a warning)."""
    if not path.exists():
        return None
    try:
        return read_json(path)
    except UserError as exc:
        warn_skipped(problem_of(exc), consequence)
        return None


def find_experiment(name_or_path: str, out: Optional[str] = None) -> Path:
    """A search directory from a path, or a NAME under --out (default ./tune_results)."""
    path = Path(name_or_path).expanduser()
    candidates = [path, Path(out or "tune_results").expanduser() / name_or_path]
    for c in candidates:
        if (c / SPACE_FILE).exists() or (c / RESULTS_FILE).exists():
            return c.resolve()
    raise UserError("NAME", f"no search {name_or_path!r} found (looked in "
                    f"{', '.join(str(c.resolve()) for c in candidates)})")


def read_statuses(path: Path) -> dict[str, str]:
    """trial id -> final status, from a results file (results.csv, confirm_results.csv); {} before it exists.
    A damaged file gives the statuses of its whole rows (a warning says what was left out)."""
    rows = read_rows(path, ("trial_id", "status"), "the trials without a row there count as unfinished")
    return {r["trial_id"]: r["status"] for r in rows}


def read_rows(path: Path, columns: Sequence[str], consequence: str) -> list[dict]:
    """The whole rows of a CSV file the tool wrote, each with `columns` (and a known status where one of
    them is `status`); [] when it is missing. Bytes that are not UTF-8, a last row cut short (a copy cut
    short, the file being written), rows of the wrong width: left out, one warning for the file."""
    if not path.exists():
        return []
    problems: list[str] = []
    text = _salvaged_text(path, problems)
    if text is not None and text and not text.endswith("\n"):
        problems.append("its last row is cut short")
        text = text[: text.rfind("\n") + 1]
    rows = _rows(text or "", columns, problems) if text is not None else []
    if problems:
        warn_skipped(f"{path}: {'; '.join(problems)}", f"read its {counted(len(rows), 'whole row')}; {consequence}")
    return rows


def _salvaged_text(path: Path, problems: list[str]) -> Optional[str]:
    """The file's text; bytes that are not UTF-8 replaced (and said in `problems`); None: no file to read."""
    try:
        return read_text(path)
    except UserError as exc:
        problem = problem_of(exc, path)
        problems.append(problem)
        try:
            return path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return None


def _rows(text: str, columns: Sequence[str], problems: list[str]) -> list[dict]:
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        problems.append(f"not CSV ({exc})")
        return []
    if not table:
        problems.append("it is empty")
        return []
    head, out = table[0], []
    if not set(columns) <= set(head):
        problems.append(f"its header has no {', '.join(c for c in columns if c not in head)} column")
        return []
    for row in table[1:]:
        record = dict(zip(head, row))
        if len(row) == len(head) and record.get("status", ROW_STATUSES[0]) in ROW_STATUSES:
            out.append(record)
    if len(out) < len(table) - 1:
        problems.append(f"{counted(len(table) - 1 - len(out), 'damaged row')}")
    return out


def load_trials(exp_dir: Path, statuses: Optional[dict] = None, phase: str = "search",
                missing: Optional[str] = None) -> list[Trial]:
    """Every trial directory of `exp_dir`, in order: a record with its params (the active ones and the
    strategy label too when `exp_dir` holds the search's space) and reports. Its status is the final one
    (`statuses`, default results.csv's); a trial without one is `missing`, by default running while no
    status is known at all (the search runs), else unfinished. A trial's damaged files are read as far as
    they are whole (a warning each)."""
    statuses = read_statuses(exp_dir / RESULTS_FILE) if statuses is None else statuses
    missing = missing or ("running" if not statuses else "unfinished")
    describe = _describer(exp_dir)
    trials = []
    for result_file in sorted(exp_dir.glob("*/result.json")):
        problems: list[str] = []
        t = Trial.from_dir(result_file.parent, statuses.get(result_file.parent.name, missing), phase, problems)
        for problem, consequence in problems:
            warn_skipped(problem, consequence)
        trials.append(replace(t, **describe(t.params)))
    return trials


def saved_space(exp_dir: Path) -> Optional[SearchSpace]:
    """The search's saved space (None without one); one that does not load is one `UserError` naming the
    file: nothing is labelled, judged or reported without it."""
    path = exp_dir / SPACE_FILE
    if not path.exists():
        return None
    try:
        return load_space(str(path))
    except UserError as exc:
        if exc.key == str(path):
            raise
        raise UserError(str(path), f"is not the space the search saved ({exc}); it may be damaged") from None


def _describer(exp_dir: Path):
    """A trial's strategy label and family and active params from its params and the search's saved space."""
    space = saved_space(exp_dir)
    if space is None:
        return lambda params: {}

    def describe(params: dict) -> dict:
        strategy, family, active = space.describe(params)
        return {"strategy": strategy, "family": family, "active": active, "arm": arm_of(params)}

    return describe


def gpu_fraction(exp_dir: Path) -> float:
    space = load_yaml(exp_dir / SPACE_FILE) if (exp_dir / SPACE_FILE).exists() else {}
    resources = space.get("resources") if isinstance(space, dict) else None
    return float((resources if isinstance(resources, dict) else {}).get("gpu") or 0)
