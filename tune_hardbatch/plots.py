"""PNG plots with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def learning_curves(reports: list[dict], path, title: str = "") -> None:
    """Loss, top-1 and the (lr, p) schedules against epoch-equivalents, one figure with three panels."""
    ee = [r["epoch_equiv"] for r in reports]
    fig, (ax_loss, ax_acc, ax_sched) = plt.subplots(1, 3, figsize=(13, 3.8))
    ax_loss.plot(ee, [r["train_loss"] for r in reports], label="train (untrimmed)")
    ax_loss.plot(ee, [r["test_loss"] for r in reports], label="test")
    ax_loss.set(xlabel="epoch-equivalents", ylabel="loss", yscale="log", title="loss")
    ax_acc.plot(ee, [r["train_top1"] for r in reports], label="train top-1")
    ax_acc.plot(ee, [r["test_top1"] for r in reports], label="test top-1")
    ax_acc.plot(ee, [r["test_top5"] for r in reports], label="test top-5", alpha=0.5)
    ax_acc.set(xlabel="epoch-equivalents", ylabel="%", title="accuracy")
    conv = [r for r in reports if r.get("converged")]
    if conv:
        ax_acc.axvline(conv[-1]["convergence_epoch"], color="grey", ls=":", label="convergence")
    ax_sched.plot(ee, [r["lr"] for r in reports], label="lr (end of epoch)")
    ax_p = ax_sched.twinx()
    ax_p.plot(ee, [r["p"] for r in reports], color="C3", ls="--", label="p (trim)")
    ax_p.set(ylim=(0, 1.05), ylabel="p")
    ax_sched.set(xlabel="epoch-equivalents", ylabel="lr", title="schedules")
    for ax in (ax_loss, ax_acc, ax_sched):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    ax_p.legend(fontsize=8, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_by_arm(curves: dict, path):
    """Test top-1 against epoch-equivalents, one line per arm (mean across seeds, band = +-1 sd)."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for arm, (xs, mean, sd) in curves.items():
        (line,) = ax.plot(xs, mean, label=arm)
        ax.fill_between(xs, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                        color=line.get_color(), alpha=0.15)
    ax.set(xlabel="epoch-equivalents (samples forwarded / M)", ylabel="test top-1 %",
           title="test top-1 per arm (mean across seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def delta_effect(rows: list[dict], path):
    """delta against final test top-1 and convergence epoch, 95% intervals across seeds as error bars."""
    def x_of(r):
        return 1.1 if r["delta"] is None else r["delta"]  # reshuffled SGD drawn right of delta = 1

    rows = sorted(rows, key=x_of)
    fig, (ax_acc, ax_conv) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((ax_acc, "test_top1", "final test top-1 %"),
                           (ax_conv, "convergence_epoch", "convergence epoch")):
        for r in rows:
            ax.errorbar(x_of(r), r[key], yerr=_finite_or_zero(r[key + "_ci95"]), fmt="o", capsize=4,
                        color="C1" if r.get("baseline") else "C0")
            ax.annotate(r["arm"][:28], (x_of(r), r[key]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set(xlabel="delta (1.1 = reshuffled SGD)", ylabel=label)
        ax.grid(alpha=0.3)
    fig.suptitle("hard mini-batch selection: effect of delta (95% t-interval across seeds)", fontsize=10)
    return _save(fig, path)


def pareto(trials: list[dict], path):
    """Final test top-1 against compute (samples forwarded, trial seconds); the Pareto front marked."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    last = [t["history"][-1] for t in trials]
    acc = [h["test_top1"] for h in last]
    for ax, xs, label in ((axes[0], [h["samples_forward"] for h in last], "samples forwarded"),
                          (axes[1], [h.get("time_train_s", 0) + h.get("time_eval_s", 0) for h in last],
                           "trial seconds (train + eval)")):
        ax.scatter(xs, acc, s=14, alpha=0.6, label="trials")
        front = pareto_front(list(zip(xs, acc)))
        ax.plot([p[0] for p in front], [p[1] for p in front], "r-o", ms=4, drawstyle="steps-post",
                label="Pareto front")
        ax.set(xlabel=label, ylabel="final test top-1 %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("accuracy against compute", fontsize=10)
    return _save(fig, path)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by any other with less or equal compute and higher accuracy, by compute."""
    front, best = [], -float("inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _finite_or_zero(v: float) -> float:
    return v if v == v and v not in (float("inf"), -float("inf")) else 0.0


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
