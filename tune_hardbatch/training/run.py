"""One training run with files and a progress bar: `tune-hardbatch train`. Imports neither Ray nor MLflow."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from ..metrics import is_finite, json_safe
from .config import Config, to_yaml
from .loop import Trainer
from .strategies.labels import strategy_name


def _best(reports: list[dict], key: str) -> dict:
    """The report with the highest finite `key` ({} when none has one)."""
    finite = [r for r in reports if is_finite(r.get(key))]
    return max(finite, key=lambda r: r[key], default={})


def summarize(reports: list[dict], wall_time_s: float, diverged: bool) -> dict:
    """Final and best metrics, counts and wall time of a finished (or diverged) run.

    The best report is chosen by val_top1 when there is a validation set, else by test_top1;
    `best_test_top1` is the highest test top-1 recorded either way (never a selection).
    """
    final = reports[-1] if reports else {}
    best_val = _best(reports, "val_top1")
    best = best_val or _best(reports, "test_top1")
    return {
        "status": "diverged" if diverged else "finished",
        "reports": len(reports),
        "final": final,
        "final_val_top1": final.get("val_top1"),
        "best_val_top1": best_val.get("val_top1"),
        "test_top1_at_best_val": best_val.get("test_top1"),
        "best_test_top1": _best(reports, "test_top1").get("test_top1"),
        "best_epoch_equiv": best.get("epoch_equiv"),
        "convergence_epoch": final.get("convergence_epoch"),
        "converged": final.get("converged"),
        "epochs_to_target": final.get("epochs_to_target"),
        "backprops": final.get("backprops"),
        "samples_forward": final.get("samples_forward"),
        "samples_with_grad": final.get("samples_with_grad"),
        "time_train_s": final.get("time_train_s"),
        "time_eval_s": final.get("time_eval_s"),
        "wall_time_s": wall_time_s,
    }


def run_training(cfg: Config, out: Optional[str] = None, progress: bool = True,
                 on_report: Optional[Callable[[dict], None]] = None) -> dict:
    """Train `cfg`; with `out`, write config.yaml, metrics.jsonl, summary.json and curves.png there."""
    start = time.perf_counter()
    out_dir = Path(out).resolve() if out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(to_yaml(cfg))
    trainer = Trainer(cfg)
    bar = _progress_bar(trainer, progress)
    reports = []
    metrics_file = open(out_dir / "metrics.jsonl", "w") if out_dir else None
    try:
        for report in trainer.run():
            reports.append(report)
            line = json.dumps(json_safe(report))  # NaN and infinities as null: metrics.jsonl is standard JSON
            if metrics_file:
                metrics_file.write(line + "\n")
                metrics_file.flush()
            if on_report:
                on_report(report)
            if bar is not None:
                bar.update(report["backprops"] - bar.n)
                val = {"val": f"{report['val_top1']:.1f}"} if is_finite(report["val_top1"]) else {}
                bar.set_postfix(loss=f"{report['train_loss']:.3f}", **val, top1=f"{report['test_top1']:.1f}")
                bar.write(line)
            else:
                print(line, flush=True)
    finally:
        if metrics_file:
            metrics_file.close()
        if bar is not None:
            bar.close()
    summary = summarize(reports, time.perf_counter() - start, trainer.pos.diverged)
    summary["strategy"] = strategy_name(cfg)
    summary["device"] = str(trainer.device)
    if out_dir:
        (out_dir / "summary.json").write_text(json.dumps(json_safe(summary), indent=2) + "\n")
        if reports:
            from ..output.plots import learning_curves

            learning_curves(reports, out_dir / "curves.png", title=f"{cfg.data.name} {cfg.model.name} "
                            f"{summary['strategy']} seed {cfg.seed}")
    return summary


def _progress_bar(trainer: Trainer, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=trainer.planned_steps, unit="step", desc="train", file=sys.stderr, dynamic_ncols=True)
