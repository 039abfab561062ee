"""What tracking does with a phase's trial events: `TrialRecorder` turns a trial's start, results and end
into its MLflow child run (params, every result at step = backprops, status, artifacts) through
`SearchTracker`. Its methods run on `BackgroundTracker`'s thread, in the tracking process
(`tracking.process`); the driver's Ray callback only forwards the events.

`exp_dir`: where this phase's trial folders are (`<search>/confirm` for the confirmation). `phase`: the
runs' `phase` tag and their keys in the mapping (`trial_key`: "confirm/<id>"), so the two phases' trials
never share a run. `describe(trial_id, config) -> (params, tags, run_name)`: how a trial's run is described
(default: the search's, from its sampled params: the flattened resolved config, tags strategy and phase,
name "<strategy> <trial id>"). A trial's worker writes its artifacts (`records.write_config`,
`write_curves`); the recorder uploads them, and draws them itself only for a trial whose worker could not
(one that failed for good). A confirmation run's test correctness (`records.correct_files`), written before
its last report, is uploaded with them when it is there (never waited for). Per trial it keeps the last
result and the description while the trial runs, and nothing of it once it ended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

from ..search.trials import Trial, classify, read_reports
from .client import SEND_S, trial_key
from .records import CURVES_FILE, correct_files, described_config, trial_artifacts, trial_files, trial_record

CURVES_POLL_S = 0.25  # a trial's curves, drawn by its worker as the trial ends: looked for this often,
CURVES_WAIT_S = 15.0  # and this long (then drawn here): a worker draws them in ~0.1-0.5 s
WORKER_DRAWS = ("finished", "stopped_early", "diverged")  # the worker ends these itself (not "failed")


class TrialRecorder:
    """One phase's trials as MLflow child runs (see the module docstring); every method runs on the
    background thread of `background`."""

    def __init__(self, tracker, space, exp_dir: Path, background, phase: str = "search",
                 describe: Optional[Callable[[str, dict], tuple]] = None):
        self.tracker, self.space, self.exp_dir = tracker, space, Path(exp_dir)
        self.background, self.phase, self.describe = background, phase, describe
        self.last: dict[str, dict] = {}  # running trial id -> its last result
        self.records: dict[str, tuple] = {}  # running trial id -> (params, tags, run name, Config or None)
        self.phase_over = False  # set by `end_the_rest`: from then on, stopped trials' curves are not waited for

    def key(self, trial_id: str) -> str:
        """The trial's key in the tracker's mapping."""
        return trial_key(trial_id, self.phase)

    # ------------------------------------------------------------------------------ the events
    def start(self, trial_id: str, params: Optional[dict]) -> None:
        if trial_id in self.last:
            return
        key = self.key(trial_id)
        if key not in self.tracker.mapping["trials"]:
            run_params, tags, name, _ = self._record(trial_id, params)
            if self.tracker.trial_run(key, run_params, tags, name) is not None:
                self.background.later(SEND_S, self.tracker.send, key)  # its params, with its first results
        reported = read_reports(self.exp_dir / trial_id)  # a restored trial's reports, uploaded if an
        for result in reported:                           # earlier driver died first (steps MLflow has
            self._buffer(key, result)                     # already are skipped)
        self.last[trial_id] = reported[-1] if reported else {}

    def result(self, trial_id: str, params: dict, result: dict) -> None:
        self.start(trial_id, params)
        self.last[trial_id] = result
        self._buffer(self.key(trial_id), result)

    def end(self, trial_id: str, params: Optional[dict], status, checkpoint, waited_s: float = 0.0) -> None:
        self.start(trial_id, params)
        trial_dir = self.exp_dir / trial_id
        status = status or classify(None, self.last[trial_id])
        if status in WORKER_DRAWS and not (trial_dir / CURVES_FILE).is_file() and waited_s < CURVES_WAIT_S \
                and not self.phase_over:  # its worker draws its curves as it ends, on a thread of their own
            self.background.later(CURVES_POLL_S, self.end, trial_id, params, status, checkpoint,
                                  waited_s + CURVES_POLL_S)
            return
        files = trial_files(trial_dir)
        if len(files) < 2:  # its worker could not write them (e.g. it failed for good)
            _, tags, name, cfg = self._record(trial_id, params)
            title = name or f"trial {trial_id} {tags.get('strategy', '')}"
            files = trial_artifacts(cfg, read_reports(trial_dir), trial_dir, title)
        files += correct_files(trial_dir)
        if self.tracker.log_checkpoint and checkpoint:
            files.append(Path(checkpoint))
        self.tracker.end_trial(self.key(trial_id), status, files)
        self.last.pop(trial_id, None)
        self.records.pop(trial_id, None)

    def end_the_rest(self, trials: list[Trial]) -> None:
        """After the phase: end (with artifacts) every trial whose run was not ended, e.g. those that
        finished just before an earlier driver was killed with their end still queued; then one query
        for child runs made twice (a create request retried by the client) deletes the extras. A described
        trial (a confirmation trial) whose record lacks its config is described from its params.json.
        Trials still waiting for the curves their workers draw (Ray may have ended those workers with the
        phase) are drawn here instead, so the phase ends at once."""
        self.phase_over = True
        for t in trials:
            if t.status != "unfinished" and not self.tracker.ended(self.key(t.trial_id)):
                params = t.params if t.params or self.describe is None else None
                self.end(t.trial_id, params, t.status, None)
        self.tracker.delete_duplicates()

    # ------------------------------------------------------------------------------ helpers
    def _record(self, trial_id: str, params: Optional[dict]) -> tuple:
        if trial_id not in self.records:
            if params is None:  # Ray's params.json in the trial folder holds the trial's config
                params = json.loads((self.exp_dir / trial_id / "params.json").read_text())
            if self.describe is None:
                run_params, tags, cfg = trial_record(self.space, params)
                name = None  # the tracker's default: "<strategy> <trial id>"
            else:
                run_params, tags, name = self.describe(trial_id, params)
                tags, cfg = {"phase": self.phase, **tags}, described_config(self.space, run_params)
            self.records[trial_id] = (run_params, tags, name, cfg)
        return self.records[trial_id]

    def _buffer(self, key: str, result: dict) -> None:
        if self.tracker.log_result(key, result):  # the first buffered: sent within SEND_S (or as it ends)
            self.background.later(SEND_S, self.tracker.send, key)
