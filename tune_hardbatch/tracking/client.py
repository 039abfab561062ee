"""MLflow client side of a search: the parent and child runs, every call guarded (training never stops).

The trial-to-run mapping is kept in `<experiment dir>/mlflow_runs.json` (written atomically), so resumes
and retries reuse a trial's run. Its keys are `trial_key`s: a search trial's id, or `confirm/<id>` for a
trial of the confirmation phase (a second Tune experiment, whose ids may repeat the search's). If the
tracking server goes away mid-search, training goes on: a warning says so once, and `report NAME --sync`
later uploads whatever is missing.

A trial's run costs the store few transactions: its params wait for its first results, buffered and sent
together within `SEND_S` (`log_result`, `send`), the last ones with its status tag when it ends (`end_trial`);
its artifacts go straight to its run's artifact store, and `set_status` leaves an ended run alone.

The MLflow UI: the experiment is tagged as a model-training one (`mlflow.experimentKind`, what the UI's
own kind selector writes and UIs without 3.17's per-browser GenAI / Model training switch read), child
runs are named "<strategy> <trial id>", and `ui_url` opens the experiment on its runs in 3.17 too
(`?workflowType=machine_learning`: 3.17 decides by that switch, default GenAI, not by the tag)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..files import read_json
from ..output.logs import tool_logger
from ..search.prepare.reachable import unusable_store
from .records import metrics_of, param_text

MAP_FILE = "mlflow_runs.json"
DIRECT_STORES = {"sqlite", "postgresql", "mysql", "mssql", "file"}  # URI schemes MLflow writes in-process
MAP_SAVE_S = 2.0  # the mapping is rewritten whole: at most this often (every trial would be O(trials^2))
# a trial's results wait this long to go out in one log_batch: a short trial's few reports (and a long one's
# last report with its status) are one store transaction, not one each; a person watching sees them 1 s late
SEND_S = 1.0
MAX_METRICS, MAX_PARAMS = 900, 100  # per log_batch: MLflow takes 1000 metrics, 100 params, 1000 values in all
VERDICT_FILE = "verdict.json"  # as verdict.comparisons.VERDICT_FILE: the verdict the parent run holds (`log_verdict`)
KIND_TAG, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"  # MLflow's own tag and value
NOTE_TAG = "mlflow.note.content"  # a run's description (Markdown), shown on its overview page
KEY_TAG = "trial_key"  # a child run's key in the mapping (search and confirmation trial ids may collide)
UI_QUERY = "workflowType=machine_learning"  # MLflow 3.17's UI: the model-training view, not GenAI's
PHASE_DIRS = {"search": "", "confirmation": "confirm"}  # a phase's trials in the mapping: "<dir>/<trial id>"
STEP_KEY = "backprops"  # metrics are logged at step = back-propagations
STATUS_TO_RUN = {"finished": "FINISHED", "stopped_early": "FINISHED", "diverged": "FAILED", "failed": "FAILED",
                 "unfinished": "KILLED"}

log = tool_logger(__name__)


def quiet_client_env() -> None:
    """Fail fast instead of retrying for minutes when a server is gone; no sqlite set-up chatter; no
    "View run ... at" lines on stdout per ended run (they would follow the best configuration)."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


def check_experiment(uri: str, name: str) -> None:
    """A tracking experiment of that name that was deleted (MLflow keeps it, and refuses new runs in it)
    is one error line before Ray starts, not a tracking failure in the middle of the search."""
    quiet_client_env()
    from mlflow.tracking import MlflowClient

    try:
        exp = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    except Exception as exc:  # noqa: BLE001 - an unusable store is the same mistake as an unreachable one
        raise unusable_store(uri, name, exc) from None
    if exp is not None and exp.lifecycle_stage == "deleted":
        raise UserError("tracking.experiment", f"experiment {name!r} is deleted in {uri}; restore it "
                        f"(mlflow experiments restore --experiment-id {exp.experiment_id}) or choose another "
                        "tracking.experiment")


