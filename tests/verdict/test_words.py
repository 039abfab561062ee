"""`verdict_text`: the verdict's cells and lines (the sentences as a whole: test_verdict.py)."""

from tune_hardbatch.verdict.words import (
    comparison_cell,
    convergence_cell,
    gain_lines,
    savings_cell,
    selection,
    tuning_line,
)

NAN = float("nan")


def comp(decision, **kw):
    return {"mean": 0.4, "ci95": 1.2, "n": 3, "min_detectable": 2.345, "decision": decision, "decided_mean": 0.4,
            "decided_n": 3, "decided_df": 2, "low": -0.8, "high": 1.6, "level": 0.95, "error": "own", **kw}


def test_comparison_cells():
    assert comparison_cell(comp("helps", low=0.1)) == "+0.40 helps [+0.10, +1.60] (95%, n 3)"
    assert comparison_cell(comp("unresolved")) == "+0.40 unresolved [-0.80, +1.60] (95%, n 3)"
    assert comparison_cell(comp("equivalent", level=0.9, low=-0.2, high=0.9)) == \
        "+0.40 equiv. [-0.20, +0.90] (90%, n 3)"
    assert comparison_cell(comp("exploratory", mean=-0.5)) == "-0.50 expl. [-0.80, +1.60] (95%, n 3)"
    assert comparison_cell(comp("helps"), wide=False) == "+0.40 helps"
    assert comparison_cell(comp("not judged", n=1)) == "not judged (1 paired seed)"
    assert comparison_cell(None) == "-"


def test_censored_cells():
    assert convergence_cell({"mean": 4.0, "ci95": 0.5, "converged": 2, "n": 3}) == "not conv. (1 of 3)"
    assert convergence_cell({"mean": 4.0, "ci95": 0.5, "converged": 3, "n": 3}) == "4.00 ± 0.50"
    assert savings_cell({"mean": NAN, "ci95": NAN, "reached": 0, "n": 2, "saving_pct": NAN}) == "not reached (2 of 2)"
    assert savings_cell({"mean": 0.75, "ci95": 0.05, "reached": 2, "n": 2, "saving_pct": 25.0}) == "75% ± 5%"
    assert savings_cell(None) == "-"


def test_selection_and_tuning_lines():
    base = {"source": "confirmation", "seeds": [1, 2]}
    assert selection({**base, "selected_on": "val_top1"}).startswith("Arms chosen by val_top1 on validation data")
    assert "at one budget every compared trial reached" in selection({**base, "selected_on": "val_top1"})
    assert "biased upward" in selection({**base, "selected_on": "test_top1"})
    assert selection({**base, "source": "grid"}) == "The grid's own trials: every arm with every seed; nothing selected."
    arms = [{"arm": "plain", "search_trials": 6, "search_finished": None}, {"arm": "x", "search_trials": None}]
    assert tuning_line({"tuning": None, "arms": arms}) == ""
    assert tuning_line({"tuning": {"mode": "arms", "sampler": "random"}, "arms": arms}) == \
        "Search trials per arm (random): plain 6. Each arm was searched alike: its own sampler and early stopper."


def test_an_older_verdict_json_still_renders_without_claiming_holm():
    from tune_hardbatch.verdict.words import to_markdown

    arm = {"arm": "plain", "family": "plain", "is_baseline": True, "n": 2, "diffs": [], "test_top1": {"mean": 90.0},
           "convergence_epoch": {"mean": 5.0, "ci95": None, "n": 2}, "convergence_change": {"mean": None},
           "compute": {"epoch_equiv": 4.0}}
    other = {**arm, "arm": "delta=0.5", "family": "delta", "is_baseline": False,
             "diffs": [{"baseline": "plain", "mean": 1.0, "ci95": 0.5}]}
    old = {"source": "confirmation", "seeds": [1, 2], "baseline": "plain", "baselines": ["plain"], "arms": [arm, other],
           "notes": [], "sentences": ["delta helps."], "budget": 4.0}
    md = to_markdown(old)
    assert "| delta=0.5 | 2 | 90.00 | +1.00 ± 0.50 | 5.00 |" in md  # the raw interval, no decision recorded
    assert "Holm-corrected" not in md and "before Holm's correction" in md


def test_the_budget_matched_comparison_in_words_and_its_column():
    from tune_hardbatch.verdict.words import column, comparison_sentence

    verdict = {"baseline": "plain", "budget": 10.0, "comparisons": 3, "partial": False}
    arm = {"arm": "sb=0.5", "family": "sb", "convergence_epoch": {}}
    c = comp("unresolved", baseline="plain@7.46", baseline_family="plain@budget", compute_budget=7.46)
    s = comparison_sentence(arm, c, verdict, first=False)
    assert s.startswith("sb (sb=0.5) against plain at equal compute (plain@7.46: plain SGD trained for 7.46 "
                        "compute-equivalents, its schedule fully decayed within them) is not shown to differ: +0.40 "
                        "points of test top-1 (95% CI [-0.80, +1.60]; own paired sd, 2 df; could detect 2.3 or more; "
                        "3 paired seeds); Holm over 3 primary comparisons at 5% familywise.")
    assert "epoch-equivalents" not in s and "MDE" not in s
    assert comparison_sentence(arm, {**c, "decision": "not judged", "n": 1}, verdict, first=False) == \
        ("sb (sb=0.5) is not judged against plain at equal compute (plain@7.46: plain SGD trained for 7.46 "
         "compute-equivalents, its schedule fully decayed within them) (1 paired seed).")
    assert column("plain@budget") == "plain at equal compute" and column("delta=1") == "delta=1"


def test_the_gain_of_one_more_trial_with_or_without_a_resolution():
    gain = {"trials": 4, "budget": 1.5, "full": False, "gain": 0.0421, "gain_low": 0.0, "gain_high": 0.31,
            "metric": "val_loss", "resolution": NAN, "against": None}
    arms = [{"arm": "trim", "tuning_gain": gain}, {"arm": "old"},  # a verdict.json written before: nothing
            {"arm": "sb", "tuning_gain": {**gain, "metric": "val_top1", "gain": NAN}}]
    assert gain_lines({"arms": arms}) == [
        "One more trial of trim would gain about 0.042 of val_loss (95% bootstrap band 0-0.31; the last step of "
        "its tuning curve over 4 trials at 1.5 epoch-equivalents).",
        "One more trial of sb: no estimate of its gain (fewer than 2 trials with a value)."]
