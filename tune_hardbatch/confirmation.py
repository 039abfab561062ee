"""The confirmation phase, Ray-free: which arms are confirmed, their configs and seeds, their runs' rows.

After a search, the best configuration of each strategy family present (plain, delta=1, delta, trim,
splits, and each combination searched), chosen by the search's validation metric among the trials that
trained their whole budget, is trained again with `confirm.seeds` seeds, shared by all arms, on the full
training set (no validation hold-out) and evaluated on the test set. The arms are fixed once chosen
(`confirm_arms.json`): `--resume` continues the same phase. The Ray side is `ray_backend/confirm.py`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

from .config import apply_overrides, flat_dict
from .errors import UserError
from .labels import STRATEGY_KEYS
from .results import trial_status
from .space import SearchSpace, decode, trial_config
from .space.schema import ARMS_FILE
from .verdict import BASELINES, build_verdict, family_of, family_rank, group_runs


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def confirm_seeds(spec: SearchSpace) -> list[int]:
    """`confirm.seeds` seeds after the search's own (base) seed: the search never saw them."""
    return [spec.base_cfg.seed + 1 + i for i in range(spec.confirm.seeds)]


def choose_arms(spec: SearchSpace, rows: list[dict]) -> tuple[list[dict], list[str]]:
    """(arms, notes): per strategy family, its best trial by the search metric (validation).

    A trial that trained its whole budget beats one stopped early; among those stopped early, the one
    that went furthest (ASHA kept it longest), then the metric. Baselines first, then by that metric; at
    most `confirm.max_arms` (the baselines are kept first)."""
    metric, mode = spec.search.metric, spec.search.mode
    key = f"final_{metric}"

    def rank(row):
        return family_rank(row["status"], row.get("epoch_equiv"), row[key], mode)

    best: dict[str, dict] = {}
    for row in rows:
        if row["status"] not in ("finished", "stopped_early") or not _finite(row.get(key)):
            continue
        fam = family_of(row["strategy"])
        if fam not in best or rank(row) > rank(best[fam]):
            best[fam] = row
    notes = []
    missing = sorted({family_of(r["strategy"]) for r in rows} - set(best) - {"invalid"})
    if missing:
        notes.append(f"not confirmed (every trial diverged or failed): {', '.join(missing)}")
    early = sorted(f for f, r in best.items() if r["status"] != "finished")
    if early:
        notes.append("confirmed from a trial stopped early (none of the family trained its whole budget): "
                     + ", ".join(f"{f} (trial {best[f]['trial_id']} at {best[f]['epoch_equiv']:.3g} "
                                 "epoch-equivalents)" for f in early))
    weak = [f for f in BASELINES if f in best and best[f]["status"] != "finished"]
    if weak:
        notes.append(f"the baseline {weak[0]} is confirmed from a trial stopped early: the search tuned it less than "
                     "the arms that trained their whole budget, so a 'helps' may reflect tuning, not the strategy")
    order = sorted(best, key=lambda f: (f not in BASELINES, BASELINES.index(f) if f in BASELINES else 0,
                                        [-x for x in rank(best[f])]))
    limit = spec.confirm.max_arms
    if limit is not None and len(order) > limit:  # the baselines come first in `order`
        notes.append(f"confirm.max_arms {limit}: not confirmed: {', '.join(order[limit:])}")
        order = order[:limit]
    return [_arm(spec, best[f], f) for f in order], notes


def _arm(spec: SearchSpace, row: dict, family: str) -> dict:
    cfg = trial_config(spec.base_flat, row["_params"], spec.dims)
    full = apply_overrides(cfg, {"data.val_fraction": 0.0})  # the full training set
    return {"arm": row["strategy"], "family": family, "trial_id": row["trial_id"],
            "value": row[f"final_{spec.search.metric}"],
            "params": {k: decode(v) for k, v in row["_active"].items()}, "config": flat_dict(full)}


