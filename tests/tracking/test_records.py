"""What a search logs (`tracking.records`), without a server: params, tags, a trial's config and artifacts, and
the verdict as metrics, tags and the parent's description."""

import math
import re

from tune_hardbatch.search.space import load_space
from tune_hardbatch.tracking.records import (
    NOTE_LIMIT,
    arm_slugs,
    described_config,
    search_params,
    search_tags,
    trial_artifacts,
    trial_record,
    verdict_metrics,
    verdict_note,
    verdict_tags,
)
from tune_hardbatch.training.config import flat_dict


def _arm(label, word="no detectable difference", mean=90.0, diffs=()):
    return {"arm": label, "word": word, "n": 3, "test_top1": {"mean": mean, "ci95": 0.5},
            "convergence_epoch": {"mean": math.nan, "ci95": math.nan}, "diffs": list(diffs),
            "compute": {"samples_forward": 1000.0, "samples_with_grad": 500.0, "gpu_seconds": None}}


def test_search_params_flatten_every_section_and_dimension():
    spec = load_space(None)
    params = search_params(spec)
    assert params["search.metric"] == spec.search.metric and params["search.num_samples"] == spec.search.num_samples
    assert params["resources.cpu"] == spec.resources.cpu
    assert {k for k in params if k.startswith("space.")} == {f"space.{k}" for k in spec.dim_keys}
    assert search_tags(spec)["searcher"] == spec.search.searcher
    # each declared arm, under a name MLflow accepts (letters, digits, _ - . space /: no '<' or '=')
    assert params["arms.delta_lt_1"] == "delta<1: searches hard_batch.delta choice [0.5, 0.2]"  # the name kept
    assert all(re.fullmatch(r"[\w.\- /]+", k) for k in params), [k for k in params if not re.fullmatch(r"[\w.\- /]+", k)]


def test_a_trial_is_logged_as_its_resolved_config():
    spec = load_space(None)
    params, tags, cfg = trial_record(spec, {"hard_batch.delta": 0.5})
    assert params == flat_dict(cfg) and params["hard_batch.delta"] == 0.5
    assert tags == {"strategy": "delta=0.5", "phase": "search"}


def test_described_config_is_none_rather_than_an_error():
    spec = load_space(None)
    assert described_config(spec, {"seed": 7}).seed == 7
    assert described_config(spec, {"hard_batch.delta": 5.0}) is None  # out of range: no config.yaml, no crash


def test_trial_artifacts_write_the_config_and_curves_only_when_there_is_something(tmp_path):
    spec = load_space(None)
    history = [{"epoch_equiv": e, "test_top1": 50.0 + e, "train_loss": 1 / e, "test_loss": 1.0, "train_top1": 50.0,
                "test_top5": 90.0, "lr": 0.1, "p": 1.0} for e in (1.0, 2.0)]
    paths = trial_artifacts(spec.base_cfg, history, tmp_path / "a", "t")
    assert [p.name for p in paths] == ["config.yaml", "curves.png"] and all(p.stat().st_size for p in paths)
    assert trial_artifacts(None, [{"epoch_equiv": 1.0}], tmp_path / "b", "t") == []


def test_verdict_metrics_tags_and_slugs():
    verdict = {"source": "confirmation", "baseline": "plain", "baselines": ["plain"], "seeds": [1, 2, 3],
               "arms": [_arm("plain", "baseline"), _arm("a=1", "helps", 91.0, [{"baseline": "plain", "mean": 1.0,
                                                                                 "ci95": 0.4}]),
                        _arm("a+1")]}
    assert arm_slugs(verdict) == {"plain": "plain", "a=1": "a_1", "a+1": "a_1_2"}  # a clash gets a suffix
    metrics = verdict_metrics(verdict)
    assert metrics["a_1.diff_vs_plain_mean"] == 1.0 and metrics["a_1.test_top1_mean"] == 91.0
    assert "plain.convergence_epoch_mean" not in metrics and "plain.gpu_seconds" not in metrics  # NaN, None: out
    tags = verdict_tags(verdict)
    assert tags["verdict.a_1"] == "a=1: helps" and tags["verdict.baseline"] == "plain"


def test_verdict_note_is_a_table_within_mlflows_limit():
    verdict = {"source": "grid", "baselines": ["plain"], "seeds": [0, 1], "budget": 4, "sentences": ["s1"],
               "arms": [_arm("plain", "baseline"), _arm("x|y")]}
    note = verdict_note(verdict)
    assert note.splitlines()[2] == "- s1" and "| x\\|y | 3 | 90.00 ± 0.50 |" in note  # a '|' in a label escaped
    long = {**verdict, "arms": [_arm(f"arm{i}" * 20) for i in range(100)]}
    assert len(verdict_note(long)) <= NOTE_LIMIT
