"""The live view of a running search: a compact table every ~10 s (fed by `ray_backend.callbacks`).

Counts trials running, waiting at a rung, pending, finished, stopped early (at a rung), diverged and failed, shows the best
so far (by the search metric) with its key parameters and one line per running trial. Crashes and
failures are printed when they happen. Ray's own progress table is off (verbose=0).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Optional

from ..metrics import is_finite
from ..search.trials import classify, oom_reason
from .console import format_table, short_keys
from .formats import num


def live_status(trial) -> str:
    """running | waiting (at a rung) | pending | finished | stopped_early | diverged | failed, from a Ray Trial."""
    return classify(trial.status, trial.last_result or {}, live=True)


class LiveView:
    """Ray Tune callback methods (mixed into a `ray.tune.Callback` by `ray_backend.callbacks`; no Ray here). Prints the search's progress every `interval_s` seconds (and failures at once). Picklable."""

    def __init__(self, dim_keys: list[str], metric: str, mode: str, num_trials: int, interval_s: float = 10.0,
                 stream=None, label=None):
        self.dim_keys = list(dim_keys)
        self.label = label or (lambda config: "")  # trial config -> strategy label
        self.metric = metric
        self.mode = mode
        self.num_trials = num_trials
        self.interval_s = interval_s
        self._to_stderr = stream is sys.stderr
        self._stream = stream
        self._start = time.time()
        self._last_print = 0.0
        self.final_status: dict[str, str] = {}  # trial id -> Ray status at the end
        self._warned: set = set()  # (trial id, warning) already shown

    def __getstate__(self):  # Ray pickles callbacks into tuner.pkl: no stream
        state = dict(self.__dict__)
        state["_stream"] = None
        return state

    @property
    def stream(self):
        if self._stream is not None:
            return self._stream
        return sys.stderr if self._to_stderr else sys.stdout

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except (OSError, ValueError):
            pass

    def setup(self, **info):
        self._start = time.time()
        self._last_print = time.time()

    def on_step_end(self, iteration, trials, **info):
        # statuses as the loop left them: cleanup after an interruption (Ctrl-C) stops running trials as
        # TERMINATED, but they are unfinished and --resume continues them
        self._statuses = {t.trial_id: t.status for t in trials}
        now = time.time()
        if now - self._last_print >= self.interval_s:
            self._last_print = now
            self._print(self.render(trials))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        for text in filter(None, str(result.get("warnings") or "").split(" | ")):  # sent once by the worker
            if (trial.trial_id, text) not in self._warned:
                self._warned.add((trial.trial_id, text))
                self._print(f"  warning: {text}" if text.startswith("trial ") else
                            f"  warning: trial {trial.trial_id}: {text}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        if last.get("oom") == 1:
            self._print(f"  trial {trial.trial_id} failed: {oom_reason(last)}")
        elif last.get("user_error") == 1:
            self._print(f"  trial {trial.trial_id} failed (not retried): {last.get('fatal_error')}")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._print(f"  trial {trial.trial_id} crashed; retrying from its last checkpoint: "
                    f"{self._error(trial)}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print(f"  trial {trial.trial_id} failed: {self._error(trial)}")

    def on_experiment_end(self, trials, **info):
        last = getattr(self, "_statuses", {})
        self.final_status = {t.trial_id: (t.status if t.status in ("TERMINATED", "ERROR") and
                                          last.get(t.trial_id) in (None, "TERMINATED", "ERROR")
                                          else last.get(t.trial_id, t.status)) for t in trials}

    @staticmethod
    def _error(trial) -> str:
        path = getattr(trial, "error_file", None)
        try:
            if path:
                with open(path, encoding="utf-8", errors="replace") as fh:  # a damaged byte: still its line
                    lines = [line.strip() for line in fh if line.strip()]
                if lines:
                    shown = os.path.join(trial.path, os.path.basename(path)) if getattr(trial, "path", None) \
                        else path  # where it is synced to: the experiment directory
                    return f"{lines[-1][:300]} (traceback: {shown})"
        except OSError:
            pass
        return "see the trial's error.txt"

    def _score(self, trial) -> Optional[float]:
        v = (trial.last_result or {}).get(self.metric)
        return float(v) if is_finite(v) else None

    def render(self, trials) -> str:
        """The summary line, the best trial so far and one line per running trial."""
        kinds = [live_status(t) for t in trials]
        elapsed = int(time.time() - self._start)
        counts = {k: kinds.count(k) for k in ("running", "waiting", "pending", "finished", "stopped_early",
                                              "diverged", "failed")}
        if not counts["waiting"]:
            del counts["waiting"]  # shown while trials wait at a rung of synchronous halving
        not_created = max(0, self.num_trials - len(trials))
        counts["pending"] += not_created
        head = f"[{elapsed // 60:02d}:{elapsed % 60:02d}] " + " | ".join(
            f"{k.replace('_', ' ')} {n}" for k, n in counts.items())
        shorts = short_keys(self.dim_keys)
        scored = [(self._score(t), t) for t in trials if self._score(t) is not None]
        lines = [head]
        if scored:
            pick = max if self.mode == "max" else min
            score, best = pick(scored, key=lambda x: x[0])
            lines.append(f"  best {self.metric} {score:.4g} at {num((best.last_result or {}).get('epoch_equiv'), 3)}"
                         f" ee: trial {best.trial_id} {self.label(best.config or {})} {self._params(best, shorts)}")
        running = [t for t, k in zip(trials, kinds) if k == "running"]
        if running:
            rows = []
            for t in running:
                last = t.last_result or {}
                rows.append([t.trial_id, num(last.get("epoch_equiv"), 3), num(last.get(self.metric)),
                             self.label(t.config or {}), self._params(t, shorts)])
            table = format_table(["  running", "ee", self.metric, "strategy", "params"], [["  " + r[0], *r[1:]]
                                                                                         for r in rows])
            lines.append(table)
        return "\n".join(lines)

    def _params(self, trial, shorts) -> str:
        cfg = trial.config or {}
        return " ".join(f"{shorts[k]}={num(cfg[k])}" for k in self.dim_keys if k in cfg)
