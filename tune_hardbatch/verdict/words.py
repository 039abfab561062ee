"""The verdict in words (`verdict.py` builds it): one sentence per worded comparison, the context (what
chose the arms, how each was tuned, whether the confirmation was partial) and the Markdown that opens
report.md. Pure text.
"""

from __future__ import annotations

from ..metrics import is_finite
from ..output.formats import fixed, pm
from .design_words import VARIANCE_HEAD, VARIANCE_NOTE, design_line, fixed_design_note, fixed_design_rows, variance_rows

PARTIAL = "partial: from the seeds that finished"
WHAT = {"helps": "helps", "hurts": "hurts"}
MATCHED_WORD = "budget-matched baseline"  # the word of a budget-matched run's row: a reference, not judged


def _seeds(n: int, what: str = "paired seed") -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _p(p) -> str:
    return "nan" if not is_finite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _pct(x) -> str:
    return f"{x:.3g}%"


def level_pct(level) -> str:
    """A confidence level in percent: 95%, 99.3%."""
    return f"{100 * level:.3g}%" if is_finite(level) else "?"


def interval(c: dict) -> str:
    """'[a, b]' of the interval a decision rests on (inf: no interval yet)."""
    return f"[{c['low']:+.2f}, {c['high']:+.2f}]" if is_finite(c.get("low")) and is_finite(c.get("high")) else \
        "[no interval]"


def basis(c: dict, sequential: bool) -> str:
    """The interval a decision rests on (its level: Holm's share, repeated in a sequential design), beside the
    raw 95% interval when they differ, the error term and its df."""
    kind = "repeated " if sequential and c.get("decision") != "exploratory" else ""
    term = "pooled error term" if c.get("error") == "pooled" else "own paired sd"
    dof = c.get("decided_df", c.get("df"))
    df = f", {dof:g} df" if is_finite(dof) else ""
    own = f"{level_pct(c.get('level'))} {kind}CI {interval(c)}"
    raw = c.get("raw95")
    if raw and c.get("level") != 0.95 and is_finite(raw[0]):
        own = f"raw 95% CI [{raw[0]:+.2f}, {raw[1]:+.2f}]; decided on its {own}"
    return f"{own}; {term}{df}"


def decided_phrase(c: dict, verdict: dict) -> str:
    """The words of one primary comparison's decision, with the interval it rests on."""
    seq, d = bool((verdict.get("design") or {}).get("sequential")), c["decision"]
    margin = (verdict.get("design") or {}).get("margin")
    amount = f"{c.get('decided_mean', c['mean']):+.2f} points of test top-1"
    n = c.get("decided_n", c["n"])
    at = f"; look {c['decided_look']}, {_seeds(n)}" if seq and c.get("decided_look") else f"; {_seeds(n)}"
    could = f"; could detect {_amount(c['min_detectable'])} or more" if is_finite(c.get("min_detectable")) else ""
    if d in ("helps", "hurts"):
        return f"{WHAT[d]}: {amount} ({basis(c, seq)}{at})"
    if d == "equivalent":
        return f"is equivalent within ±{margin:g} points: {amount} ({basis(c, seq)}{at})"
    if d == "unresolved":
        eq = f", nor shown equivalent within ±{margin:g}" if margin else ""
        return f"is not shown to differ{eq}: {amount} ({basis(c, seq)}{could}{at})"
    if d == "not judged":
        return f"is not judged ({_seeds(c['n'])})"
    if d == "open":
        return f"is still open: {amount} so far ({basis(c, False)}{at})"
    return f"(exploratory) {amount} ({basis(c, False)}; {_seeds(c['n'])})"


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
    """The full sentence of a primary comparison (report.md)."""
    head = a["arm"] if a["family"] == a["arm"] else f"{a['family']} ({a['arm']})"
    other, at = against(a, c, verdict)
    tail = f" ({PARTIAL})" if verdict.get("partial") else ""
    if c["decision"] == "not judged":
        return f"{head} is not judged against {other} ({_seeds(c['n'])}){tail}."
    family = f"; Holm over {_seeds(verdict['comparisons'], 'primary comparison')} at 5% familywise"
    return f"{head} against {other}{at} {decided_phrase(c, verdict)}{family}{arm_phrase(a) if first else ''}{tail}."


