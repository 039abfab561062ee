"""The verdict in words (`verdict.py` builds it): one sentence per worded comparison, the context (what
chose the arms, how each was tuned, whether the confirmation was partial) and the Markdown that opens
report.md. Pure text.
"""

from __future__ import annotations

from ..metrics import is_finite
from ..output.formats import fixed, pm

PARTIAL = "partial: from the seeds that finished"
WHAT = {"helps": "helps", "hurts": "hurts", "no detectable difference": "makes no detectable difference"}
MATCHED_WORD = "budget-matched baseline"  # the word of a budget-matched run's row: a reference, not judged


def _seeds(n: int, what: str = "paired seed") -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _p(p) -> str:
    return "nan" if not is_finite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _pct(x) -> str:
    return f"{x:.3g}%"


def resolution(c: dict, m: int) -> str:
    """What a comparison without a detected difference could have seen, and its equivalence test."""
    out = ""
    if c["decision"] == "no detectable difference" and is_finite(c.get("min_detectable")):
        out += (f"; it could have detected a difference of {c['min_detectable']:.2g} points or more (80% power, "
                f"two-sided at {_pct(100 * c['alpha_mde'])} = 5% / {m}, the strictest Holm step)")
    if c.get("margin") is not None and c["decision"] == "no detectable difference":
        shown = "equivalent" if c.get("tost_equivalent") else "not shown equivalent"
        out += f"; {shown} within ±{c['margin']:g} points (two one-sided tests at 5%, p {_p(c.get('tost_p'))})"
    return out


def arm_phrase(a: dict) -> str:
    """What the arm's primary sentence adds: reaching the baseline's accuracy, convergence."""
    out, s, conv = "", a.get("savings"), a["convergence_epoch"]
    if s and s["n"]:
        if s["reached"] == s["n"] and is_finite(s["saving_pct"]) and s["saving_pct"] > 0:
            out += f"; it reaches the baseline's accuracy at {100 - s['saving_pct']:.0f}% of its compute"
        elif s["reached"] < s["n"]:
            out += f"; it does not reach the baseline's final accuracy in {s['n'] - s['reached']} of {s['n']} seeds"
    if conv.get("n") and conv["converged"] < conv["n"]:
        out += f"; not converged in {conv['n'] - conv['converged']} of {conv['n']} runs"
    return out


def against(a: dict, c: dict, verdict: dict) -> tuple[str, str]:
    """(what the arm is compared with, at which budget) in a sentence: the baseline at the search's budget;
    delta = 1 as the paper's own comparison; a budget-matched run as plain SGD at equal compute."""
    if c.get("compute_budget") is not None:
        return (f"{verdict.get('baseline') or 'plain'} at equal compute ({c['baseline']}: plain SGD trained for "
                f"{c['compute_budget']:g} compute-equivalents, its schedule fully decayed within them)", "")
    if c["baseline_family"] == CONTROL:
        return (f"its random control {c['baseline']} (as many samples at the same compute, drawn without regard "
                f"to hardness)", f" at {verdict['budget']:g} epoch-equivalents")
    paper = " (the paper's own comparison)" if c["baseline_family"] == "delta=1" and a["family"] == "delta" else ""
    return f"{c['baseline']}{paper}", f" at {verdict['budget']:g} epoch-equivalents"


def comparison_sentence(a: dict, c: dict, verdict: dict, first: bool) -> str:
    head = a["arm"] if a["family"] == a["arm"] else f"{a['family']} ({a['arm']})"
    other, at = against(a, c, verdict)
    tail = f" ({PARTIAL})" if verdict.get("partial") else ""
    if c["decision"] == "not judged":
        return f"{head} is not judged against {other} ({_seeds(c['n'])}){tail}."
    m = verdict["comparisons"]
    amount = f"{c['mean']:+.2f} ± {c['ci95']:.2f}"
    return (f"{head} {WHAT[c['decision']]} against {other}{at} with {_seeds(c['n'])} (test top-1 {amount} points, "
            f"paired 95% CI, p {_p(c['p'])}; Holm-adjusted p {_p(c['p_holm'])}, Holm-corrected over "
            f"{_seeds(m, 'comparison')} at 5% familywise){resolution(c, m)}{arm_phrase(a) if first else ''}{tail}.")