def trial_key(trial_id: str, phase: str = "search") -> str:
    """A trial's key in the mapping: its id in the search, "confirm/<id>" in the confirmation phase."""
    prefix = PHASE_DIRS.get(phase, phase)
    return f"{prefix}/{trial_id}" if prefix else trial_id


class SearchTracker:
    """Parent and child runs of one search; every MLflow call is guarded so training never stops."""

    def __init__(self, uri: str, experiment: str, exp_dir, artifact_location: Optional[str] = None,
                 log_checkpoint: bool = False):
        quiet_client_env()
        from mlflow.tracking import MlflowClient

        self.uri, self.experiment_name = uri, experiment
        self.exp_dir = Path(exp_dir)
        self.client = MlflowClient(tracking_uri=uri)
        self.artifact_location = artifact_location
        self.log_checkpoint = log_checkpoint
        self.mapping = self._load_mapping()
        # a search this driver started: no earlier driver can have made its child runs, so none is looked for
        self.fresh = self.mapping["parent"] is None
        self._saved_at, self._unsaved = 0.0, False
        self._ended = set(self.mapping.get("ended", []))  # `mapping["ended"]`, for lookups
        self.down = False
        self.logged_steps: dict[str, set] = {}  # running trials' runs -> steps MLflow has or will get
        self.unsent: dict[str, list] = {}  # run -> metrics buffered by `log_result` until `send`
        self.unsent_params: dict[str, list] = {}  # run -> its params, sent with its first metrics
        self.artifact_repos: dict[str, object] = {}  # run made here -> its artifact store (no get_run to find it)
        self.ended_as: dict[str, str] = {}  # trial key -> the status this tracker ended its run with
        self.dataset: Optional[dict] = None  # `records.dataset_record`: logged as each trial run's input
        # a create request retried by MLflow's REST client can make a run twice; a store written here cannot
        self.retries = uri.split(":", 1)[0].split("+")[0] not in DIRECT_STORES

    # ----------------------------------------------------------------------------------- mapping
    def _load_mapping(self) -> dict:
        path = self.exp_dir / MAP_FILE  # damaged: one line (a fresh mapping would make every run twice)
        mapping = read_json(path) if path.exists() else {"trials": {}}
        if not isinstance(mapping, dict) or not isinstance(mapping.get("trials"), dict):
            raise UserError(str(path), "is not the trial-to-run mapping this tool writes; it may be damaged")
        return {"tracking_uri": self.uri, "experiment_id": None, "parent": None, **mapping}

    def _save_mapping(self, now: bool = False) -> None:
        """Written whole (atomically) at most every `MAP_SAVE_S`, unless `now`; `flush` writes the rest. A
        driver killed in between loses at most that much of it: a resumed driver finds those trials' runs by
        their tags (`_child_runs`), and uploads the artifacts of runs it does not know ended again."""
        self._unsaved = True
        if not now and time.monotonic() - self._saved_at < MAP_SAVE_S:
            return
        path = self.exp_dir / MAP_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.mapping, indent=1))
        os.replace(tmp, path)
        self._saved_at, self._unsaved = time.monotonic(), False

    def flush(self) -> None:
        """The mapping on disk as it is now."""
        if self._unsaved:
            self._save_mapping(now=True)

    # ----------------------------------------------------------------------------------- guards
    def _guard(self, what: str, fn, *args, **kwargs):
        if self.down:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any tracking failure must not stop training
            self.down = True
            self.flush()  # what was made so far, for `report --sync`
            log.warning("MLflow tracking at %s failed while %s (%s: %s); training goes on, and `tune-hardbatch report "
                        "%s --sync` uploads what is missing later", self.uri, what, type(exc).__name__,
                        str(exc).splitlines()[0][:160] if str(exc) else "", self.exp_dir)
            return None

    # ----------------------------------------------------------------------------------- search
    def start(self, search_name: str, tags: dict, params: dict, space_file: Optional[Path]) -> None:
        """Create the experiment (once) and the parent run, or reuse them on resume."""
        self._guard("starting the search", self._start, search_name, tags, params, space_file)

    def _start(self, search_name, tags, params, space_file):
        if self.mapping["parent"] is None:
            exp = self.client.get_experiment_by_name(self.experiment_name)
            exp_id = exp.experiment_id if exp else self.client.create_experiment(
                self.experiment_name, artifact_location=self.artifact_location, tags={KIND_TAG: TRAINING_KIND})
            if exp is not None:
                self._mark_training(exp)
            parent = self.client.create_run(exp_id, run_name=search_name,
                                            tags={**tags, "tune_hardbatch.kind": "search"})
            self.mapping.update(experiment_id=exp_id, parent=parent.info.run_id)
            self._save_mapping(now=True)
            from mlflow.entities import Param

            self.client.log_batch(parent.info.run_id, params=[Param(k, param_text(v)) for k, v in params.items()])
            if space_file is not None and space_file.is_file():
                self.client.log_artifact(parent.info.run_id, str(space_file))
        else:
            self._mark_training(self.client.get_experiment(self.mapping["experiment_id"]))
            self.client.update_run(self.mapping["parent"], status="RUNNING")

    def _mark_training(self, exp) -> None:
        """An existing experiment without a kind tag gets `TRAINING_KIND` (a kind someone chose stays)."""
        if KIND_TAG not in (exp.tags or {}):
            self.client.set_experiment_tag(exp.experiment_id, KIND_TAG, TRAINING_KIND)

    def ui_url(self, server: Optional[str] = None) -> Optional[str]:
        """The link that opens this search's experiment on its runs, as a model-training experiment: MLflow
        3.17's UI chooses between its GenAI overview and the training runs per browser (the GenAI / Model
        training switch, default GenAI, or `?workflowType=`), not from the experiment's kind tag.
        `server`: the UI's address when the tracking URI is not one (e.g. `mlflow ui` on a sqlite store)."""
        base = server or (self.uri if self.uri.startswith(("http://", "https://")) else None)
        exp_id = self.mapping.get("experiment_id")
        if base is None or exp_id is None:
            return None
        return f"{base.rstrip('/')}/#/experiments/{exp_id}?{UI_QUERY}"

    # ----------------------------------------------------------------------------------- trials
    def trial_run(self, key: str, params: dict, tags: dict, run_name: Optional[str] = None) -> Optional[str]:
        """The trial's child run (`key`: its `trial_key`): reused if the mapping has it, created (nested)
        otherwise, named `run_name` (default "<strategy tag> <trial id>")."""
        run_id = self.mapping["trials"].get(key)
        if run_id is not None:
            return run_id
        return self._guard(f"creating the run of trial {key}", self._create_trial_run, key, params, tags,
                           run_name)

    def _create_trial_run(self, key, params, tags, run_name):
        """The trial's child run: one that an earlier driver made (killed before it saved the mapping) is
        reused, and a duplicate made by a retried request is deleted, so a trial has one run."""
        from mlflow.entities import Param

        trial_id = key.rpartition("/")[2]
        found = [] if self.fresh else self._child_runs(key, trial_id)
        if found:
            run_id = found[0].info.run_id
        else:
            name = run_name or (f"{tags['strategy']} {trial_id}" if tags.get("strategy") else trial_id)
            info = self.client.create_run(self.mapping["experiment_id"], run_name=name, tags={
                "mlflow.parentRunId": self.mapping["parent"], "trial_id": trial_id, KEY_TAG: key,
                "status": "running", **tags}).info
            run_id = info.run_id
            self.logged_steps[run_id] = set()  # new: no history to read
            self.artifact_repos[run_id] = _artifact_repo(info.artifact_uri, self.uri)
        for extra in found[1:]:
            self.client.delete_run(extra.info.run_id)
        self.mapping["trials"][key] = run_id
        self._save_mapping()
        self.unsent_params[run_id] = [Param(k, param_text(v)) for k, v in params.items()]
        if self.dataset is not None:
            self._log_dataset(run_id)
        return run_id

    def _log_dataset(self, run_id: str) -> None:
        """The search's data as the run's MLflow input (the runs table's Dataset column), context training."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        self.client.log_inputs(run_id, datasets=[DatasetInput(Dataset(**self.dataset),
                                                              tags=[InputTag("mlflow.data.context", "training")])])

    def delete_duplicates(self) -> None:
        """After a phase, one paged query over this search's child runs: a trial's run that a retried create
        request made twice keeps the one the mapping names; the others are deleted. Only where requests are
        retried (`retries`: a tracking server): the query reads every run's data, ~10 ms a run."""
        if self.retries:
            self._guard("checking for duplicate runs", self._delete_duplicates)
        self.flush()

    def _delete_duplicates(self) -> None:
        mapped, token = set(self.mapping["trials"].values()), None
        while True:
            page = self.client.search_runs([self.mapping["experiment_id"]], max_results=1000, page_token=token,
                                           filter_string=f"tags.`mlflow.parentRunId` = '{self.mapping['parent']}'")
            for run in page:
                key = run.data.tags.get(KEY_TAG)
                if key in self.mapping["trials"] and run.info.run_id not in mapped:
                    self.client.delete_run(run.info.run_id)
            token = page.token
            if not token:
                return

    def _child_runs(self, key: str, trial_id: str) -> list:
        """This search's child runs of a trial, oldest first (a run without a `KEY_TAG` tag: by its trial_id tag)."""
        runs = self.client.search_runs(
            [self.mapping["experiment_id"]], max_results=10, order_by=["attributes.start_time ASC"],
            filter_string=f"tags.trial_id = '{trial_id}' and tags.`mlflow.parentRunId` = '{self.mapping['parent']}'")
        return [r for r in runs if r.data.tags.get(KEY_TAG, r.data.tags.get("trial_id")) == key]

    def log_result(self, key: str, result: dict) -> bool:
        """Buffer one report at step = backprops, once per step (a step re-reported after a restore is
        skipped); `send` logs what is buffered. True when the run had nothing buffered before: the caller
        then arranges a `send` within `SEND_S`."""
        run_id = self.mapping["trials"].get(key)
        if run_id is None or self.down:
            return False
        seen = self.logged_steps.get(run_id)
        if seen is None:  # first result of this run in this driver: what an earlier driver logged
            history = self._guard("reading a metric history", self.client.get_metric_history, run_id, STEP_KEY)
            seen = self.logged_steps[run_id] = {int(m.step) for m in history or []}
        step = int(result.get(STEP_KEY, 0))
        if step in seen or self.down:
            return False
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        first = not self.unsent.get(run_id)
        self.unsent.setdefault(run_id, []).extend(Metric(k, v, now, step) for k, v in metrics_of(result).items())
        seen.add(step)
        return first

    def send(self, key: str) -> None:
        """Log the trial's buffered metrics (one log_batch per `MAX_METRICS`), and its params the first time."""
        run_id = self.mapping["trials"].get(key)
        if run_id is not None and (self.unsent.get(run_id) or self.unsent_params.get(run_id)):
            self._guard(f"logging metrics of trial {key}", self._send, run_id)

    def _send(self, run_id: str, tags: list = ()) -> None:
        metrics, params = self.unsent.pop(run_id, []), self.unsent_params.pop(run_id, [])
        if len(params) > MAX_PARAMS:  # more than one batch holds: on their own, in batches of their own
            for i in range(0, len(params), MAX_PARAMS):
                self.client.log_batch(run_id, params=params[i : i + MAX_PARAMS])
            params = []
        for i in range(0, max(len(metrics), 1), MAX_METRICS):
            self.client.log_batch(run_id, metrics=metrics[i : i + MAX_METRICS], params=params if i == 0 else [],
                                  tags=tags if i == 0 else [])

    def end_trial(self, key: str, status: str, artifacts: list = ()) -> None:
        run_id = self.mapping["trials"].get(key)
        if run_id is None:
            return
        self._guard(f"ending the run of trial {key}", self._end_run, run_id, status, artifacts)
        self.logged_steps.pop(run_id, None)
        self.unsent.pop(run_id, None)
        self.unsent_params.pop(run_id, None)
        self.artifact_repos.pop(run_id, None)
        if not self.down:
            self.ended_as[key] = status
        if not self.down and key not in self._ended:
            self._ended.add(key)
            self.mapping.setdefault("ended", []).append(key)  # its artifacts are there (a resumed driver checks)
            self._save_mapping()

    def ended(self, key: str) -> bool:
        """Whether the trial's run was ended with its artifacts (by this driver or an earlier one)."""
        return key in self._ended

    def _end_run(self, run_id, status, artifacts):
        from mlflow.entities import RunTag

        self._send(run_id, tags=[RunTag("status", status)])  # the last metrics and the status: one batch
        repo = self.artifact_repos.get(run_id)
        for path in map(Path, artifacts):
            if path.is_dir():  # a checkpoint directory
                self.client.log_artifacts(run_id, str(path), artifact_path="checkpoint")
            elif path.exists() and repo is not None:
                repo.log_artifact(str(path))
            elif path.exists():
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, status=STATUS_TO_RUN.get(status, "FINISHED"))

    def set_status(self, key: str, status: str) -> None:
        """The final status of a trial's run (from results.csv): tag and run state; nothing for a run this
        tracker ended with that status."""
        run_id = self.mapping["trials"].get(key)
        if run_id is not None and self.ended_as.get(key) != status:
            self._guard(f"setting the status of trial {key}", self._set_status, run_id, status)

    def _set_status(self, run_id, status):
        self.client.set_tag(run_id, "status", status)
        self.client.set_terminated(run_id, status=STATUS_TO_RUN.get(status, "FINISHED"))

    # ----------------------------------------------------------------------------------- verdict
    def log_verdict(self, verdict: dict, files: list = ()) -> None:
        """The verdict on the parent run: per arm metrics (`records.verdict_metrics`), the description
        (`mlflow.note.content`: the verdict's sentences and table in Markdown), and `files` as artifacts
        (verdict.json, report.md, plots). Again on resume: values MLflow holds already are not re-logged."""
        parent = self.mapping["parent"]
        if parent is not None:
            self._guard("logging the verdict", self._log_verdict, parent, verdict, files)

    def _log_verdict(self, parent, verdict, files):
        from mlflow.entities import Metric, RunTag

        from .records import verdict_metrics, verdict_note, verdict_tags

        have = self.client.get_run(parent).data.metrics
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in verdict_metrics(verdict).items() if have.get(k) != v]
        tags = [RunTag(k, v) for k, v in {**verdict_tags(verdict), NOTE_TAG: verdict_note(verdict)}.items()]
        for i in range(0, max(len(metrics), 1), MAX_METRICS):
            self.client.log_batch(parent, metrics=metrics[i : i + MAX_METRICS], tags=tags if i == 0 else [])
        for path in map(Path, files):
            if path.is_file():
                self.client.log_artifact(parent, str(path))

    # ----------------------------------------------------------------------------------- end
    def finish(self, artifacts: list, status: str = "FINISHED") -> None:
        for key, run_id in list(self.mapping["trials"].items()):
            if self.unsent.get(run_id):
                self.send(key)
        self.flush()
        parent = self.mapping["parent"]
        if parent is None:
            return
        self._guard("finishing the search", self._finish, parent, artifacts, status)

    def _finish(self, parent, artifacts, status):
        for path in artifacts:
            if path and Path(path).exists():
                self.client.log_artifact(parent, str(path))
        self.client.set_terminated(parent, status=status)


def _artifact_repo(artifact_uri: str, tracking_uri: str):
    """The artifact store of a run MLflow just created (what `MlflowClient.log_artifact` finds with a
    `get_run` per run); None where MLflow cannot make one from the URI alone (the client then looks)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        return get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)
    except Exception:  # noqa: BLE001 - e.g. a scheme that needs the run: client.log_artifact finds it
        return None
