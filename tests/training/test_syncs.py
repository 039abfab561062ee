"""No host sync inside an epoch: the loop reads from the device once per report, for every
strategy and combination, counted over whole epochs on the CPU by `sync_counter.SyncCounter`.

The optimizer is the default SGD. (AdamW calls `.item()` on its step counters every step, which the
counter would see on the CPU; torch keeps those counters on the host unless `capturable`/`fused`, so on a
GPU they are no device read.)
"""

import pytest
import torch
from sync_counter import SyncCounter

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.data import load_dataset
from tune_hardbatch.training.loop import Trainer
from tune_hardbatch.training.strategies.registry import examples

# every registered strategy and its controls, and the seeds' three together
STRATEGIES = {**examples(), "all_three": {"hard_batch": {"delta": 0.5}, "trim": {"schedule": "linear", "p_end": 0.5},
                                          "stepwise": {"fractions": "A-C-O", "epochs": [2, 1, 2]}}}
READS_PER_REPORT = {"infobatch": 2}  # InfoBatch reads the number of well-learned samples to size an epoch
BASE = {"device": "cpu", "epochs": 2, "data": {"train_limit": 192}}  # 6 or 12 steps an epoch: fast
x = torch.arange(12.0)
m = x > 5

# (name, a call that reads from the device) -- each must count exactly one sync
SYNCING = {
    "item": lambda: x.sum().item(),
    "tolist": lambda: x.tolist(),
    "bool": lambda: bool(x.sum() > 0),
    "if_tensor": lambda: 1 if x[0] < x[1] else 0,
    "int": lambda: int(x[3]),
    "float": lambda: float(x[3]),
    "index_with_0d_tensor": lambda: x[torch.tensor(2)],
    "range_of_tensor": lambda: range(torch.tensor(3)),
    "mask_index": lambda: x[m],
    "mask_assign": lambda: x.clone().__setitem__(m, 0.0),
    "masked_select": lambda: x.masked_select(m),
    "nonzero": lambda: m.nonzero(),
    "where_1arg": lambda: torch.where(m),
    "unique": lambda: x.unique(),
    "repeat_interleave": lambda: x.repeat_interleave(torch.ones(12, dtype=torch.long)),
    "equal": lambda: torch.equal(x, x),
    "allclose": lambda: torch.allclose(x, x),
    "cpu": lambda: x.cpu(),
    "to_cpu": lambda: x.to("cpu"),
    "numpy": lambda: x.numpy(),
    "contains": lambda: 3.0 in x,
    "format": lambda: f"{x.sum():.2f}",
}
# device work that needs no host read, as the hot loop does it
ASYNC = {
    "long_index": lambda: x[torch.tensor([1, 2])],
    "python_index": lambda: x[3],
    "topk_sort": lambda: (x.topk(3), torch.sort(x, descending=True, stable=True)),
    "index_copy": lambda: x.clone().index_copy_(0, torch.tensor([1]), torch.tensor([5.0])),
    "mask_arithmetic": lambda: torch.where(m, x, 0.0).sum() + (x == 3).sum(),
    "repeat_interleave_sized": lambda: x.repeat_interleave(torch.ones(12, dtype=torch.long), output_size=12),
    "shapes": lambda: (len(x), x.numel(), x.shape[0]),
    "randperm": lambda: torch.randperm(10, generator=torch.Generator().manual_seed(0)),
}


@pytest.mark.parametrize("name", list(SYNCING))
def test_counter_sees_each_kind_of_host_read_once(name):
    with SyncCounter() as syncs:
        SYNCING[name]()
    assert syncs.total == 1, dict(syncs.by_op)
    assert syncs.where.most_common(1)[0][0].startswith("test_syncs.py:")


def test_counter_ignores_device_work_that_needs_no_host_read():
    with SyncCounter() as syncs:
        for call in ASYNC.values():
            call()
    assert syncs.total == 0, dict(syncs.by_op)


@pytest.fixture(scope="module")
def digits():
    """The 192 digits once, and one torch thread: tiny ops on shared cores run steadier and faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_dataset(build_config(BASE).data, 0, "cpu")
    torch.set_num_threads(threads)


def count_run(digits, mapping: dict, batch: int):
    """(syncs during Trainer.run(), reports, steps) of one run."""
    trainer = Trainer(build_config({**BASE, **mapping, "optim": {"batch_size": batch}}), dataset=digits)
    with SyncCounter() as syncs:
        reports = list(trainer.run())
    return syncs, len(reports), reports[-1]["backprops"]


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_no_host_sync_inside_an_epoch_one_per_report(digits, name):
    big = count_run(digits, STRATEGIES[name], 32)
    small = count_run(digits, STRATEGIES[name], 16)  # twice the steps, the same reports
    (syncs_b, reports_b, steps_b), (syncs_s, reports_s, steps_s) = big, small
    assert steps_s > steps_b and reports_s == reports_b
    for syncs, reports in ((syncs_b, reports_b), (syncs_s, reports_s)):
        assert syncs.total <= READS_PER_REPORT.get(name, 1) * reports, (dict(syncs.by_op), dict(syncs.where))
    assert syncs_s.total == syncs_b.total  # does not grow with the number of steps
