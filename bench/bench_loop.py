"""Loop throughput: the project's loop against a minimal hand-written loop, measured in the same run.

For each model setting, the baseline is a hand-written loop (same model, batch, bf16 on CUDA,
channels_last, data resident on the device, a fresh permutation per epoch, no augmentation) and the
project's `Trainer` runs every registered strategy (`strategies.registry`): plain, delta 0.5 and its random
control, trimming p = 0.5 and its random control, step-wise A-B-C-D-O (batch multipliers 1, so only the
loop is compared), Selective Backprop (keep 0.5, active throughout) and InfoBatch (prune 0.5), with the same
batch and no augmentation. Steady-state img/s is samples forwarded / training time after the first
(warm-up) epoch; evaluation is excluded. For the strategies that skip work (Selective Backprop, InfoBatch)
the figure their users care about is the wall clock: `train_s` (the whole run's training time) against
plain's, beside their compute (`compute_equiv`) against plain's.

    python bench/bench_loop.py                      # the issue's H100 settings (CIFAR-stem ResNet-18 @32, timm resnet18 @128)
    python bench/bench_loop.py --quick              # a CPU-sized version (test_resnet, batch 128)
    python bench/bench_loop.py --data /path/to/cifar10-jpeg   # real CIFAR-10 instead of synthetic images
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.data import load_dataset
from tune_hardbatch.training.loop import Trainer, make_optimizer, resolve_device
from tune_hardbatch.training.models import create_model
from tune_hardbatch.training.strategies.registry import declarations

STRATEGIES = {
    "plain": {},
    "delta_0.5": {"hard_batch": {"delta": 0.5}},
    "trim_0.5": {"trim": {"schedule": "constant", "p_end": 0.5}},
    "stepwise_ABCDO": {"stepwise": {"fractions": "A-B-C-D-O", "epochs": [2, 2, 2, 2, 2],
                                    "batch_multipliers": [1, 1, 1, 1, 1]}},
    "delta_0.5_random": {"hard_batch": {"delta": 0.5, "select": "random"}},
    "trim_0.5_random": {"trim": {"schedule": "constant", "p_end": 0.5, "select": "random"}},
    "sb_0.5": {"selective_backprop": {"keep": 0.5, "start": 0.0, "end": 1.0, "interrupt": 0}},
    "infobatch_0.5": {"infobatch": {"prune_ratio": 0.5}},
}
# every registered strategy is measured
assert all(any(d.on(build_config(m)) for m in STRATEGIES.values()) for d in declarations()), "add it above"
SETTINGS = {  # name -> (model config, image_size)
    "cifar_resnet18_32px": ({"name": "resnet18", "cifar_stem": True}, None),
    "resnet18_128px": ({"name": "resnet18", "cifar_stem": False}, 128),
}
QUICK = {"test_resnet_32px": ({"name": "test_resnet", "cifar_stem": True}, None)}


def base_mapping(args, model, image_size) -> dict:
    data = {"name": "imagefolder", "root": args.data} if args.data else \
        {"name": "synthetic", "synthetic_train": args.steps * args.batch, "synthetic_test": args.batch}
    data.update({"image_size": image_size, "augment": "none", "train_limit": args.steps * args.batch})
    return {"device": args.device, "epochs": args.epochs, "data": data, "model": model,
            "optim": {"batch_size": args.batch, "schedule": "onecycle", "lr": 0.2}}


def hand_written(cfg, dataset, epochs: int) -> float:
    """The minimal loop: index, normalise, (resize), forward, loss, backward, step. Returns img/s."""
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    side = cfg.data.image_size or dataset.train_x.shape[-1]
    model = create_model(cfg.model, dataset.num_classes, dataset.in_chans, side).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    opt = make_optimizer(cfg.optim, model)
    x_all, y_all, b = dataset.train_x, dataset.train_y, cfg.optim.batch_size
    n = len(y_all) // b
    rates = []
    for _ in range(epochs):
        perm = torch.randperm(len(y_all), device=device)
        _sync(device)
        start = time.perf_counter()
        for i in range(n):
            idx = perm[i * b : (i + 1) * b]
            x = x_all[idx].float().div_(255).sub_(0.5).div_(0.25)
            if cfg.data.image_size:
                x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                out = model(x)
            loss = F.cross_entropy(out.float(), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        rates.append(n * b / (time.perf_counter() - start))
    return statistics.median(rates[1:])


def project(cfg, dataset) -> tuple[float, dict]:
    """The project's Trainer: (steady-state img/s over all reports after the first, the last report)."""
    trainer = Trainer(cfg, dataset=dataset)
    reports = list(trainer.run())
    first, last = reports[0], reports[-1]
    return (last["samples_forward"] - first["samples_forward"]) / (last["time_train_s"] - first["time_train_s"]), last


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", help="an ImageFolder root (train/, test/); default synthetic 3x32x32")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="CPU-sized: test_resnet, batch 128, 15 steps")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    settings = SETTINGS
    if args.quick:
        settings, args.batch, args.steps, args.epochs = QUICK, 128, 15, 3
    results = []
    for name, (model, size) in settings.items():
        cfg = build_config(base_mapping(args, model, size))
        dataset = load_dataset(cfg.data, cfg.seed, resolve_device(cfg.device))
        baseline = hand_written(cfg, dataset, args.epochs)
        print(f"{name}: hand-written loop {baseline:,.0f} img/s", flush=True)
        plain_last = None
        for strategy, mapping in STRATEGIES.items():
            scfg = build_config({**base_mapping(args, model, size), **mapping})
            rate, last = project(scfg, dataset)
            plain_last = plain_last or last
            row = {"setting": name, "strategy": strategy, "img_per_s": rate, "baseline": baseline,
                   "ratio": rate / baseline, "train_s": last["time_train_s"], "compute_equiv": last["compute_equiv"],
                   "time_vs_plain": last["time_train_s"] / plain_last["time_train_s"],
                   "compute_vs_plain": last["compute_equiv"] / plain_last["compute_equiv"]}
            results.append(row)
            print(f"  {strategy:16s} {rate:10,.0f} img/s  ratio {rate / baseline:.3f}  train {row['train_s']:.1f} s "
                  f"({row['time_vs_plain']:.2f} x plain) for {row['compute_vs_plain']:.2f} x its compute", flush=True)
        plain = next(r for r in results if r["setting"] == name and r["strategy"] == "plain")["img_per_s"]
        delta = next(r for r in results if r["setting"] == name and r["strategy"] == "delta_0.5")["img_per_s"]
        print(f"  delta 0.5 / plain per iteration: {delta / plain:.3f} (reference DyBAT code: 0.32)", flush=True)
    device = resolve_device(args.device)
    print(json.dumps({"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                      "torch": torch.__version__, "results": results}))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