def sentences(verdict: dict) -> list[str]:
    """One sentence per worded comparison (an arm with the baseline; a delta < 1 arm also with delta = 1; an
    arm that spends less compute also with its budget-matched baseline)."""
    if verdict["baseline"] is None:
        return ["No baseline arm (plain SGD, hard_batch.delta null; or delta = 1) was confirmed, so no "
                "strategy can be judged: add it to the space."]
    return [comparison_sentence(a, c, verdict, i == 0) for a in verdict["arms"] for i, c in enumerate(a["diffs"])]


def selection(verdict: dict) -> str:
    """Which metric chose the arms (and on which data), or that a grid chose nothing."""
    if verdict["source"] != "confirmation":
        return "The grid's own trials: every arm with every seed; nothing selected."
    metric = verdict.get("selected_on")
    if metric is None:
        chosen = "by the search metric (not recorded)"
    elif metric.startswith("val_"):
        chosen = f"by {metric} on validation data"
    elif metric.startswith("test_"):
        chosen = f"by {metric} on the test data (so the confirmed arms' test top-1 is biased upward)"
    else:
        chosen = f"by {metric}"
    each = "declared arm" if (verdict.get("tuning") or {}).get("mode") == "arms" else "strategy family"
    return (f"Arms chosen {chosen} (the best search trial of each {each}, at one budget every compared trial "
            f"reached: the full budget where some trained it), re-trained with seeds {verdict['seeds']} on the full "
            "training set and measured on the test set.")


def tuning_line(verdict: dict) -> str:
    """How many search trials each arm had; a joint search's unequal tuning."""
    t = verdict.get("tuning")
    if not t:
        return ""
    counts = ", ".join(f"{a['arm']} {a['search_trials']}" + (f" ({a['search_finished']} trained their whole budget)"
                                                              if a.get("search_finished") is not None else "")
                       for a in verdict["arms"] if a.get("search_trials") is not None)
    line = f"Search trials per arm ({t.get('sampler') or t.get('mode', '?')}): {counts or 'not recorded'}."
    if t.get("mode") == "joint":
        line += (" The sampler picked the family (a joint search), so the arms were tuned unequally: a "
                 "difference may reflect tuning, not the strategy.")
    elif t.get("mode") == "arms":
        line += " Each arm was searched alike: its own sampler and early stopper."
    return line


def context(verdict: dict) -> list[str]:
    """The lines before the sentences: partial, selection, tuning, each arm's gain of one more trial."""
    lines = [f"Partial ({PARTIAL}): the confirmation was interrupted."] if verdict.get("partial") else []
    return lines + [x for x in (selection(verdict), tuning_line(verdict), *gain_lines(verdict)) if x]


def points(metric: str) -> str:
    """The unit of a difference of `metric`: percentage points of an accuracy, else the metric's own."""
    return f"points of {metric}" if str(metric).endswith(("top1", "top5")) else f"of {metric}"


def gain_phrase(arm: str, gain: dict, metric: str, resolution: str = "") -> str:
    """'one more trial of trim would gain about 0.3 points of val_top1 (95% bootstrap band 0-0.9; ...)' and,
    when given, the resolution beside it (`gain`: `tuning_curves.Curve.summary()`)."""
    if not is_finite(gain.get("gain")):
        out = f"one more trial of {arm}: no estimate of its gain (fewer than 2 trials with a value)"
    else:
        budget = gain.get("budget")
        at = "" if not is_finite(budget) else \
            f" at {'the full budget' if gain.get('full') else f'{budget:.3g} epoch-equivalents'}"
        out = (f"one more trial of {arm} would gain about {_amount(gain['gain'])} {points(metric)} (95% bootstrap "
               f"band {_amount(gain['gain_low'])}-{_amount(gain['gain_high'])}; the last step of its tuning curve "
               f"over {gain['trials']} trials{at})")
    return out + (f"; {resolution}" if resolution else "")


