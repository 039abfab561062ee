"""InfoBatch (SPEC section 4): the kept set and its weights, the anneal epoch, the sampler's epochs."""

import pytest
import torch

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies.infobatch import InfoBatchSampler, keep_ratio, prune, prunes


@pytest.mark.parametrize("prune_ratio, ratio", [(0.5, 0.5), (0.3, 0.7), (0.95, 0.1), (0.0, 1.0)])
def test_keep_ratio_is_one_minus_prune_ratio_at_least_a_tenth(prune_ratio, ratio):
    assert keep_ratio(prune_ratio) == pytest.approx(ratio)


def test_prune_keeps_the_above_mean_and_a_random_int_keep_ratio_of_the_rest_rescaled():
    scores = torch.tensor([0.1, 0.2, 3.0, 4.0, 0.3, 5.0])  # mean 2.1: 0, 1, 4 are well learned
    seen = set()
    for seed in range(30):
        kept, weights = prune(scores, 0.5, torch.Generator().manual_seed(seed))
        ids = sorted(kept.tolist())
        assert len(ids) == 4 and {2, 3, 5} < set(ids)  # int(0.5 x 3) = 1 of the 3 well learned
        (chosen,) = set(ids) - {2, 3, 5}
        seen.add(chosen)
        assert weights.tolist() == [2.0 if i == chosen else 1.0 for i in range(6)]  # 1 / keep_ratio
    assert seen == {0, 1, 4}  # drawn at random among the well learned
    kept, weights = prune(scores, 0.95, torch.Generator().manual_seed(0))  # int(0.1 x 3) = 0 kept
    assert sorted(kept.tolist()) == [2, 3, 5] and weights.tolist() == [1.0] * 6


def test_equal_scores_prune_nothing():
    kept, weights = prune(torch.full((10,), 3.0), 0.5, torch.Generator().manual_seed(0))
    assert sorted(kept.tolist()) == list(range(10)) and weights.tolist() == [1.0] * 10


@pytest.mark.parametrize("total, anneal, last_pruned", [(10, 0.875, 8), (8, 0.875, 7), (4, 0.5, 2), (3, 1.0, 2)])
def test_epochs_up_to_anneal_times_e_prune(total, anneal, last_pruned):
    assert [e for e in range(total) if prunes(e, total, anneal)] == list(range(last_pruned + 1))


def sampler(prune_ratio=0.5, anneal=0.5, seed=0):
    cfg = build_config({"infobatch": {"prune_ratio": prune_ratio, "anneal": anneal}}).infobatch
    return InfoBatchSampler(torch.arange(40), 4, cfg, torch.Generator().manual_seed(seed))


def test_sampler_trains_the_kept_samples_weighted_and_records_their_losses():
    s = sampler()
    assert s.epoch_steps(0, 4) == 10  # all scores 3: nothing below the mean
    for _ in range(10):
        idx = s.next()
        s.record(None, idx.float() / 40, idx)  # sample i's loss is i / 40: 0..19 are below the mean
    assert s.scores.tolist() == pytest.approx([i / 40 for i in range(40)])
    steps = s.epoch_steps(1, 4)  # keeps 20 above the mean + int(0.5 x 20)
    trained = torch.cat([s.next() for _ in range(steps)])
    assert steps == 30 // 4 and len(set(trained.tolist())) == 28  # drop_last: 7 batches of 4
    assert s.weights[20:].tolist() == [1.0] * 20 and sorted(set(s.weights[:20].tolist())) == [1.0, 2.0]
    assert s.pruned == 10
    assert s.epoch_steps(3, 4) == 10 and s.weights.tolist() == [1.0] * 40  # e = 3 > 0.5 x 4: all data


def test_sampler_state_resumes_the_same_epochs():
    a = sampler(seed=3)
    a.epoch_steps(0, 4)
    for _ in range(10):
        idx = a.next()
        a.record(None, idx.float(), idx)
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in a.state_dict().items()}
    b = sampler(seed=99)
    b.load_state_dict(state)
    assert a.epoch_steps(1, 4) == b.epoch_steps(1, 4)
    assert torch.equal(a.order, b.order) and torch.equal(a.weights, b.weights)
