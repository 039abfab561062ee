"""What a search logs: the parent's params and tags, a trial's params, metrics, tags and artifacts (config,
curves), and the verdict as the parent's metrics, tags and description.

A trial's artifacts are written by its worker (`write_config` as it starts, `write_curves` as it ends), on the
trial's own CPU, so the driver only uploads them; `trial_artifacts` writes both on the driver where a worker
could not (a trial that failed for good) and for `report --sync`. A confirmation run's worker also keeps its
test correctness (`training.correctness`), uploaded when it is there (`correct_files`), never waited for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..metrics import is_finite
from ..output.formats import csv_value, fixed, pm
from ..search.space.arms import arm_of, arm_summary
from ..search.space.names import slug
from ..search.space.sections import as_dict
from ..training.correctness import CORRECT_FILE
from ..training.strategies.labels import strategy_name

NOTE_LIMIT = 7900  # MLflow keeps at most 8000 characters of a tag's value
CONFIG_FILE, CURVES_FILE = "config.yaml", "curves.png"  # a trial's artifacts, in its folder
SKIP_METRICS = {"epoch", "trial_id", "done", "training_iteration", "timestamp", "time_this_iter_s",
                "time_total_s", "pid", "hostname", "node_ip", "time_since_restore",
                "iterations_since_restore", "checkpoint_dir_name", "should_checkpoint", "date", "node_id"}


def search_params(spec) -> dict:
    """The parent run's params: the search settings, resources and each dimension of the space."""
    out = {f"search.{k}": v for k, v in as_dict(spec.search).items()}
    out.update({f"resources.{k}": v for k, v in as_dict(spec.resources).items()})
    out.update({f"space.{d.key}": d.describe() for d in spec.dims})
    for arm in spec.arms:  # each declared arm: its fixed part and its own dimensions
        key = f"arms.{slug(arm.name)}"  # a name MLflow's keys spell otherwise ('delta=1'): kept in the value
        out[key] = arm_summary(arm) if key == f"arms.{arm.name}" else f"{arm.name}: {arm_summary(arm)}"
    return out


def metrics_of(result: dict) -> dict[str, float]:
    """A report's numbers as MLflow metrics: Ray's own keys (`SKIP_METRICS`), the config and flags left out."""
    out = {}
    for key, value in result.items():
        if key in SKIP_METRICS or key == "config" or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


def param_text(value) -> str:
    """An MLflow param's text: as in results.csv, with null for nothing (MLflow keeps 6000 characters)."""
    return "null" if value is None else str(csv_value(value))[:6000]


def dataset_record(data) -> dict:
    """What MLflow shows of a search's data (the runs table's Dataset column): a name, a digest of every
    setting that decides which images a trial sees (so two searches on the same data show the same
    digest), and where the data comes from. `data`: the search's `DataConfig`."""
    import hashlib
    import json

    decides = {k: getattr(data, k) for k in ("name", "root", "image_size", "train_limit", "test_limit",
                                             "val_fraction", "split_seed", "synthetic_shape", "synthetic_train",
                                             "synthetic_test", "synthetic_classes")}
    digest = hashlib.sha256(json.dumps(decides, sort_keys=True, default=str).encode()).hexdigest()[:10]
    source = data.root or {"digits": "sklearn.datasets.load_digits", "synthetic": "random tensors"}.get(
        data.name, f"torchvision.datasets ({data.name})")
    name = data.name if not data.root else f"{data.name}:{Path(data.root).name}"
    return {"name": name, "digest": digest, "source_type": "local" if data.root else "code", "source": source}


def search_tags(spec) -> dict:
    return {"searcher": spec.search.searcher, "scheduler": spec.search.scheduler,
            "question": (spec.question or "")[:5000]}


def trial_record(spec, params: dict) -> tuple[dict, dict, object]:
    """(flattened resolved config as params, tags, Config) of a search trial from its sampled params."""
    from ..search.space import trial_config
    from ..training.config import flat_dict

    cfg = trial_config(spec.base_flat, params, spec.dims)
    tags = {"strategy": strategy_name(cfg), "phase": "search"}
    if arm_of(params):
        tags["arm"] = arm_of(params)
    return flat_dict(cfg), tags, cfg


def described_config(spec, params: dict):
    """The Config of a trial that a `describe` function describes (its params over the space's base),
    for its config.yaml; None when they do not make one."""
    from ..search.space import decode
    from ..training.config import apply_overrides, build_config, validate

    try:
        cfg = apply_overrides(build_config(None, spec.base_flat), {k: decode(v) for k, v in params.items()})
        validate(cfg)
        return cfg
    except Exception:  # noqa: BLE001 - a missing config.yaml is better than a lost run
        return None


def write_config(cfg, out_dir: Path) -> Path:
    """The trial's resolved config as `CONFIG_FILE` in `out_dir`."""
    from ..training.config import to_yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CONFIG_FILE
    _write_whole(path, lambda tmp: tmp.write_text(to_yaml(cfg)))
    return path


def write_curves(history: list[dict], out_dir: Path, title: str) -> Optional[Path]:
    """The trial's learning-curve PNG as `CURVES_FILE` in `out_dir` (None: no report to draw)."""
    from ..output.plots import learning_curves

    rows = [h for h in history if "epoch_equiv" in h and "test_top1" in h]
    if not rows:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CURVES_FILE
    _write_whole(path, lambda tmp: learning_curves(rows, tmp, title=title))
    return path


