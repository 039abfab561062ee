"""PNG plots with matplotlib's Agg backend (no display needed).

The search plots (`confirmed_arms`, `importances`, `best_so_far`, `best_curves`, `tuning_curves`,
`confirmation_looks`: a sequential confirmation's intervals look by look) read
the same for a 20-trial TPE search and for a 4 x 3 grid: one row per arm or dimension with its label on the
y axis, the figure growing with the rows, labels shortened with an ellipsis, legends outside the axes, and
a tight bounding box. Each has a `_..._figure` twin that returns the Figure unsaved (the tests measure its labels).
A trial's `learning_curves` are drawn once per trial, by its worker: one figure per process, its data replaced.
"""

from __future__ import annotations

import threading

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..metrics import is_finite  # noqa: E402
from .formats import pm  # noqa: E402

LABEL_CHARS = 40  # longer labels end in an ellipsis
ROW_INCHES = 0.32  # height of one row of a horizontal-bar figure
STATUS_COLOURS = {"finished": "C0", "stopped_early": "C7", "diverged": "C3", "failed": "k"}


# the learning curves' series: (panel, report key, legend label, style); a series keeps its colour whether or
# not the others are there (validation ones only with a validation split)
SERIES = (("loss", "train_loss", "train (untrimmed)", {"color": "C0"}), ("loss", "test_loss", "test", {"color": "C1"}),
          ("loss", "val_loss", "validation", {"color": "C2", "ls": "--"}),
          ("acc", "train_top1", "train top-1", {"color": "C0"}), ("acc", "test_top1", "test top-1", {"color": "C1"}),
          ("acc", "val_top1", "validation top-1", {"color": "C2", "ls": "--"}),
          ("acc", "test_top5", "test top-5", {"color": "C3", "alpha": 0.5}),
          ("sched", "lr", "lr (end of epoch)", {"color": "C0"}), ("p", "p", "p (trim)", {"color": "C3", "ls": "--"}))


def learning_curves(reports: list[dict], path, title: str = "") -> None:
    """Loss, top-1 and the (lr, p) schedules against epoch-equivalents, one figure with three panels.

    Every trial draws this figure once (a search of short trials: once a second), so each process builds it
    once and then only replaces its data: building the axes and their ticks is 40% of the drawing time."""
    with _CURVES_LOCK:  # one figure per process; the drawing threads of a process take turns
        if "figure" not in _CURVES:
            _CURVES["figure"] = _LearningCurves()
        _CURVES["figure"].draw(reports, path, title)


_CURVES: dict = {}
_CURVES_LOCK = threading.Lock()


class _LearningCurves:
    """`learning_curves`' figure: every series' line, empty until `draw` gives it its points."""

    def __init__(self):
        self.fig, (loss, acc, sched) = plt.subplots(1, 3, figsize=(13, 3.8))
        self.axes = {"loss": loss, "acc": acc, "sched": sched, "p": sched.twinx()}
        self.lines = {key: self.axes[panel].plot([], [], label=label, marker="o", ms=2.5, **style)[0]
                      for panel, key, label, style in SERIES}  # markers: a trial stopped after one report
        self.convergence = acc.axvline(0, color="grey", ls=":", label="convergence")
        loss.set(xlabel="epoch-equivalents", ylabel="loss", yscale="log")
        acc.set(xlabel="epoch-equivalents", ylabel="%")
        sched.set(xlabel="epoch-equivalents", ylabel="lr")
        self.axes["p"].set(ylabel="p")
        for ax, title in ((loss, "loss"), (acc, "accuracy"), (sched, "schedules")):
            ax.grid(alpha=0.3)
            ax.set_title(title, y=1.0)  # fixed places: placing the title and the x label measures every tick
            ax.xaxis.set_label_coords(0.5, -0.12)  # label (~10% of a drawing); the x tick labels' height never varies
        self.legend_shown: dict = {}
        self.title = self.fig.suptitle("", fontsize=10)

    def draw(self, reports: list[dict], path, title: str) -> None:
        for key, line in self.lines.items():  # a series' finite points (none: not reported, no validation split)
            pts = [(r["epoch_equiv"], r[key]) for r in reports if is_finite(r.get(key))]
            line.set_data([x for x, _ in pts], [y for _, y in pts])
            line.set_visible(bool(pts))
        converged = [r for r in reports if r.get("converged")]
        self.convergence.set_visible(bool(converged))
        if converged:
            self.convergence.set_xdata([converged[-1]["convergence_epoch"]] * 2)
        for name, ax in self.axes.items():
            shown = [ln for ln in ax.get_lines() if ln.get_visible()]
            if shown:
                ax.set_autoscale_on(True)  # the fixed limits below turned it off
                ax.relim(visible_only=True)
                ax.autoscale_view()
                if self.legend_shown.get(name) != shown:  # a legend is rebuilt only when its lines change
                    ax.legend(handles=shown, fontsize=8, loc="lower left" if name == "p" else "best")
                    self.legend_shown[name] = shown
            else:  # nothing finite (a diverged loss): no limits left from the process's last trial
                ax.set(xlim=(0, 1), ylim=(0.1, 10) if ax.get_yscale() == "log" else (0, 1))
                if ax.get_legend() is not None:
                    ax.get_legend().remove()
                self.legend_shown.pop(name, None)
        self.axes["p"].set_ylim(0, 1.05)
        self.title.set_text(title)
        # fixed margins, not tight_layout: a third of the drawing time, and these panels' labels never vary
        self.fig.subplots_adjust(left=0.07, right=0.95, bottom=0.14, top=0.86 if title else 0.9, wspace=0.38)
        self.fig.savefig(path, dpi=110)