def save_arms(exp_dir: Path, arms: list[dict], seeds: list[int], notes: list[str]) -> None:
    path = Path(exp_dir) / ARMS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"arms": arms, "seeds": seeds, "notes": notes}, indent=2) + "\n")
    tmp.replace(path)


def load_arms(exp_dir: Path) -> Optional[dict]:
    """The arms chosen when the phase started (None before): --resume confirms those, not new ones."""
    path = Path(exp_dir) / ARMS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise UserError("--resume", f"{path} is unreadable; delete it to choose the arms again") from None


class ArmLabel:
    """A confirmation trial's label (its arm) from its config {"arm": i, "seed": s}: for the live view."""

    def __init__(self, arms: list[dict]):
        self.names = [a["arm"] for a in arms]

    def __call__(self, config: dict) -> str:
        i = config.get("arm")
        return self.names[i] if isinstance(i, int) and i < len(self.names) else "?"


class ArmRun:
    """How a confirmation trial's MLflow child run is described: (params, tags, run name)."""

    def __init__(self, arms: list[dict]):
        self.arms = [{"arm": a["arm"], "family": a["family"], "params": a["params"], "trial_id": a["trial_id"]}
                     for a in arms]

    def __call__(self, trial_id: str, config: dict) -> tuple[dict, dict, str]:
        arm, seed = self.arms[config["arm"]], config["seed"]
        params = {**arm["params"], "seed": seed, "data.val_fraction": 0.0}
        tags = {"phase": "confirmation", "arm": arm["arm"], "family": arm["family"], "seed": str(seed),
                "strategy": arm["arm"], "search_trial": arm["trial_id"]}
        return params, tags, f"confirm {arm['arm']} seed {seed} {trial_id}"


def confirm_rows(results, statuses: dict, arms: list[dict]) -> list[dict]:
    """One row per confirmation trial from a Ray `ResultGrid` (duck-typed), with its last report."""
    rows = []
    for i in range(len(results)):
        r = results[i]
        trial_id = Path(r.path).name if r.path else str(i)
        last = dict(r.metrics or {})
        config = dict(r.config or {})
        arm = arms[config["arm"]] if isinstance(config.get("arm"), int) else {"arm": "?", "family": "?"}
        rows.append({"trial_id": trial_id, "status": trial_status(statuses.get(trial_id), last, r.error is not None),
                     "arm": arm["arm"], "family": arm["family"], "seed": config.get("seed"),
                     "final_test_top1": last.get("test_top1"), "convergence_epoch": last.get("convergence_epoch"),
                     "epoch_equiv": last.get("epoch_equiv"), "samples_forward": last.get("samples_forward"),
                     "samples_with_grad": last.get("samples_with_grad"), "time_s": last.get("time_total_s"),
                     "error": str(r.error).strip().splitlines()[-1][:200] if r.error is not None else None,
                     "_last": last, "_errored": r.error is not None, "strategy": arm["arm"]})
    return rows


def verdict_from_confirmation(spec: SearchSpace, rows: list[dict], seeds: list[int], notes: list[str]) -> dict:
    runs = [{**r, "last": r["_last"]} for r in rows]
    groups, families = group_runs(runs, lambda r: r["arm"])
    return build_verdict(groups, families, "confirmation", seeds, spec.budget, spec.resources.gpu, notes)


def verdict_from_grid(spec: SearchSpace, rows: list[dict]) -> dict:
    """A seed grid's own trials: arms are the trials' params except `seed` (each with every seed)."""
    others = [k for k in spec.dim_keys if k != "seed" and k not in STRATEGY_KEYS]

    def label(r):
        extra = [f"{k.rpartition('.')[2]}={decode(r['_active'][k])}" for k in others if k in r["_active"]]
        return " ".join([r["strategy"], *extra])

    runs = [{**r, "last": r["_last"], "seed": decode(r["_active"].get("seed", spec.base_cfg.seed))} for r in rows]
    groups, families = group_runs(runs, label)
    seeds = sorted({r["seed"] for r in runs})
    return build_verdict(groups, families, "grid", seeds, spec.budget, spec.resources.gpu)
