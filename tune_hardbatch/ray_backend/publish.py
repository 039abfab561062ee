"""What a search leaves behind, from its trials' records: results.csv, best_config.yaml and the printed
summary as soon as the search ends (`publish_search`: the confirmation after it may take as long); then
once, at the end (`publish`): confirm_results.csv, verdict.json, report.md and its plots, the MLflow parent
run finished, the checkpoints of ended trials pruned and the verdict printed last.

How the search ended decides the rest: interrupted (Ctrl-C: trials unfinished) finishes MLflow's parent run
as KILLED, says how to continue and raises KeyboardInterrupt (the CLI exits 130); every trial failed
finishes it as FAILED and raises `SearchFailed` (exit 1).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..output.console import print_summary, print_verdict
from ..output.logs import tool_logger
from ..output.report import PLOTS, REPORT_FILE, build_report
from ..search.results import best_choice, best_trial, write_results
from ..search.space import BEST_FILE, RESULTS_FILE, trial_config
from ..search.space.schema import CONFIRM_RESULTS_FILE
from ..search.storage import abs_storage
from ..search.trials import Trial
from ..tracking import parent_files, trial_key
from ..training.config import to_yaml
from ..verdict.budget import confirm_dirs
from ..verdict.comparisons import VERDICT_FILE
from ..verdict.comparisons import to_json as verdict_json
from ..verdict.confirm_plan import load_plan
from .checkpoints import prune_ended
from .search import Run

log = tool_logger(__name__)


class SearchFailed(RuntimeError):
    """Every trial failed (exit 1, not a user error)."""


def publish_search(run: Run, trials: list[Trial]) -> Path:
    """results.csv, best_config.yaml (the best by the search's validation metric) and the printed summary."""
    space, exp_dir = run.space, run.exp_dir
    path = exp_dir / RESULTS_FILE
    write_results(trials, space, path)
    choice = best_choice(trials, space)
    best = choice.trial if choice is not None else None
    if best is not None:  # the value it was chosen by, at the budget it was compared at
        cfg = trial_config(space.base_flat, best.params, space.dims)
        (exp_dir / BEST_FILE).write_text(f"# best trial {best.trial_id} of search {exp_dir.name}: "
                                         f"{space.search.metric} {choice.value} at {choice.budget:g} "
                                         "epoch-equivalents\n" + to_yaml(cfg))
    print_summary(trials, space, best, path, exp_dir, run.stream)
    return path


def stopped(trials: list[Trial]) -> bool:
    """An interrupted search, or one whose every trial failed: nothing to confirm."""
    return any(t.status == "unfinished" for t in trials) or (bool(trials) and all(t.status == "failed"
                                                                                 for t in trials))


def publish(run: Run, trials: list[Trial], confirmed: list[Trial], verdict: Optional[dict]) -> None:
    """The end of the search (see the module docstring); raises when it was interrupted or every trial failed."""
    space, exp_dir = run.space, run.exp_dir
    if confirmed:
        write_results(confirmed, space, exp_dir / CONFIRM_RESULTS_FILE, phase="confirmation")
    if verdict is not None:
        (exp_dir / VERDICT_FILE).write_text(verdict_json(verdict))
    try:
        # before MLflow's parent run ends: report.md and the plots are its artifacts
        build_report(exp_dir, verdict)
    except UserError:  # no trial reported anything
        pass
    unfinished, phase = _unfinished(trials, confirmed)
    failed = not unfinished and stopped(trials)
    status = "KILLED" if unfinished else "FAILED" if failed else "FINISHED"
    finish_tracking(run.tracking_session, trials + confirmed, exp_dir, status,
                    verdict if status == "FINISHED" else None)
    if unfinished:
        out_arg = "" if exp_dir.parent == Path(abs_storage("tune_results")) else f" --out {exp_dir.parent}"
        print(f"interrupted with {unfinished} {phase} trials unfinished; continue with the same command and "
              f"--resume {exp_dir.name}{out_arg}", file=sys.stderr, flush=True)
        raise KeyboardInterrupt  # the CLI exits 130
    if failed:
        raise SearchFailed(f"all {len(trials)} trials failed; see the error.txt files under {exp_dir}")
    best = best_trial(trials, space)
    prune_ended(exp_dir, trials, {best.trial_id} if best else set())  # after tracking (it may upload checkpoints)
    plan = load_plan(exp_dir) if confirmed else None  # confirmation trials come only with a saved plan
    if plan is not None:
        for root, _ in confirm_dirs(exp_dir, plan):  # every look's experiments, the budget-matched runs' too
            prune_ended(root, confirmed, set())
    if verdict is not None:
        print_verdict(verdict, run.stream)


def _unfinished(trials: list[Trial], confirmed: list[Trial]) -> tuple[int, str]:
    """How many trials an interruption left unfinished, and in which phase (the search's first)."""
    for phase, records in (("search", trials), ("confirmation", confirmed)):
        n = sum(t.status == "unfinished" for t in records)
        if n:
            return n, phase
    return 0, ""


def finish_tracking(session, trials: list[Trial], exp_dir: Path, status: str,
                    verdict: Optional[dict] = None) -> None:
    """Through the tracking `session` (`tracking.session.TrackingSession`), after the calls it still has queued, so
    the parent run ends last: final statuses of the trials' runs (the search's and the confirmation's, each
    found by its phase's key), the verdict on the parent run (`SearchTracker.log_verdict`), then the
    parent's artifacts: results, report, plots, best config, verdict.json."""
    if session is None:
        return
    done = session.finish([(trial_key(t.trial_id, t.phase), t.status) for t in trials], verdict,
                          parent_files(exp_dir, (RESULTS_FILE, REPORT_FILE, BEST_FILE, *PLOTS)), status)
    if not done["drained"]:
        log.warning("MLflow tracking calls were still queued after 10 minutes; their runs may be incomplete: "
                    "tune-hardbatch report %s --sync uploads the rest", exp_dir)
    if done["down"]:
        log.warning("MLflow was unreachable during the search; upload what is missing with: tune-hardbatch report "
                    "%s --sync", exp_dir)
