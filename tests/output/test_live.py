"""`live`: the live view of a running search, fed Ray Trial-like objects (no Ray here)."""

import io
import pickle
from types import SimpleNamespace

from tune_hardbatch.output.live import LiveView, live_status


def ray_trial(trial_id, status, last=None, **config):
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=last, config=config, path=None)


TRIALS = [ray_trial("a", "RUNNING", {"val_top1": 70.0, "epoch_equiv": 1.5}, **{"optim.lr": 0.1, "flag": True}),
          ray_trial("b", "TERMINATED", {"val_top1": 90.0, "epoch_equiv": 4.0, "budget_done": 1},
                    **{"optim.lr": 0.05, "stepwise.fractions": "A-O"}),
          ray_trial("c", "TERMINATED", {"val_top1": 95.0, "epoch_equiv": 2.0}),
          ray_trial("d", "TERMINATED", {"oom": 1}), ray_trial("e", "ERROR"), ray_trial("f", "PENDING"),
          ray_trial("g", "TERMINATED", {"diverged": 1, "val_top1": float("nan")})]


def plain(config):
    return "plain"


def view(stream, num_trials=9):
    return LiveView(["optim.lr", "flag", "stepwise.fractions"], "val_top1", "max", num_trials, stream=stream,
                    label=plain)


def test_statuses_of_ray_trials():
    assert [live_status(t) for t in TRIALS] == ["running", "finished", "stopped_early", "failed", "failed", "pending",
                                                "diverged"]


def test_the_table_counts_shows_the_best_so_far_and_the_running_trials():
    lines = view(io.StringIO()).render(TRIALS).splitlines()
    assert lines[0].endswith("] running 1 | pending 3 | finished 1 | stopped early 1 | diverged 1 | failed 2")
    assert lines[1] == "  best val_top1 95 at 2 ee: trial c plain "  # stopped early, yet the best value so far
    assert lines[2].split() == ["running", "ee", "val_top1", "strategy", "params"]
    assert lines[3].split() == ["a", "1.5", "70", "plain", "lr=0.1", "flag=True"]


def test_failures_are_printed_when_they_happen_and_warnings_once():
    out = io.StringIO()
    live = view(out)
    live.on_trial_complete(0, TRIALS, ray_trial("d", "TERMINATED", {"oom": 1, "epoch_equiv": 1.0}))
    live.on_trial_complete(0, TRIALS, ray_trial("u", "TERMINATED", {"user_error": 1, "fatal_error": "bad key"}))
    for _ in range(2):
        live.on_trial_result(0, TRIALS, TRIALS[0], {"warnings": "slow disk | trial a: cache miss"})
    assert out.getvalue().splitlines() == [
        "  trial d failed: CUDA out of memory at epoch-equivalent 1: lower optim.batch_size or raise resources.gpu "
        "(not retried: the same settings run out again)",
        "  trial u failed (not retried): bad key", "  warning: trial a: slow disk", "  warning: trial a: cache miss"]


def test_final_statuses_keep_a_trial_that_ctrl_c_stopped_unfinished():
    live = view(io.StringIO())
    running = [ray_trial("a", "RUNNING"), ray_trial("b", "TERMINATED")]
    live.on_step_end(0, running)
    live.on_experiment_end([ray_trial("a", "TERMINATED"), ray_trial("b", "TERMINATED"), ray_trial("c", "ERROR")])
    assert live.final_status == {"a": "RUNNING", "b": "TERMINATED", "c": "ERROR"}


def test_the_view_pickles_without_its_stream():  # Ray pickles callbacks into its experiment state
    copy = pickle.loads(pickle.dumps(view(io.StringIO())))
    assert copy._stream is None and copy.label({}) == "plain"


def test_trials_paused_at_a_rung_are_counted_as_waiting():
    paused = ray_trial("w", "PAUSED", {"val_top1": 60.0, "epoch_equiv": 4.0}, **{"optim.lr": 0.2, "flag": False})
    assert live_status(paused) == "waiting"
    head = view(io.StringIO()).render([*TRIALS, paused]).splitlines()[0]
    assert head.endswith("] running 1 | waiting 1 | pending 2 | finished 1 | stopped early 1 | diverged 1 | failed 2")