def _finite_or_zero(v: float) -> float:
    return v if is_finite(v) else 0.0


# --- search plots: any number of arms, trials and dimensions -----------------------------------------

def confirmed_arms(arms: list[dict], path, baseline=None, metric: str = "test top-1 %"):
    """Each confirmed arm's mean with its 95% t-interval across seeds (verdict["arms"]), baseline marked."""
    return _save_tight(_confirmed_arms_figure(arms, baseline, metric), path)


def importances(result: dict, path):
    """Horizontal bars of `importances.param_importances`' result; conditional ones in another colour."""
    return _save_tight(_importances_figure(result), path)


def best_so_far(points: list[tuple], path, metric: str, mode: str):
    """Every trial's value (coloured by status) and a step line of the best finished value so far; `points`:
    (k, value, status), k = the trial's place in the order the trials started."""
    return _save_tight(_best_so_far_figure(points, metric, mode), path)


def best_curves(curves: dict, path, metric: str):
    """One validation curve per arm ({label: (compute in epoch-equivalents, values)}), legend outside."""
    return _save_tight(_best_curves_figure(curves, metric), path)


def tuning_curves(curves: dict, path, metric: str, sampler: str):
    """Per arm, the expected best `metric` after n search trials and its 95% bootstrap band ({arm: a curve with
    `mean`, `low`, `high` for n = 1..N, `budget` and `full`: where its values were taken})."""
    return _save_tight(_tuning_curves_figure(curves, metric, sampler), path)


def _tuning_curves_figure(curves: dict, metric: str, sampler: str):
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for i, (label, c) in enumerate(curves.items()):
        ns = list(range(1, len(c.mean) + 1))
        colour = f"C{i % 10}"
        ax.fill_between(ns, c.low, c.high, color=colour, alpha=0.15, lw=0)
        at = f"{c.budget:.3g}" if is_finite(c.budget) else "?"
        ax.plot(ns, c.mean, marker="o", ms=3, color=colour,
                label=f"{shorten(label)} ({len(ns)} at {'full ' + at if c.full else at})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="search trials of the arm (n)", ylabel=f"expected best {metric}")
    ax.set_title(f"Tuning curves: expected best {metric} after n trials, 95% bootstrap band\n({sampler}; each arm's "
                 "values at one budget)", fontsize=10)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0,
                  title="arm (trials at epoch-eq.)", title_fontsize=8)
    return fig


DECISION_COLOURS = {"helps": "C2", "hurts": "C3", "equivalent": "C0", "unresolved": "C7", "open": "k"}


