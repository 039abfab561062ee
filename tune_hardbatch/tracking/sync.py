"""`report NAME --sync`: upload to MLflow whatever the Ray results hold and MLflow does not (after an outage),
the confirmation phase's trials (with their test correctness, when kept) and the verdict included."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..search.prepare.reachable import check_reachable
from ..search.space.uris import tracking_uri
from .client import STEP_KEY, VERDICT_FILE, SearchTracker, trial_key
from .records import (
    correct_files,
    described_config,
    metrics_of,
    search_params,
    search_tags,
    trial_artifacts,
    trial_record,
)


def sync_experiment(tracker: SearchTracker, trials: list[dict], search_name: str, tags: dict, params: dict,
                    space_file: Optional[Path], parent_artifacts: list, verdict: Optional[dict] = None) -> dict:
    """Make MLflow hold every trial's run, params, metric history and status, and the verdict (if any, with
    its files among `parent_artifacts`). Returns counts.

    `trials`: dicts with trial_id, params, tags, status, history (the reported results, in order) and
    artifacts (paths); optionally key (its `trial_key`, default the id) and run_name. Steps already in
    MLflow (by `backprops`) are not logged again.
    """
    from mlflow.entities import Metric

    tracker.down = False
    tracker.start(search_name, tags, params, space_file)
    counts = {"runs_created": 0, "metrics_logged": 0}
    for t in trials:
        key = t.get("key", t["trial_id"])
        had = key in tracker.mapping["trials"]
        run_id = tracker.trial_run(key, t["params"], t["tags"], t.get("run_name"))
        if run_id is None:
            raise RuntimeError(f"cannot reach MLflow at {tracker.uri}")
        counts["runs_created"] += not had
        present = {int(m.step) for m in tracker.client.get_metric_history(run_id, STEP_KEY)}
        now = int(time.time() * 1000)
        batch = []
        for result in t["history"]:
            step = int(result.get(STEP_KEY, 0))
            if step in present:
                continue
            present.add(step)
            batch.extend(Metric(k, v, now, step) for k, v in metrics_of(result).items())
        for i in range(0, len(batch), 900):  # MLflow's log_batch takes at most 1000 metrics
            tracker.client.log_batch(run_id, metrics=batch[i : i + 900])
        counts["metrics_logged"] += len(batch)
        tracker.end_trial(key, t["status"], t.get("artifacts", []))
    if verdict is not None:
        tracker.log_verdict(verdict)
    tracker.finish(parent_artifacts)
    if tracker.down:
        raise RuntimeError(f"cannot reach MLflow at {tracker.uri}")
    return counts


def sync_search(exp_dir: Path) -> dict:
    """`report NAME --sync`: upload to MLflow whatever the Ray results hold and MLflow does not."""
    from ..output.report import PLOTS, REPORT_FILE, build_report
    from ..search.history import load_trials, optional_json, saved_space
    from ..search.prepare.lock import check_free
    from ..search.space import BEST_FILE, RESULTS_FILE, SPACE_FILE

    check_free(exp_dir, "--sync")  # marking a running search's live child runs as finished would be wrong
    space = saved_space(exp_dir)
    if space is None:
        raise UserError(str(exp_dir / SPACE_FILE), "file not found; --sync uploads a search by its saved space")
    uri, artifacts = tracking_uri(space.tracking, str(exp_dir.parent))
    if uri is None:
        raise UserError("tracking.enabled", f"tracking is off for search {exp_dir.name}; nothing to sync")
    check_reachable(uri)
    build_report(exp_dir)
    tracker = SearchTracker(uri, space.tracking.experiment, exp_dir, artifacts)
    trials = []
    for t in load_trials(exp_dir):
        params, tags, cfg = trial_record(space, t.params)
        files = trial_artifacts(cfg, t.history, exp_dir / t.trial_id, f"trial {t.trial_id} {tags['strategy']}")
        trials.append({"trial_id": t.trial_id, "params": params, "tags": tags, "status": t.status,
                       "history": t.history, "artifacts": files})
    trials += confirmation_trials(space, exp_dir)
    parent = parent_files(exp_dir, (RESULTS_FILE, REPORT_FILE, BEST_FILE, *PLOTS))
    verdict = optional_json(exp_dir / VERDICT_FILE, "the verdict is not uploaded")
    return sync_experiment(tracker, trials, exp_dir.name, search_tags(space), search_params(space),
                           exp_dir / SPACE_FILE, parent, verdict)


def confirmation_trials(space, exp_dir: Path) -> list[dict]:
    """The confirmation phase's trials (`<search>/confirm`, and its budget-matched runs'
    `<search>/budget_matched/confirm`) for `sync_experiment`, described as its tracking callback describes
    them (`judgement.ArmRun`); [] when the phase never started."""
    from ..files import problem_of
    from ..search.history import load_trials, read_statuses, warn_skipped
    from ..search.space.schema import CONFIRM_RESULTS_FILE
    from ..verdict.budget import confirm_dirs
    from ..verdict.confirm_plan import load_plan
    from ..verdict.judgement import ArmRun

    try:
        plan = load_plan(exp_dir)
    except UserError as exc:  # which arm a run trained is in the plan alone
        warn_skipped(problem_of(exc), "the confirmation's runs are not uploaded")
        return []
    if plan is None:
        return []
    statuses, out = read_statuses(exp_dir / CONFIRM_RESULTS_FILE), []
    for confirm_dir, arms in confirm_dirs(exp_dir, plan):
        if not confirm_dir.is_dir():
            continue
        describe = ArmRun(arms)
        for t in load_trials(confirm_dir, statuses, "confirmation", "unfinished"):
            i_arm, seed = t.params.get("arm"), t.params.get("seed")
            if not (isinstance(i_arm, int) and 0 <= i_arm < len(arms)) or seed is None:
                warn_skipped(f"{confirm_dir / t.trial_id}: neither params.json nor result.json says its arm and "
                             "seed", "this run is not uploaded")
                continue
            params, tags, name = describe(t.trial_id, t.params)
            files = trial_artifacts(described_config(space, params), t.history, confirm_dir / t.trial_id, name)
            files += correct_files(confirm_dir / t.trial_id)  # its test correctness, when its worker kept it
            out.append({"trial_id": t.trial_id, "key": trial_key(t.trial_id, "confirmation"), "params": params,
                        "tags": {"phase": "confirmation", **tags}, "run_name": name, "history": t.history,
                        "status": t.status, "artifacts": files})
    return out


def parent_files(exp_dir: Path, names) -> list[Path]:
    """The parent run's artifacts: `names` in the experiment directory, every other plot there, verdict.json."""
    paths = [exp_dir / n for n in names]
    paths += [p for p in sorted(exp_dir.glob("*.png")) if p not in paths]
    return paths + [exp_dir / VERDICT_FILE]