def _amount(x: float) -> str:
    """A gain or a resolution: one decimal from 1 up, else two significant digits (0.3, 0.042, 1.6)."""
    return f"{x:.1f}" if abs(x) >= 1 else f"{x:.2g}"


def resolution_phrase(a: dict) -> str:
    """'its comparison with plain resolves 1.6 points of test top-1' (the arm's minimum detectable difference
    against the baseline; the baseline: the coarsest of the comparisons with it); '' without one."""
    g = a.get("tuning_gain") or {}
    if not is_finite(g.get("resolution")):
        return ""
    if g.get("against") is None:
        return f"the coarsest comparison with it resolves {_amount(g['resolution'])} points of test top-1"
    return f"its comparison with {g['against']} resolves {_amount(g['resolution'])} points of test top-1"


def gain_lines(verdict: dict) -> list[str]:
    """Per arm with a tuning curve: the expected gain of one more search trial beside the resolution of its
    comparison (was it tuned enough for the difference the verdict could see?)."""
    out = []
    for a in verdict["arms"]:
        g = a.get("tuning_gain")
        if g:
            phrase = gain_phrase(a["arm"], g, g.get("metric") or "the search metric", resolution_phrase(a))
            out.append(phrase[0].upper() + phrase[1:] + ".")
    return out


def comparison_cell(c: dict) -> str:
    """A table cell: the paired difference and its decision."""
    if c is None:
        return "-"
    if "decision" not in c:  # a verdict.json written before decisions were recorded
        return pm(c, signed=True)
    if c["decision"] == "not judged":
        return f"not judged ({_seeds(c['n'])})"
    short = {"no detectable difference": "n.d."}.get(c["decision"], c["decision"])
    extra = f", MDE {c['min_detectable']:.2g}" if short == "n.d." and is_finite(c.get("min_detectable")) else ""
    eq = (", equiv." if c.get("tost_equivalent") else ", not equiv.") \
        if c.get("margin") is not None and short == "n.d." else ""
    return f"{pm(c, signed=True)} {short} (adj. p {_p(c['p_holm'])}{extra}{eq})"


def convergence_cell(conv: dict) -> str:
    """The convergence epoch, or "not conv. (k of n)" when k of the n runs never converged."""
    if conv.get("n") and conv.get("converged", conv["n"]) < conv["n"]:
        return f"not conv. ({conv['n'] - conv['converged']} of {conv['n']})"
    return pm(conv)


def savings_cell(s) -> str:
    """Compute to reach the baseline's accuracy (and its share of the baseline's budget), or censored."""
    if not s:
        return "-"
    if s["reached"] < s["n"] or not s["n"]:
        return f"not reached ({s['n'] - s['reached']} of {s['n']})"
    share = f" ({100 - s['saving_pct']:.0f}%)" if is_finite(s["saving_pct"]) else ""
    return pm(s) + share


def _family(comparison: dict) -> str:
    """The baseline family a comparison is with (a verdict.json of an older version: its baseline label)."""
    return comparison.get("baseline_family", comparison["baseline"])


CONTROL = "random control"  # the comparisons of an arm with its random control: their family, their column
MATCHED_COLUMN = "plain at equal compute"  # the column of the budget-matched comparisons


def column(family: str) -> str:
    """A comparison column's name: its baseline family; the budget-matched runs' (plain@budget) in words."""
    return MATCHED_COLUMN if family == "plain@budget" else family


