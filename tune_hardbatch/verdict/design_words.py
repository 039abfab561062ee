"""The confirmation design's words (`words.py` renders them): how the seeds were spent (`design_line`), what
more seeds can and cannot buy (`variance_rows`: Jordan 2024's split per arm) and the seeds a fixed design
would need for the same resolution (`fixed_design_rows`). Pure text."""

from __future__ import annotations

from ..metrics import is_finite


def design_line(verdict: dict) -> str:
    """How the seeds were spent: a fixed design, or the looks of a sequential one and where each stopped."""
    d = verdict.get("design") or {}
    if not d:
        return ""
    if not d.get("sequential"):
        eq = f"; equivalence within ±{d['margin']:g} points (two one-sided tests)" if d.get("margin") else ""
        return (f"Fixed design: {len(d['seeds'])} seed{'s' * (len(d['seeds']) != 1)} per arm; Holm over the primary comparisons at "
                f"5% familywise{eq}.")
    return (f"Sequential design: looks at {', '.join(str(n) for n in d['looks'])} seeds (judged: {d['judged']}), "
            f"resolution ±{d['margin']:g} points; O'Brien-Fleming-type Lan-DeMets alpha spending on t quantiles, "
            "Holm over the primary comparisons at 5% familywise; each comparison stops when its repeated interval "
            "excludes 0 or lies within the resolution, and what is left at the last look is unresolved.")


VARIANCE_HEAD = ["arm", "runs", "seed-to-seed sd", "test-set sampling share", "model sd", "fixed test set se"]


def variance_rows(verdict: dict) -> list[list[str]]:
    """Per arm with per-example results (`variance.variance_split`): its seed-to-seed sd, the share of its
    variance that is test-set sampling, the sd of its model's true accuracy, the fixed test set's se."""
    rows = []
    for a in verdict["arms"]:
        v = a.get("variance")
        if not v or not is_finite(v.get("total")) or v["total"] <= 0:
            continue
        share = v["sampling_share"]
        rows.append([a["arm"], str(v["runs"]), f"{v['total'] ** 0.5:.2f}",
                     f"{100 * share:.0f}%" + (" (all: none left to the model)" if share >= 1 else ""),
                     f"{v['model'] ** 0.5:.2f}", f"±{v['test_set_se']:.2f}"])
    return rows


VARIANCE_NOTE = ("Per arm, its runs' per-example results split the seed-to-seed variance of test top-1 (points) into "
                 "test-set sampling (each test example a coin flip of its own: a larger test set shrinks it in every "
                 "run) and the variance of the model's true accuracy across seeds (Jordan 2024). More seeds average "
                 "both; what no number of seeds removes is the fixed test set's own error on the arm's mean "
                 "(its se).")


def fixed_design_rows(verdict: dict) -> list[list[str]]:
    """Per primary comparison, the seeds a fixed design would need to resolve the margin at its paired sd."""
    if not (verdict.get("design") or {}).get("margin"):
        return []
    return [[c["name"], f"{c['decided_sd']:.2f}", f"{c['fixed_seeds']:.0f}"] for a in verdict["arms"]
            for c in a["diffs"] if c.get("primary") and is_finite(c.get("fixed_seeds"))
            and is_finite(c.get("decided_sd"))]


def fixed_design_note(verdict: dict) -> str:
    d = verdict["design"]
    return (f"Per primary comparison, the seeds per arm a fixed design would need for a difference of "
            f"{d['margin']:g} points to be detected with 80% power, two-sided at 5% / {verdict['comparisons']} "
            "(Bonferroni's level), at the paired sd the decision used (its error term's).")