def short_line(a: dict, c: dict, verdict: dict) -> str:
    """One line of words per primary comparison (the printed verdict): 'trim vs plain: helps: +1.23 ...'."""
    return f"{c['name']}: {decided_phrase(c, verdict)}"


def sentences(verdict: dict) -> list[str]:
    """One sentence per primary comparison (an arm with the baseline, with its random control, or as listed
    in confirm.primary)."""
    if verdict["baseline"] is None:
        return ["No baseline arm (plain SGD, hard_batch.delta null; or delta = 1) was confirmed, so no "
                "strategy can be judged: add it to the space."]
    return [comparison_sentence(a, c, verdict, i == 0) for a in verdict["arms"]
            for i, c in enumerate(a["diffs"]) if c.get("primary", True)]


def exploratory_lines(verdict: dict) -> list[str]:
    """The secondary comparisons: estimates with their 95% interval, no words."""
    return [f"{c['name']}: {c['mean']:+.2f} points ({basis(c, False)}; {_seeds(c['n'])})"
            for a in verdict["arms"] for c in a["diffs"] if not c.get("primary", True)]


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
            f"reached: the full budget where some trained it), re-trained with "
            f"{'seeds from' if (verdict.get('design') or {}).get('sequential') else 'seeds'} {verdict['seeds']} on "
            "the full training set and measured on the test set.")


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
    """The lines before the sentences: partial, selection, the design, tuning, each arm's gain of one more
    trial."""
    lines = [f"Partial ({PARTIAL}): the confirmation was interrupted."] if verdict.get("partial") else []
    return lines + [x for x in (selection(verdict), design_line(verdict), tuning_line(verdict),
                                *gain_lines(verdict)) if x]


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


SHORT = {"helps": "helps", "hurts": "hurts", "equivalent": "equiv.", "unresolved": "unresolved", "open": "open",
         "exploratory": "expl.", "not judged": "not judged"}


def comparison_cell(c: dict, wide: bool = True) -> str:
    """A table cell: the difference, its decision and (wide) the interval it rests on, with its seeds."""
    if c is None:
        return "-"
    if "decision" not in c or c["decision"] not in SHORT:  # a verdict.json of an older version
        return pm(c, signed=True)
    mean = c.get("decided_mean", c["mean"]) if c["decision"] != "exploratory" else c["mean"]
    head = f"{mean:+.2f} {SHORT[c['decision']]}" if is_finite(mean) else f"- {SHORT[c['decision']]}"
    if c["decision"] == "not judged":
        return f"not judged ({_seeds(c['n'])})"
    if not wide:  # the printed table's cell: 160 columns hold four comparison columns
        return head.replace("unresolved", "unres.")
    return f"{head} {interval(c)} ({level_pct(c.get('level'))}, n {c.get('decided_n', c['n'])})"


def convergence_cell(conv: dict) -> str:
    """The convergence epoch, or "not conv. (k of n)" when k of the n runs never converged."""
    if conv.get("n") and conv.get("converged", conv["n"]) < conv["n"]:
        return f"not conv. ({conv['n'] - conv['converged']} of {conv['n']})"
    return pm(conv)


def savings_cell(s) -> str:
    """Compute to reach each seed's baseline run's accuracy, as a share of that run's compute, or censored."""
    if not s or "reach" in s:  # "reach": a verdict.json of an older version
        return "-"
    if s["reached"] < s["n"] or not s["n"]:
        return f"not reached ({s['n'] - s['reached']} of {s['n']})"
    return f"{100 * s['mean']:.0f}% ± {100 * s['ci95']:.0f}%" if is_finite(s["ci95"]) else f"{100 * s['mean']:.0f}%"


