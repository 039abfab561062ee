"""A search's history on disk: its directory, and each trial's record (`trials.Trial`: params, strategy,
reported results in order, final status).

Reads the Ray Tune experiment directory (`<trial>/result.json`, `params.json`) and results.csv's final
statuses; works on a finished or a running search. No Ray, no MLflow.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Optional

import yaml

from ..errors import UserError
from .space import RESULTS_FILE, SPACE_FILE, load_space
from .space.arms import arm_of
from .trials import Trial


def find_experiment(name_or_path: str, out: Optional[str] = None) -> Path:
    """A search directory from a path, or a NAME under --out (default ./tune_results)."""
    path = Path(name_or_path).expanduser()
    candidates = [path, Path(out or "tune_results").expanduser() / name_or_path]
    for c in candidates:
        if (c / SPACE_FILE).is_file() or (c / RESULTS_FILE).is_file():
            return c.resolve()
    raise UserError("NAME", f"no search {name_or_path!r} found (looked in "
                    f"{', '.join(str(c.resolve()) for c in candidates)})")


def read_statuses(path: Path) -> dict[str, str]:
    """trial id -> final status, from a results file (results.csv, confirm_results.csv); {} before it exists."""
    if not path.is_file():
        return {}
    with open(path) as fh:
        return {row["trial_id"]: row["status"] for row in csv.DictReader(fh)}


def load_trials(exp_dir: Path, statuses: Optional[dict] = None, phase: str = "search",
                missing: Optional[str] = None) -> list[Trial]:
    """Every trial directory of `exp_dir`, in order: a record with its params (the active ones and the
    strategy label too when `exp_dir` holds the search's space) and reports. Its status is the final one
    (`statuses`, default results.csv's); a trial without one is `missing`, by default running while no
    status is known at all (the search runs), else unfinished."""
    statuses = read_statuses(exp_dir / RESULTS_FILE) if statuses is None else statuses
    missing = missing or ("running" if not statuses else "unfinished")
    describe = _describer(exp_dir)
    trials = []
    for result_file in sorted(exp_dir.glob("*/result.json")):
        t = Trial.from_dir(result_file.parent, statuses.get(result_file.parent.name, missing), phase)
        trials.append(replace(t, **describe(t.params)))
    return trials


def _describer(exp_dir: Path):
    """A trial's strategy label and family and active params from its params and the search's saved space."""
    if not (exp_dir / SPACE_FILE).is_file():
        return lambda params: {}
    space = load_space(str(exp_dir / SPACE_FILE))

    def describe(params: dict) -> dict:
        strategy, family, active = space.describe(params)
        return {"strategy": strategy, "family": family, "active": active, "arm": arm_of(params)}

    return describe


def gpu_fraction(exp_dir: Path) -> float:
    space = yaml.safe_load((exp_dir / SPACE_FILE).read_text()) if (exp_dir / SPACE_FILE).is_file() else {}
    return float(((space or {}).get("resources") or {}).get("gpu") or 0)