def table(verdict: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one column per comparison baseline family."""
    fams = list(dict.fromkeys(_family(c) for a in verdict["arms"] for c in a["diffs"]))
    trials = verdict.get("tuning") is not None
    head = ["arm", "seeds", *(["trials"] if trials else []), "test top-1 %",
            *[f"vs {column(f)} (paired)" for f in fams],
            "conv. epoch", "conv. change", "reaches base acc. at", "compute", "samples fwd", "samples w/ grad",
            "GPU s"]
    rows = []
    for a in verdict["arms"]:
        diffs, c = {_family(d): d for d in a["diffs"]}, a["compute"]
        change = a["convergence_change"]
        rows.append([a["arm"] + (" (baseline)" if a["arm"] == verdict["baseline"] else "")
                     + (" (budget-matched)" if a.get("word") == MATCHED_WORD else ""), str(a["n"]),
                     *([str(a.get("search_trials") if a.get("search_trials") is not None else "-")] if trials else []),
                     pm(a["test_top1"]),
                     *[("base" if a["family"] == f or a["arm"] == f else comparison_cell(diffs.get(f))) for f in fams],
                     convergence_cell(a["convergence_epoch"]),
                     pm(change, signed=True) + (f" ({_seeds(change['n'], 'pair')})" if change.get("n") else ""),
                     savings_cell(a.get("savings")),
                     *[fixed(c.get(k), d, grouped=True) for k, d in (("compute_equiv", 2), ("samples_forward", 0),
                                                                     ("samples_with_grad", 0), ("gpu_seconds", 1))]])
    return head, rows


def footer(verdict: dict) -> str:
    """What the table's figures are."""
    base = verdict["baseline"]
    who = (f"The baseline is {base}: every arm is compared with it, and a delta < 1 arm also with delta = 1. "
           if base is not None else "No baseline arm: nothing is compared. ")
    if any(c.get("baseline_family") == CONTROL for a in verdict["arms"] for c in a["diffs"]):
        who += ("An arm whose random control was confirmed is also compared with it (vs random control: the same "
                "compute and as many samples, drawn at random instead of the hardest), in the same Holm family. ")
    holm = (f"Decisions are Holm-corrected over {verdict['comparisons']} comparisons at 5% familywise (adj. p: "
            "Holm-adjusted); n.d.: no detectable difference, with MDE the smallest difference detectable with 80% "
            "power at 5% / comparisons (Bonferroni's level, the strictest Holm step). " if "comparisons" in verdict
            else "Decisions from the raw paired intervals (a verdict written before Holm's correction). ")
    matched = (f"plain@C: plain SGD ({base}'s configuration) trained for C compute-equivalents with its schedule "
               "fully decayed within them, the budget-matched baseline of the arms that spend about C (Kaddour et "
               f"al. 2023): each is also compared with it (vs {MATCHED_COLUMN}), in the same Holm family. "
               if verdict.get("budget_matched") else "")
    return (f"Test top-1 mean ± 95% t-interval across seeds {verdict['seeds']}; differences are paired by seed. "
            + who + holm + matched + "Convergence epoch over the runs that converged (not conv.: k of n never did), "
            "its change over the seed pairs where both converged. Reaches base acc. at: the compute at which test "
            "top-1 first reaches the baseline's final mean (its share of the baseline's compute), or not reached "
            "in k of n seeds. Compute per run: compute- (else epoch-) equivalents, samples forwarded, samples "
            "whose loss has a gradient, GPU seconds (train + eval x GPU share).")


def to_markdown(verdict: dict) -> str:
    """'## Verdict': the context, the sentences and the table of arms (report.md opens with it)."""
    head, rows = table(verdict)
    title = "## Verdict" + (f" ({PARTIAL})" if verdict.get("partial") else "")
    lines = [title, "", *context(verdict), "", *[f"- {s}" for s in verdict["sentences"]], "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
             *["| " + " | ".join(r) + " |" for r in rows], "", footer(verdict),
             *[f"\nNote: {n}" for n in verdict["notes"]], ""]
    return "\n".join(lines)
