"""`console`: the summary a search prints when it ends (the results table best first, the best configuration
last) and the verdict's table."""

import io
from pathlib import Path

from test_results import spec

from tune_hardbatch.console import format_table, print_summary, print_verdict, short_keys
from tune_hardbatch.trials import Trial

EXP = Path("/s/exp")


def trial(trial_id, status, val, **active):
    return Trial(trial_id, status, strategy="trim-linear" if active else "plain", active=active,
                 last={"val_top1": val, "test_top1": val - 1, "epoch_equiv": 4.0, "backprops": 72},
                 history=[{"test_top1": val + 2}, {"test_top1": val - 1}])


def summary(trials, best):
    out = io.StringIO()
    print_summary(trials, spec(), best, EXP / "results.csv", EXP, out)
    return out.getvalue()


def test_the_table_best_first_then_the_best_configuration_last_with_a_list_valued_parameter():
    best = trial("t2", "finished", 90.0, **{"optim.lr": 0.12345678, "trim.schedule": "linear", "trim.p_end": 0.5,
                                            "stepwise.fractions": "[0.5, 1.0]"})
    trials = [trial("t1", "finished", 80.0, **{"optim.lr": 0.1}), trial("t3", "stopped_early", 95.0),
              trial("t4", "failed", float("nan")), best]
    lines = summary(trials, best).splitlines()
    assert lines[1] == "results: 4 trials: 2 finished, 1 stopped early, 1 failed"
    assert lines[2].split() == ["trial", "status", "strategy", "lr", "schedule", "p_end", "fractions", "test", "top1",
                                "best", "ee", "backprops", "val_top1"]
    assert [line.split()[0] for line in lines[3:7]] == ["t2", "t1", "t3", "t4"]  # finished first, by val_top1
    assert lines[3].split() == ["t2", "finished", "trim-linear", "0.1235", "linear", "0.5", "0.5-1", "89", "92", "4",
                                "72", "90"]
    assert lines[5].split()[3:7] == ["-"] * 4 and lines[6].split()[-1] == "nan"  # inactive: "-"; a NaN metric
    assert lines[7] == f"results.csv: {EXP / 'results.csv'}"
    assert lines[8:] == ["best configuration (finished trial t2, trim-linear): val_top1 = 90",
                         "  optim.lr: 0.123457", "  trim.schedule: linear", "  trim.p_end: 0.5",
                         "  stepwise.fractions: [0.5, 1.0]",
                         f"  full config: {EXP / 'best_config.yaml'} (tune-hardbatch train {EXP / 'best_config.yaml'})"]


def test_no_best_trial_and_a_long_table():
    trials = [trial(f"t{i:02d}", "stopped_early", 50.0 + i) for i in range(33)]
    text = summary(trials, None)
    assert "t32" in text and "t00" not in text and "t02" not in text and "t03" in text  # the 30 best shown
    assert f"... 3 more in {EXP / 'results.csv'}" in text
    assert text.endswith("best configuration: none (no trial that did not fail reported a finite val_top1)\n")


def test_the_verdict_table_and_its_sentences():
    arm = {"arm": "plain", "is_baseline": True, "n": 3, "diffs": [], "test_top1": {"mean": 90.0, "ci95": 1.5},
           "convergence_epoch": {"mean": float("nan")}, "compute": {"epoch_equiv": 4.0, "samples_forward": 4600.0}}
    other = {**arm, "arm": "delta=0.5", "is_baseline": False, "n": 2, "test_top1": {"mean": 91.0, "ci95": float("nan")},
             "diffs": [{"baseline": "plain", "mean": 1.0, "ci95": 0.5}]}
    verdict = {"baselines": ["plain"], "arms": [arm, other], "source": "confirmation", "seeds": [1, 2, 3],
               "notes": ["a note"], "sentences": ["delta helps."]}
    out = io.StringIO()
    print_verdict(verdict, out)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("verdict (confirmation runs; seeds [1, 2, 3]; mean ± 95% t-interval")
    assert lines[3].split() == ["plain", "(base)", "3", "90.00", "±", "1.50", "base", "-", "4", "4600"]
    assert lines[4].split() == ["delta=0.5", "2", "91.00", "+1.00", "±", "0.50", "-", "4", "4600"]
    assert lines[5:] == ["  a note", "  delta helps."]


def test_tables_and_short_keys():
    assert short_keys(["optim.lr", "trim.p_end", "a.seed", "seed"]) == \
        {"optim.lr": "lr", "trim.p_end": "p_end", "a.seed": "a.seed", "seed": "seed"}
    assert format_table(["a", "bb"], [["xxx", "y"]]) == "a    bb\nxxx  y"
