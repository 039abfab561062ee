"""A search's history on disk: its directory, each trial's params and reported results, in order.

Reads the Ray Tune experiment directory (`<trial>/result.json`, `params.json`) and results.csv's final
statuses; works on a finished or a running search. No Ray, no MLflow.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

import yaml

from .errors import UserError
from .space import RESULTS_FILE, SPACE_FILE, StrategyLabel, load_space


def find_experiment(name_or_path: str, out: Optional[str] = None) -> Path:
    """A search directory from a path, or a NAME under --out (default ./tune_results)."""
    path = Path(name_or_path).expanduser()
    candidates = [path, Path(out or "tune_results").expanduser() / name_or_path]
    for c in candidates:
        if (c / SPACE_FILE).is_file() or (c / RESULTS_FILE).is_file():
            return c.resolve()
    raise UserError("NAME", f"no search {name_or_path!r} found (looked in "
                    f"{', '.join(str(c.resolve()) for c in candidates)})")


def _read_json_lines(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line being written by a running trial
    return out


def read_history(trial_dir: Path) -> list[dict]:
    """A trial's reported results (without their config), from its result.json; [] if none yet."""
    path = trial_dir / "result.json"
    return [{k: v for k, v in h.items() if k != "config"} for h in _read_json_lines(path)] if path.is_file() else []


def load_trials(exp_dir: Path) -> list[dict]:
    """Every trial directory: id, params, strategy, status, reported history (in order)."""
    statuses = {}
    if (exp_dir / RESULTS_FILE).is_file():
        with open(exp_dir / RESULTS_FILE) as fh:
            statuses = {row["trial_id"]: row["status"] for row in csv.DictReader(fh)}
    label = _strategy_label(exp_dir)
    trials = []
    for result_file in sorted(exp_dir.glob("*/result.json")):
        history = _read_json_lines(result_file)
        params_file = result_file.parent / "params.json"
        params = json.loads(params_file.read_text()) if params_file.is_file() else \
            (history[0].get("config", {}) if history else {})
        history = [{k: v for k, v in h.items() if k != "config"} for h in history]
        trial_id = result_file.parent.name
        params = {k: v for k, v in params.items() if k != "strategy"}
        trials.append({"trial_id": trial_id, "params": params, "strategy": label(params), "history": history,
                       "status": statuses.get(trial_id, "running" if not statuses else "unfinished")})
    return trials


def _strategy_label(exp_dir: Path):
    """A trial's strategy label from its params and the search's saved space."""
    if not (exp_dir / SPACE_FILE).is_file():
        return lambda params: "?"
    spec = load_space(str(exp_dir / SPACE_FILE))
    return StrategyLabel(spec.dims, spec.base_flat)


def gpu_fraction(exp_dir: Path) -> float:
    space = yaml.safe_load((exp_dir / SPACE_FILE).read_text()) if (exp_dir / SPACE_FILE).is_file() else {}
    return float(((space or {}).get("resources") or {}).get("gpu") or 0)
