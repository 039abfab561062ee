"""Host syncs (device -> host reads) of whole training runs, per strategy, counted on any device.

Counts with tests/sync_counter.py (a TorchFunctionMode plus a TorchDispatchMode: `.item()`, `.tolist()`,
`bool(t)`, `.cpu()`, `_local_scalar_dense`, `nonzero`, mask indexing, ...) over `Trainer.run()` on digits
(test_resnet, 1437 training samples) and prints a Markdown table. On the CPU nothing waits, but the
calls are the same ones a GPU run makes.

    python bench/bench_syncs.py                       # batch 64 (22 steps an epoch), 3 epochs
    python bench/bench_syncs.py --batch 32 --epochs 2
    PYTHONPATH=/tmp/before python bench/bench_syncs.py   # another checkout's package, e.g. before a change
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sync_counter import SyncCounter  # noqa: E402

from tune_hardbatch.training.config import build_config  # noqa: E402
from tune_hardbatch.training.loop import Trainer  # noqa: E402

STRATEGIES = {
    "plain": {},
    "delta 1": {"hard_batch": {"delta": 1.0}},
    "delta 0.5": {"hard_batch": {"delta": 0.5}},
    "trim linear": {"trim": {"schedule": "linear", "p_end": 0.3}},
    "step-wise A-C-O": {"stepwise": {"fractions": "A-C-O"}},
    "all three": {"hard_batch": {"delta": 0.5}, "trim": {"schedule": "linear", "p_end": 0.5},
                  "stepwise": {"fractions": "A-C-O"}},
}


def count(mapping: dict, batch: int, epochs: int) -> dict:
    cfg = build_config({"device": "cpu", "epochs": epochs, "optim": {"batch_size": batch}, **mapping})
    trainer = Trainer(cfg)
    with SyncCounter() as syncs:
        reports = list(trainer.run())
    return {"steps": reports[-1]["backprops"], "reports": len(reports), "syncs": syncs.total,
            "by_op": dict(syncs.by_op), "where": dict(syncs.where)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny ops: one thread is steadier on shared cores
    print(f"torch {torch.__version__}, digits, test_resnet, batch {args.batch}, {args.epochs} epochs\n")
    print("| strategy | steps | reports | syncs | syncs per report | by op | where (file:line) |")
    print("|---|---|---|---|---|---|---|")
    for name, mapping in STRATEGIES.items():
        r = count(mapping, args.batch, args.epochs)
        print(f"| {name} | {r['steps']} | {r['reports']} | {r['syncs']} | {r['syncs'] / r['reports']:.0f} | "
              f"{r['by_op']} | {r['where']} |", flush=True)


if __name__ == "__main__":
    main()
