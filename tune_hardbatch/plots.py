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