def _write_whole(path: Path, write) -> None:
    """`write(tmp)` then rename: the driver, polling for the file, never uploads half of it."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def trial_artifacts(cfg, history: list[dict], out_dir: Path, title: str) -> list[Path]:
    """The resolved config (unless `cfg` is None) and a learning-curve PNG of a trial, written into `out_dir`
    (by the driver: when the worker did not, and for `report --sync`)."""
    paths = [write_config(cfg, out_dir)] if cfg is not None else []
    curves = write_curves(history, out_dir, title)
    return paths + ([curves] if curves is not None else [])


def trial_files(out_dir: Path) -> list[Path]:
    """The config and curves a trial's worker wrote into its folder (those that are there)."""
    return [p for p in (out_dir / CONFIG_FILE, out_dir / CURVES_FILE) if p.is_file()]


def correct_files(out_dir: Path) -> list[Path]:
    """A confirmation run's per-example test correctness, when its worker wrote it (a search trial, or a run
    that did not train its whole budget, has none): an artifact beside the config and curves."""
    return [p for p in (out_dir / CORRECT_FILE,) if p.is_file()]


# ------------------------------------------------------------------------------------------- verdict
def arm_slugs(verdict: dict) -> dict[str, str]:
    """Arm label -> slug, unique within the verdict (a clash gets '_2', '_3', ...)."""
    out: dict[str, str] = {}
    for arm in verdict.get("arms", []):
        base = candidate = slug(arm["arm"])
        n = 1
        while candidate in out.values():
            n += 1
            candidate = f"{base}_{n}"
        out[arm["arm"]] = candidate
    return out


def verdict_metrics(verdict: dict) -> dict[str, float]:
    """The parent run's metrics per arm: `<slug>.<metric>_mean/_ci95`, `<slug>.diff_vs_<baseline>_mean/_ci95`,
    the convergence epoch and its change, the compute; non-finite values are left out."""
    slugs, metric = arm_slugs(verdict), verdict.get("metric", "test_top1")
    out: dict[str, float] = {}

    def put(name, value):
        if is_finite(value):
            out[name] = float(value)

    for arm in verdict.get("arms", []):
        s = slugs[arm["arm"]]
        for key in (metric, "convergence_epoch", "convergence_change"):
            stat = arm.get(key) or {}
            put(f"{s}.{key}_mean", stat.get("mean"))
            put(f"{s}.{key}_ci95", stat.get("ci95"))
        for diff in arm.get("diffs", []):
            b = slugs.get(diff["baseline"], slug(diff["baseline"]))
            put(f"{s}.diff_vs_{b}_mean", diff.get("mean"))
            put(f"{s}.diff_vs_{b}_ci95", diff.get("ci95"))
        for key, value in (arm.get("compute") or {}).items():
            put(f"{s}.{key}", value)
        put(f"{s}.n", arm.get("n"))
    return out


def verdict_tags(verdict: dict) -> dict[str, str]:
    """`verdict.source`, `verdict.baseline` and per arm `verdict.<slug>`: '<arm label>: <word>'."""
    tags = {"verdict.source": str(verdict.get("source", "")), "verdict.baseline": str(verdict.get("baseline", ""))}
    slugs = arm_slugs(verdict)
    for arm in verdict.get("arms", []):
        tags[f"verdict.{slugs[arm['arm']]}"] = f"{arm['arm']}: {arm.get('word', '')}"[:5000]
    return tags


def verdict_note(verdict: dict) -> str:
    """The parent run's description (Markdown): the verdict's sentences, then one table row per arm."""
    metric, baselines = verdict.get("metric", "test_top1"), list(verdict.get("baselines") or [])
    seeds = verdict.get("seeds") or []
    lines = [f"### Verdict ({verdict.get('source', '?')})", ""]
    lines += [f"- {s}" for s in verdict.get("sentences", [])]  # first: the overview shows a few lines
    lines += ["", f"{metric}: mean ± 95% interval over {len(seeds)} seeds {list(seeds)} at "
              f"{verdict.get('budget', '?')} epoch-equivalents; differences from the baselines paired by seed.", ""]
    lines += ["| arm | n | " + metric + " | " + " | ".join(f"vs {b}" for b in baselines)
              + (" | " if baselines else "") + "conv. epoch | samples forwarded | with gradient | GPU s |",
              "|---" * (7 + len(baselines)) + "|"]
    for arm in verdict.get("arms", []):
        diffs = {d["baseline"]: d for d in arm.get("diffs", [])}
        compute = arm.get("compute") or {}
        cells = [arm["arm"], str(arm.get("n", "")), pm(arm.get(metric), missing="–"),
                 *[pm(diffs.get(b), signed=True, missing="–") if b in diffs else "" for b in baselines],
                 pm(arm.get("convergence_epoch"), missing="–"),
                 *[fixed(compute.get(k), d, missing="–")
                   for k, d in (("samples_forward", 0), ("samples_with_grad", 0), ("gpu_seconds", 1))]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "`verdict.json`, `report.md` and the plots are among this run's artifacts; each arm's figures "
              "are metrics named `<arm>.<figure>`."]
    text = "\n".join(lines)
    return text if len(text) <= NOTE_LIMIT else text[: NOTE_LIMIT - 2] + " …"
