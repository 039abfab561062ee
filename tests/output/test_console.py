"""`console`: the summary a search prints when it ends (the results table best first, the best configuration
last) and the verdict's table."""

import io
from pathlib import Path

from search_helpers import spec

from tune_hardbatch.output.console import format_table, print_summary, print_verdict, short_keys
from tune_hardbatch.search.results import best_trial
from tune_hardbatch.search.trials import Trial
from tune_hardbatch.verdict.comparisons import build_verdict

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
    assert lines[8:] == ["best configuration (finished trial t2, trim-linear): val_top1 = 90 at the full budget (among "
                         "2 trials that trained it)",
                         "  optim.lr: 0.123457", "  trim.schedule: linear", "  trim.p_end: 0.5",
                         "  stepwise.fractions: [0.5, 1.0]",
                         f"  full config: {EXP / 'best_config.yaml'} (tune-hardbatch train {EXP / 'best_config.yaml'})"]


def test_no_best_trial_and_a_long_table():
    trials = [trial(f"t{i:02d}", "stopped_early", 50.0 + i) for i in range(33)]
    text = summary(trials, None)
    assert "t32" in text and "t00" not in text and "t02" not in text and "t03" in text  # the 30 best shown
    assert f"... 3 more in {EXP / 'results.csv'}" in text
    assert text.endswith("best configuration: none (no trial that finished, was stopped early or interrupted "
                         "reported a finite val_top1)\n")


def test_when_none_finished_the_best_is_named_with_the_budget_it_was_compared_at():
    """The summary's best is best_config.yaml's: every trial at the highest budget all reached (2), not the
    one that went furthest, nor by its last value."""
    def stopped(trial_id, reports):
        history = [{"val_top1": v, "compute_equiv": c, "test_top1": v} for c, v in reports]
        return Trial(trial_id, "stopped_early", strategy="plain", last=history[-1], history=history)

    far = stopped("far", [(1.0, 60.0), (2.0, 70.0), (4.0, 95.0)])
    near = stopped("near", [(1.0, 65.0), (2.0, 80.0)])
    assert best_trial([far, near], spec()) is near
    text = summary([far, near], near)
    assert "val_top1 = 80 at 2 epoch-equivalents of compute, the highest budget all 2 compared trials reached" in text


def confirmed(values, converged=None):
    return [Trial(f"c{s}", "finished", "confirmation", seed=s,
                  last={"test_top1": v, "convergence_epoch": 3.0, "converged": (converged or {}).get(s, 1),
                        "epoch_equiv": 4.0, "samples_forward": 4600})
            for s, v in values.items()]


def test_the_verdict_table_fits_160_columns_with_one_line_of_words_per_primary_comparison():
    groups = {"plain": confirmed({1: 90.0, 2: 91.0, 3: 89.0}),
              "delta=0.5": confirmed({1: 92.0, 2: 93.0, 3: 91.2}, converged={2: 0}),
              "trim-linear": confirmed({1: 90.3, 2: 91.0, 3: 89.4})}
    verdict = build_verdict(groups, {"plain": "plain", "delta=0.5": "delta", "trim-linear": "trim"}, "confirmation",
                            [1, 2, 3], 4.0, 0.0, ["a note"], selected_on="val_top1", partial=True,
                            tuning={"mode": "joint", "sampler": "optuna TPE", "trials": {"plain": 3, "delta": 12},
                                    "finished": {"plain": 3, "delta": 10}})
    out = io.StringIO()
    print_verdict(verdict, out)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("verdict (partial: from the seeds that finished; confirmation runs;")
    assert lines[2].split()[:5] == ["arm", "seeds", "trials", "test", "top-1"]
    assert lines[3].split()[:6] == ["plain", "(base)", "3", "3", "90.00", "±"] and "base" in lines[3].split()
    assert lines[4].split()[:3] == ["delta=0.5", "3", "12"] and "helps" in lines[4] and "not conv. (1 of 3)" in lines[4]
    assert lines[5].split()[:3] == ["trim-linear", "3", "-"] and "unres." in lines[5]
    assert max(len(x) for x in lines[2:6]) <= 160  # the table: one line per arm within 160 columns
    assert lines[6] == "  Partial (partial: from the seeds that finished): the confirmation was interrupted."
    assert lines[7].startswith("  Arms chosen by val_top1 on validation data")
    assert lines[8].startswith("  Fixed design: 3 seeds per arm; Holm over the primary comparisons")
    assert lines[9].startswith("  Search trials per arm (optuna TPE): plain 3 (3 trained their whole budget), "
                               "delta=0.5 12 (10 trained their whole budget)") and "tuned unequally" in lines[9]
    assert lines[10] == "  a note"
    words = lines[11:]  # one line of words per primary comparison, the full sentences are report.md's
    assert len(words) == 2 and words[0].startswith("  delta=0.5 vs plain: helps: +")
    assert words[1].startswith("  trim-linear vs plain: is not shown to differ: ") and "could detect" in words[1]


def test_tables_and_short_keys():
    assert short_keys(["optim.lr", "trim.p_end", "a.seed", "seed"]) == \
        {"optim.lr": "lr", "trim.p_end": "p_end", "a.seed": "a.seed", "seed": "seed"}
    assert format_table(["a", "bb"], [["xxx", "y"]]) == "a    bb\nxxx  y"


def test_the_controls_studys_verdict_table_fits_160_columns():
    """Nine arms, three budget-matched runs and four comparison columns (the controls study's shape)."""
    import random

    rng = random.Random(0)
    fams = {"plain": "plain", "delta=1": "delta=1", "delta<1": "delta", "delta<1-random": "delta-random",
            "trim": "trim", "trim-random": "trim-random", "splits": "splits", "sb": "sb", "infobatch": "infobatch",
            "plain@7.47": "plain@budget", "plain@9.24": "plain@budget", "plain@9.72": "plain@budget"}
    groups = {a: confirmed({s: 60 + rng.gauss(0, 1.5) for s in range(1, 7)}, converged={1: 0}) for a in fams}
    verdict = build_verdict(groups, fams, "confirmation", list(range(1, 7)), 10.0, 0.0, [], selected_on="val_top1",
                            margin=1.0, arm_params={m: {"compute_budget": float(m[6:])} for m in fams if "@" in m},
                            matched={"infobatch": "plain@7.47", "sb": "plain@9.24", "splits": "plain@9.72"},
                            tuning={"mode": "arms", "sampler": "Optuna TPE", "trials": {a: 3 for a in fams}})
    out = io.StringIO()
    print_verdict(verdict, out)
    table = out.getvalue().splitlines()[2:2 + 1 + len(fams)]
    assert "vs random control" in table[0] or "vs random ctl" in table[0]
    assert max(len(line) for line in table) <= 160, max(table, key=len)
