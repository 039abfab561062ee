"""The training loop: stages of epochs of back-propagations, a report after each epoch-equivalent.

`Trainer(cfg).run()` yields one report dict per epoch of the strategy's own plan (every N
back-propagations; every stage epoch for step-wise runs; every pruned epoch for InfoBatch). The loop asks
its strategies (`strategies.base.Strategies`, built from the declarations in `strategies.registry`) for
the sampler of each stage, which samples of a batch to train and which loss to back-propagate; it names
none of them. Between reports the caller may take `state_dict()` and a later
`Trainer(cfg).load_state_dict(state)` continues exactly there.
Each report evaluates, in eval() mode, the validation set (when there is one: `val_*`, else NaN), the test
set (`test_*`) and, with `convergence.full_pass`, the whole training set (`train_loss_full`, which the
convergence epoch then uses instead of `train_loss`). `test_correct()` gives the same evaluation's
per-example top-1 correctness on the test set (a confirmation run keeps its final one: `correctness`).
The host reads from the device once per report, never inside an epoch (tests/training/test_syncs.py counts it).
This module knows nothing of Ray or MLflow.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..metrics import NAN, convergence_epoch, epochs_to_target
from .augment import Augment
from .data import Dataset, load_dataset
from .models import create_model, cudnn_benchmark
from .schedules import lr_at
from .strategies.base import Batch, Strategies, Tally
from .strategies.plan import make_plan
from .strategies.stepwise import nested_subsets


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device", "cuda was asked for but this machine has no usable CUDA GPU; "
                        "allowed here: auto, cpu")
    return torch.device(name)


class Clock:
    """Seconds between marks without a host sync of their own: CUDA events on a GPU, read after the
    report's sync (when they have completed); `time.perf_counter` on the CPU, which runs in step."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.marks: list = []
        self.mark()

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def seconds(self) -> list[float]:
        """Seconds between consecutive marks. Call it after the report's host read: on CUDA the last
        event has then completed, and the `synchronize` (there in case) returns at once."""
        pairs = list(zip(self.marks, self.marks[1:]))
        if self.cuda:
            self.marks[-1].synchronize()
            return [start.elapsed_time(end) / 1000 for start, end in pairs]
        return [end - start for start, end in pairs]


@dataclass
class Position:
    """Where the run is: everything needed (with the samplers and RNGs) to continue exactly."""

    stage: int = 0
    stage_epoch: int = 0  # epochs finished in the current stage
    epoch: int = 0  # epochs finished in all stages
    backprops: int = 0
    samples_forward: int = 0
    samples_backward: int = 0
    samples_with_grad: int = 0
    time_train_s: float = 0.0
    time_eval_s: float = 0.0
    finished: bool = False
    diverged: bool = False