def confirmation_looks(design: dict, path):
    """One panel per primary comparison: at each look (seeds so far) its difference and the repeated interval at
    its Holm share, coloured by its decision (open until decided), with 0 and the resolution ±R marked."""
    return _save_tight(_confirmation_looks_figure(design), path)


def _confirmation_looks_figure(design: dict):
    names = list(dict.fromkeys(n for look in design["trace"] for n in look["comparisons"]))
    cols = min(3, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False, layout="constrained")
    margin = design.get("margin")
    span = _looks_span(design["trace"], margin)
    looks = design.get("looks") or [look["seeds"] for look in design["trace"]]
    for ax, name in zip(axes.flat, names):
        for look in design["trace"]:
            c = look["comparisons"].get(name)
            if c is None or not is_finite(c["mean"]):
                continue
            low = c["low"] if is_finite(c["low"]) else c["mean"]
            high = c["high"] if is_finite(c["high"]) else c["mean"]
            ax.errorbar(look["seeds"], c["mean"], yerr=[[c["mean"] - low], [high - c["mean"]]], fmt="o", capsize=3,
                        color=DECISION_COLOURS.get(c["decision"], "k"), label=c["decision"])
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylim(-span, span)  # an early look's interval can be tens of points wide: cut at the axes
        if margin:
            ax.axhspan(-margin, margin, color="C0", alpha=0.08, lw=0)
        ax.set_title(shorten(name, 48), fontsize=9)
        ax.set_xticks(looks)
        ax.set_xlim(looks[0] - 0.5, looks[-1] + 0.5)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="best")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    band = f"; band: ±{margin:g}" if margin else ""
    fig.supxlabel("seeds per arm at the look", fontsize=9)
    fig.supylabel("difference, test top-1 points", fontsize=9)
    fig.suptitle(f"Confirmation looks: each primary comparison's repeated interval at its Holm share{band}",
                 fontsize=10)
    return fig


def _looks_span(trace: list, margin) -> float:
    """The y half-range of the looks' plot: room for every mean, each comparison's interval at its last look
    (the one its decision rests on) and the margin; an earlier look's wider interval is cut at the axes."""
    last = {name: c for look in trace for name, c in look["comparisons"].items()}
    means = [abs(c["mean"]) for look in trace for c in look["comparisons"].values() if is_finite(c["mean"])]
    ends = [abs(x) for c in last.values() for x in (c["low"], c["high"]) if is_finite(x)]
    return 1.1 * max([2.0 * (margin or 0), *means, *ends, 1.0])


def shorten(label, limit: int = LABEL_CHARS) -> str:
    """`label` cut to `limit` characters, the last one an ellipsis."""
    label = str(label)
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "\u2026"