def _family(comparison: dict) -> str:
    """The baseline family a comparison is with (a verdict.json of an older version: its baseline label)."""
    return comparison.get("baseline_family", comparison["baseline"])


CONTROL = "random control"  # the comparisons of an arm with its random control: their family, their column
MATCHED_COLUMN = "plain at equal compute"  # the column of the budget-matched comparisons


def column(family: str, short: bool = False) -> str:
    """A comparison column's name: its baseline family; the budget-matched runs' (plain@budget) in words
    (`short`: the printed table's)."""
    if short:
        return {"plain@budget": "equal compute", CONTROL: "random ctl"}.get(family, family)
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
                "compute and as many samples, drawn at random instead of the hardest), in the primary family. ")
    holm = (f"Words for the {verdict['comparisons']} primary comparisons, Holm-corrected at 5% familywise; each "
            "cell: the difference, its decision (helps, hurts, equiv.: within the resolution, unresolved, open: "
            "looks remain; expl.: a secondary comparison, no words), the interval it rests on with its level and "
            "the seeds it used. " if "comparisons" in verdict
            else "Decisions from the raw paired intervals (a verdict written before Holm's correction). ")
    matched = (f"plain@C: plain SGD ({base}'s configuration) trained for C compute-equivalents with its schedule "
               "fully decayed within them, the budget-matched baseline of the arms that spend about C (Kaddour et "
               f"al. 2023): each is also compared with it (vs {MATCHED_COLUMN}), a secondary comparison unless "
               "confirm.primary names it. "
               if verdict.get("budget_matched") else "")
    seeds = f"each arm's seeds (of {verdict['seeds']})" if (verdict.get("design") or {}).get("sequential") \
        else f"seeds {verdict['seeds']}"
    return (f"Test top-1 mean ± 95% t-interval across {seeds}; differences are paired by seed. "
            + who + holm + matched + "Convergence epoch over the runs that converged (not conv.: k of n never did), "
            "its change over the seed pairs where both converged. Reaches base acc. at: per seed, the compute at which "
            "test top-1 first reaches that seed's baseline run's final value, as a share of that run's compute "
            "(mean ± 95% interval), or not reached in k of n seeds. Compute per run: compute- (else epoch-) equivalents, samples forwarded, samples "
            "whose loss has a gradient, GPU seconds (train + eval x GPU share).")


def to_markdown(verdict: dict) -> str:
    """'## Verdict': the context, the sentences and the table of arms (report.md opens with it)."""
    head, rows = table(verdict)
    title = "## Verdict" + (f" ({PARTIAL})" if verdict.get("partial") else "")
    explore, split = exploratory_lines(verdict), variance_rows(verdict)
    lines = [title, "", *context(verdict), "", *[f"- {s}" for s in verdict["sentences"]], "",
             *(["Exploratory (secondary comparisons: estimates, no words):", "", *[f"- {x}" for x in explore], ""]
               if explore else []),
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
             *["| " + " | ".join(r) + " |" for r in rows], "", footer(verdict),
             *(["", "### What more seeds can and cannot buy (Jordan 2024)", "", VARIANCE_NOTE, "",
                "| " + " | ".join(VARIANCE_HEAD) + " |", "|---|" + "---:|" * (len(VARIANCE_HEAD) - 1),
                *["| " + " | ".join(r) + " |" for r in split]] if split else []),
             *(["", "### The seeds a fixed design would need for the same resolution", "", fixed_design_note(verdict), "",
                "| comparison | paired sd | seeds per arm |", "|---|---:|---:|",
                *["| " + " | ".join(r) + " |" for r in fixed]] if (fixed := fixed_design_rows(verdict)) else []),
             *[f"\nNote: {n}" for n in verdict["notes"]], ""]
    return "\n".join(lines)