class Trainer:
    def __init__(self, cfg, dataset: Optional[Dataset] = None):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.cuda = self.device.type == "cuda"
        self.data = dataset if dataset is not None else load_dataset(cfg.data, cfg.seed, self.device)
        torch.manual_seed(cfg.seed)  # model initialisation
        side = cfg.data.image_size or self.data.train_x.shape[-1]
        self.model = create_model(cfg.model, self.data.num_classes, self.data.in_chans, side).to(self.device)
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = cudnn_benchmark(self.model, cfg.cudnn_benchmark)
        self.optimizer = make_optimizer(cfg.optim, self.model)
        self.augment = Augment(cfg.data, self.data.train_x, channels_last=self.cuda)
        self.num_train = len(self.data.train_y)  # M: after the validation split
        self.plan = make_plan(cfg, self.num_train)
        self.total_epochs = sum(st.epochs for st in self.plan)
        self.data_gen = torch.Generator(self.device).manual_seed(cfg.seed + 1)  # shuffles, augmentation
        part_gen = torch.Generator().manual_seed(cfg.seed)  # subsets, then the stages' partitions
        self.strategies = Strategies.build(cfg, part_gen, self.data_gen, self.device)
        self.samplers = self._make_samplers(part_gen)
        self.pos = Position()
        self.history: list[dict] = []

    def _make_samplers(self, part_gen: torch.Generator):
        """One sampler per stage, over nested subsets drawn from the seeded CPU generator `part_gen`."""
        samplers = []
        for st, subset in zip(self.plan, nested_subsets(self.num_train, self.plan, part_gen)):
            batch = self.cfg.optim.batch_size * st.batch_multiplier
            if len(subset) < batch:
                where = f"stage {st.index + 1} ({len(subset)} samples)" if len(self.plan) > 1 else \
                    f"the training set ({len(subset)} samples)"
                raise UserError("optim.batch_size", f"batch of {batch} is larger than {where}; "
                                "allowed: a batch size that gives at least one full batch")
            samplers.append(self.strategies.sampler(subset.to(self.device), batch, st.index))
        return samplers

    @property
    def planned_steps(self) -> int:
        """Back-propagations the plan asks for (epochs of N; a compute budget's own count)."""
        return sum(st.steps or s.num_batches * st.epochs for s, st in zip(self.samplers, self.plan))

    # -----------------------------------------------------------------------------------------------
    # The loop

    def run(self) -> Iterator[dict]:
        """Train to the end of the plan (or divergence), yielding a report per epoch.

        The host reads from the device once per report (the training and evaluation sums together); the
        steps in between only queue work, so the host never waits for the device inside an epoch.
        """
        self.model.train()
        while not self.pos.finished:
            st = self.plan[self.pos.stage]
            sampler = self.samplers[st.index]
            self.strategies.start_epoch(self.pos.epoch, self.total_epochs)
            steps = self._epoch_steps(st, sampler)
            tally = Tally()
            clock = Clock(self.device)
            train_sums, lr = self._train_epoch(st, sampler, steps, tally)
            clock.mark()
            eval_sums = self._eval_sums()
            clock.mark()
            pending = tally.pending()  # counts only the device knows (a threshold's mask)
            loss_sum, correct, *evals = torch.cat([train_sums, eval_sums, *pending]).tolist()  # the one sync
            tally.settle(evals[len(evals) - len(pending):])
            evals = evals[:len(evals) - len(pending)]
            train_s, eval_s = clock.seconds()
            self._advance(steps, tally, train_s, eval_s)
            yield self._report(st, tally, loss_sum / tally.backward, 100 * correct / tally.backward, lr, train_s,
                               self._eval_metrics(evals))

    def _epoch_steps(self, st, sampler) -> int:
        """Back-propagations of the coming report epoch: the sampler's (N, or fewer for a pruned epoch),
        and no more than a compute budget leaves."""
        return self._within_budget(st, sampler.epoch_steps(self.pos.epoch, self.total_epochs), sampler.num_batches)

    def _within_budget(self, st, steps: int, n: int) -> int:
        """`steps`, or what a compute budget has left of stage `st` when that is fewer (epochs of `n` steps)."""
        return steps if st.steps is None else min(steps, st.steps - self.pos.stage_epoch * n)

    def _lr(self, st, sampler, step: int, steps: int) -> float:
        """The stage's schedule at this step: by steps over a budget's count, else by epoch progress
        (step i of an epoch of s steps at (e + i / s) / e_total): equal to steps when epochs are equal,
        and still fully decayed at the end when a strategy shortens epochs."""
        peak, c = self.cfg.optim.lr * st.lr_multiplier, self.cfg.optim
        if st.steps is not None:
            return lr_at(c.schedule, self.pos.stage_epoch * sampler.num_batches + step, st.steps, peak, c.warmup)
        return lr_at(c.schedule, self.pos.stage_epoch * steps + step, st.epochs * steps, peak, c.warmup)

    def _train_epoch(self, st, sampler, steps: int, tally: Tally) -> tuple[torch.Tensor, float]:
        """`steps` back-propagations of stage `st`; (device sums [untrimmed loss x trained, correct], last
        lr). The strategies choose the samples and the loss; `tally` counts the compute.

        No host read: the sampler hands out device indices, the losses and counts stay on the device.
        """
        model, opt, strategies = self.model, self.optimizer, self.strategies
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        for i in range(steps):
            lr = self._lr(st, sampler, i, steps)
            for group in opt.param_groups:
                group["lr"] = lr
            idx = sampler.next()
            batch = Batch(self.augment.train(self.data.train_x[idx], self.data_gen), self.data.train_y[idx], idx)
            batch = strategies.select(batch, self._score, i, tally)
            with self._autocast():
                logits = model(batch.x)
            losses = self._losses(logits, batch.y)
            loss = strategies.loss(losses, batch.idx, tally)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            batch_loss = losses.detach().mean()
            sampler.record(batch_loss, losses.detach(), batch.idx)
            loss_sum += batch_loss * len(batch.y)
            correct += (logits.detach().argmax(1) == batch.y).sum()
        return torch.stack([loss_sum, correct.float()]), lr

    def _losses(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample training losses (float32 even under autocast)."""
        return F.cross_entropy(logits.float(), y, reduction="none", label_smoothing=self.cfg.optim.label_smoothing)

    @torch.no_grad()
    def _score(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample losses of a forward without gradient, the model as it is (a strategy's scoring pass)."""
        with self._autocast():
            return self._losses(self.model(x), y)

    def _advance(self, steps: int, tally: Tally, train_s: float, eval_s: float) -> None:
        pos = self.pos
        pos.backprops += steps
        pos.samples_forward += tally.forward
        pos.samples_backward += tally.backward
        pos.samples_with_grad += tally.with_grad
        pos.time_train_s += train_s
        pos.time_eval_s += eval_s
        pos.epoch += 1
        pos.stage_epoch += 1
        if pos.stage_epoch == self.plan[pos.stage].epochs:
            pos.stage, pos.stage_epoch = pos.stage + 1, 0
        pos.finished = pos.stage == len(self.plan)

    def _autocast(self):
        if self.cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def evaluate(self) -> dict:
        """Untrimmed loss, top-1 and top-5 (percent) on the validation and the whole test set (and
        `train_loss_full` on the training set), in eval() mode: the report's evaluation keys."""
        return self._eval_metrics(self._eval_sums().tolist())

    @torch.no_grad()
    def _eval_sums(self) -> torch.Tensor:
        """Device sums [loss, top-1 hits, top-5 hits] of validation, test and (with convergence.full_pass)
        training set, concatenated for the report's one host read; eval() mode, no drop_last."""
        d = self.data
        splits = [(d.val_x, d.val_y), (d.test_x, d.test_y)]
        if self.cfg.convergence.full_pass:
            splits.append((d.train_x, d.train_y))  # the eval transform: no augmentation
        self.model.eval()
        sums = torch.cat([self._split_sums(x, y) for x, y in splits])
        self.model.train()
        return sums

    @torch.no_grad()
    def test_correct(self) -> np.ndarray:
        """Top-1 correctness (a bool numpy array) of the model as it is on each test example, in the order of
        `data.test_y`: evaluated as the report's `test_top1` (eval() mode, the eval transform, autocast,
        batches of `eval_batch_size`), so its mean x 100 is that number. One host read; train() mode after."""
        self.model.eval()
        hits = [self._top(logits)[:, 0] == y for logits, y in self._eval_logits(self.data.test_x, self.data.test_y)]
        self.model.train()
        return torch.cat(hits).cpu().numpy() if hits else np.zeros(0, dtype=bool)

    def _eval_logits(self, x_all: torch.Tensor, y_all: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(float32 logits, labels) of each evaluation batch, the model in whatever mode the caller set."""
        size = self.cfg.eval_batch_size
        for i in range(0, len(y_all), size):
            with self._autocast():
                logits = self.model(self.augment.eval(x_all[i : i + size])).float()
            yield logits, y_all[i : i + size]

    def _top(self, logits: torch.Tensor) -> torch.Tensor:
        """The top-5 (or all, when fewer) classes of each row, best first: top-1 is column 0."""
        return logits.topk(min(5, self.data.num_classes), dim=1).indices

    def _split_sums(self, x_all: torch.Tensor, y_all: torch.Tensor) -> torch.Tensor:
        totals = torch.zeros(3, device=self.device)
        for logits, y in self._eval_logits(x_all, y_all):
            top = self._top(logits)
            totals += torch.stack([F.cross_entropy(logits, y, reduction="sum"),
                                   (top[:, 0] == y).sum().float(), (top == y[:, None]).any(1).sum().float()])
        return totals

    def _eval_metrics(self, sums) -> dict:
        """Host values of `_eval_sums` -> val_*/test_* (NaN for an empty split) and train_loss_full."""
        out = {}
        for i, (name, y) in enumerate((("val", self.data.val_y), ("test", self.data.test_y))):
            loss, top1, top5 = (float(v) / len(y) if len(y) else NAN for v in sums[3 * i : 3 * i + 3])
            out.update({f"{name}_loss": loss, f"{name}_top1": 100 * top1, f"{name}_top5": 100 * top5})
        out["train_loss_full"] = float(sums[6]) / self.num_train if len(sums) > 6 else NAN
        return out

    def _next_increment(self) -> float:
        """Epoch-equivalents the next report will load (0 after the last one), before any pruning."""
        if self.pos.finished:
            return 0.0
        st = self.plan[self.pos.stage]
        n = self.samplers[st.index].num_batches
        return self._within_budget(st, n, n) * self.cfg.optim.batch_size * st.batch_multiplier / self.num_train

    def _report(self, st, tally: Tally, train_loss: float, train_top1: float, lr: float, elapsed: float,
                evals: dict) -> dict:
        pos, cfg, m = self.pos, self.cfg, self.num_train
        pos.diverged = not math.isfinite(train_loss)
        pos.finished = pos.finished or pos.diverged
        # compute: a backward costs about two forwards, so one sample trained = 3 forward-equivalents
        compute = (pos.samples_forward + 2 * pos.samples_backward) / (3 * m)
        per_forward = (tally.forward + 2 * tally.backward) / (3 * tally.forward)  # this epoch's compute / forward
        report = {
            "epoch": pos.epoch,
            "epoch_equiv": pos.samples_forward / m,
            "compute_equiv": compute,
            # the rungs' clock: a rung at milestone m is decided at the first report whose asha_time reaches m,
            # the report whose compute is nearest m (also where a step-wise stage changes the step)
            "asha_time": compute + self._next_increment() * per_forward / 2,
            "backprops": pos.backprops,
            "samples_forward": pos.samples_forward,
            "samples_backward": pos.samples_backward,
            "samples_with_grad": pos.samples_with_grad,
            "train_loss": train_loss,
            "train_top1": train_top1,
            **evals,
            "lr": lr,
            **self.strategies.fields(),
            "stage": st.index + 1,
            "time_train_s": pos.time_train_s,
            "time_eval_s": pos.time_eval_s,
            "img_per_s": tally.forward / elapsed if elapsed > 0 else NAN,
            "diverged": int(pos.diverged),
        }
        self.history.append(report)
        curve = "train_loss_full" if cfg.convergence.full_pass else "train_loss"
        losses = [r[curve] for r in self.history]
        ees = [r["epoch_equiv"] for r in self.history]
        report["convergence_epoch"], report["converged"] = convergence_epoch(
            losses, ees, cfg.convergence.tol, cfg.convergence.patience, final=pos.finished)
        report["epochs_to_target"] = epochs_to_target([r["test_top1"] for r in self.history], ees,
                                                      cfg.target_top1)
        return report

    # -----------------------------------------------------------------------------------------------
    # Checkpointing

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "position": asdict(self.pos),
            "history": self.history,
            "samplers": [s.state_dict() for s in self.samplers],
            "strategies": self.strategies.state_dict(),
            "data_gen": self.data_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.cuda else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.pos = Position(**state["position"])
        self.history = list(state["history"])
        for sampler, s in zip(self.samplers, state["samplers"]):
            sampler.load_state_dict(s)
        self.strategies.load_state_dict(state.get("strategies", {}))
        self.data_gen.set_state(state["data_gen"])
        torch.set_rng_state(state["torch_rng"])
        if self.cuda and state["cuda_rng"] is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])


def make_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov, weight decay) or AdamW; no decay on norms and biases."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=cfg.lr)
