"""`history`: a search's trial directories on disk as records, finished or still running."""

import json

import yaml
from search_helpers import BASE, SPACE

from tune_hardbatch.search.history import find_experiment, gpu_fraction, load_trials, read_statuses


def write_trial(exp, trial_id, params, lines, cut=""):
    d = exp / trial_id
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps(params))
    (d / "result.json").write_text("".join(json.dumps({**r, "config": params}) + "\n" for r in lines) + cut)


def test_a_running_search_read_while_a_trial_writes_its_result(tmp_path):
    exp = tmp_path / "s"
    (exp / "t1").mkdir(parents=True)
    (exp / "search_space.yaml").write_text(yaml.safe_dump({"base": {**BASE, "epochs": 4}, "space": SPACE,
                                                           "search": {"scheduler": "fifo"}, "resources": {"gpu": 0.25}}))
    write_trial(exp, "t0", {"optim.lr": 0.1, "trim.schedule": "none", "trim.p_end": 0.5}, [{"val_top1": 50.0}],
                cut='{"val_top1": 6')  # a report half written
    write_trial(exp, "t2", {"optim.lr": 0.1, "trim.schedule": "linear", "trim.p_end": 0.5,
                            "stepwise.fractions": "[0.5, 1.0]"}, [{"val_top1": 40.0}, {"val_top1": 45.0}])
    t0, t2 = load_trials(exp)  # t1 has no result.json yet
    assert (t0.trial_id, t0.status, t0.history, t0.last) == ("t0", "running", [{"val_top1": 50.0}], {"val_top1": 50.0})
    assert t0.strategy == "plain" and t0.active == {"optim.lr": 0.1, "trim.schedule": "none"}  # p_end not applied
    assert t2.strategy == "trim-linear+splits=0.5-1" and t2.param("stepwise.fractions") == [0.5, 1.0]
    assert t2.final("val_top1") == 45.0 and t2.best("val_top1") == 45.0
    assert gpu_fraction(exp) == 0.25 and find_experiment("s", str(tmp_path)) == exp.resolve()


def test_statuses_come_from_results_csv_and_a_trial_missing_there_is_unfinished(tmp_path):
    exp = tmp_path / "s"
    for trial_id in ("a", "b"):
        write_trial(exp, trial_id, {"optim.lr": 0.1}, [{"val_top1": 1.0}])
    (exp / "results.csv").write_text("trial_id,status,strategy\na,finished,plain\n")
    assert read_statuses(exp / "results.csv") == {"a": "finished"} and read_statuses(exp / "none.csv") == {}
    a, b = load_trials(exp)
    assert (a.status, b.status, a.strategy) == ("finished", "unfinished", "?")  # no saved space: no label
    confirm = load_trials(exp, {"a": "diverged"}, "confirmation", missing="unfinished")
    assert [(t.status, t.phase) for t in confirm] == [("diverged", "confirmation"), ("unfinished", "confirmation")]
    assert gpu_fraction(exp) == 0.0