def _confirmed_arms_figure(arms: list[dict], baseline=None, metric: str = "test top-1 %"):
    arms = list(arms)
    base = next((a for a in arms if a["arm"] == baseline), None) or \
        next((a for a in arms if a.get("is_baseline")), None)
    fig, ax = _rows_figure(len(arms), width=8.5)
    ys = list(range(len(arms)))
    for y, a in zip(ys, arms):
        score = a["test_top1"]
        ax.errorbar(score["mean"], y, xerr=_finite_or_zero(score.get("ci95", float("nan"))), fmt="o",
                    capsize=3, ms=5, color="C1" if a.get("is_baseline") else "C0")
    if base is not None:
        ax.axvline(base["test_top1"]["mean"], color="C1", ls="--", lw=1)
    labels = [f"{shorten(a['arm'])}  ({a['n']} seed{'s' if a['n'] != 1 else ''})" for a in arms]
    _row_labels(ax, ys, labels, bold=[bool(a.get("is_baseline")) for a in arms])
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(ys, [pm(a["test_top1"]) for a in arms], fontsize=8)
    right.tick_params(length=0)
    note = f"; dashed: baseline {shorten(base['arm'], 30)}" if base is not None else ""
    ax.set_xlabel(f"{metric} (mean, 95% t-interval across seeds{note})", fontsize=9)
    ax.set_title("confirmed arms", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def _importances_figure(result: dict):
    rows = [(k, v, "C0", shorten(k)) for k, v in result.get("values", {}).items()]
    rows += [(k, c["value"], "C2", f"{shorten(k)}\n(among {shorten(c['among'], 48)}, n={c['n']})")
             for k, c in result.get("conditional", {}).items()]
    title = (f"importance for {result.get('metric', 'the metric')} ({result.get('evaluator', '?')}, "
             f"{result.get('n_trials', 0)} finished trials)")
    warning = "\n".join(_wrap(result.get("warning") or "", 90))
    fig, ax = _rows_figure(len(rows) + 0.6 * sum("\n" in r[3] for r in rows), width=8)
    if not rows:
        ax.set_axis_off()
        ax.text(0.5, 0.5, warning or "no importances", ha="center", va="center", fontsize=9, wrap=True)
        ax.set_title(title, fontsize=10)
        return fig
    ys = list(range(len(rows)))
    ax.barh(ys, [r[1] for r in rows], color=[r[2] for r in rows], height=0.6)
    for y, r in zip(ys, rows):
        ax.text(r[1], y, f" {r[1]:.2f}", va="center", fontsize=8)
    _row_labels(ax, ys, [r[3] for r in rows])
    ax.set_xlim(0, max(1.0, max(r[1] for r in rows)) * 1.12)
    ax.set_xlabel("share of the metric's variance (global ones sum to 1; green: within their subset)", fontsize=9)
    ax.set_title(title + (f"\n{warning}" if warning else ""), fontsize=10 if not warning else 9)
    ax.grid(axis="x", alpha=0.3)
    return fig


def _best_so_far_figure(points: list[tuple], metric: str, mode: str):
    fig, ax = plt.subplots(figsize=(8.5, 4.2), layout="constrained")
    statuses = list(STATUS_COLOURS) + sorted({p[2] for p in points} - set(STATUS_COLOURS))
    for status in statuses:
        mine = [p for p in points if p[2] == status]
        shown = [p for p in mine if is_finite(p[1])]
        colour = STATUS_COLOURS.get(status, "C8")
        if shown:
            ax.scatter([p[0] for p in shown], [p[1] for p in shown], s=22, color=colour, label=status, zorder=3)
        if len(shown) < len(mine):  # no value (diverged, failed): a cross on the x axis
            ax.scatter([p[0] for p in mine if not is_finite(p[1])], [0.02] * (len(mine) - len(shown)), marker="x",
                       s=28, color=colour, transform=ax.get_xaxis_transform(), label=f"{status} (no value)",
                       clip_on=False, zorder=3)
    best, line = None, []
    better = max if mode == "max" else min
    for order, value, status in sorted(points, key=lambda p: p[0]):
        if status == "finished" and is_finite(value):
            best = value if best is None else better(best, value)
        if best is not None:
            line.append((order, best))
    if line:
        ax.plot([p[0] for p in line], [p[1] for p in line], drawstyle="steps-post", color="C1", lw=1.5,
                label="best finished so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial (in the order started)", ylabel=metric)
    ax.set_title(f"{metric} of every trial, best finished so far ({mode})", fontsize=10)
    ax.grid(alpha=0.3)
    if points:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return fig


def _best_curves_figure(curves: dict, metric: str):
    fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    for label, (xs, ys) in curves.items():
        pts = [(x, y) for x, y in zip(xs, ys) if is_finite(y)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=shorten(label))
    ax.set(xlabel="compute (compute_equiv: epoch-equivalents, a backward counted as two forwards)", ylabel=metric)
    ax.set_title(f"{metric}: the best trial of each arm", fontsize=10)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0,
                  ncol=1 if len(curves) <= 16 else 2, title="arm", title_fontsize=8)
    return fig


def _rows_figure(rows: float, width: float):
    """One axes whose height grows with its rows (at least a few inches)."""
    return plt.subplots(figsize=(width, max(2.6, ROW_INCHES * rows + 1.5)), layout="constrained")


def _row_labels(ax, ys, labels, bold=None):
    """Labels on the y axis, the first row at the top."""
    ax.set_yticks(ys, labels, fontsize=8)
    for tick, b in zip(ax.get_yticklabels(), bold or []):
        if b:
            tick.set_fontweight("bold")
    ax.set_ylim(len(ys) - 0.5, -0.5)


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) if text else []


def _save_tight(fig, path):
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
