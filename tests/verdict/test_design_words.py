"""`design_words`: the design line, the variance split's rows and the seeds a fixed design would need."""

from tune_hardbatch.verdict.design_words import design_line, fixed_design_rows, variance_rows

NAN = float("nan")


def test_the_design_line_says_fixed_or_sequential():
    fixed = {"design": {"seeds": [1, 2, 3], "looks": [3], "margin": None, "sequential": False}}
    assert design_line(fixed).startswith("Fixed design: 3 seeds per arm; Holm over the primary comparisons")
    seq = {"design": {"seeds": [1, 2, 3, 4, 5, 6], "looks": [3, 6], "margin": 1.0, "sequential": True, "judged": 2}}
    assert design_line(seq).startswith("Sequential design: looks at 3, 6 seeds (judged: 2), resolution ±1 points")
    assert design_line({}) == ""


def test_variance_rows_show_each_arms_split_and_say_when_sampling_is_all_of_it():
    split = {"runs": 6, "examples": 10000, "total": 0.5, "sampling": 0.1, "model": 0.4, "sampling_share": 0.2,
             "test_set_se": 0.39}
    arms = [{"arm": "plain", "variance": split}, {"arm": "x", "variance": {**split, "sampling_share": 1.2}},
            {"arm": "none", "variance": None}, {"arm": "nan", "variance": {**split, "total": NAN}}]
    rows = variance_rows({"arms": arms})
    assert rows[0] == ["plain", "6", "0.71", "20%", "0.63", "±0.39"]
    assert rows[1][3] == "120% (all: none left to the model)" and len(rows) == 2


def test_fixed_design_rows_only_for_primary_comparisons_with_a_margin():
    c = {"name": "trim vs plain", "primary": True, "decided_sd": 0.86, "fixed_seeds": 11.0}
    verdict = {"design": {"margin": 1.0}, "comparisons": 1,
               "arms": [{"diffs": [c, {**c, "name": "x vs plain", "primary": False}]}]}
    assert fixed_design_rows(verdict) == [["trim vs plain", "0.86", "11"]]
    assert fixed_design_rows({**verdict, "design": {"margin": None}}) == []
