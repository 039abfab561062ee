"""What a search logs: the parent's params and tags, a trial's params, tags and artifacts (config, curves)."""

from __future__ import annotations

from pathlib import Path

from ..labels import strategy_name


def search_params(spec) -> dict:
    """The parent run's params: the search settings, resources and each dimension of the space."""
    out = {f"search.{k}": v for k, v in spec.search.items()}
    out.update({f"resources.{k}": v for k, v in spec.resources.items()})
    out.update({f"space.{d.key}": d.describe() for d in spec.dims})
    return out


def search_tags(spec) -> dict:
    return {"searcher": spec.search["searcher"], "scheduler": spec.search["scheduler"],
            "question": (spec.question or "")[:5000]}


def trial_record(spec, params: dict) -> tuple[dict, dict, object]:
    """(flattened resolved config as params, tags, Config) of a trial from its sampled params."""
    from ..config import flat_dict
    from ..spec import trial_config

    cfg = trial_config(spec.base_flat, params, spec.dims)
    return flat_dict(cfg), {"strategy": strategy_name(cfg)}, cfg


def trial_artifacts(cfg, history: list[dict], out_dir: Path, title: str) -> list[Path]:
    """The resolved config and a learning-curve PNG of a trial, written into `out_dir`."""
    from ..config import to_yaml
    from ..plots import learning_curves

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "config.yaml"]
    paths[0].write_text(to_yaml(cfg))
    rows = [h for h in history if "epoch_equiv" in h and "test_top1" in h]
    if rows:
        paths.append(out_dir / "curves.png")
        learning_curves(rows, paths[1], title=title)
    return paths
