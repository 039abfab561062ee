"""Loss-threshold selection's implementation: a pure function and the thin strategy object."""

from __future__ import annotations

import torch

from tune_hardbatch.training.strategies.base import Strategy

MOMENTUM = 0.9  # the running mean forgets a batch in about 10 steps


def threshold_loss(losses: torch.Tensor, threshold: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss of the samples above `threshold`, how many): both stay on the device (no host read)."""
    mask = losses.detach() > threshold
    kept = mask.sum()
    return (losses * mask).sum() / kept.clamp(min=1), kept


class LossThreshold(Strategy):
    def __init__(self, cfg, context=None):
        self.factor = cfg.loss_threshold.factor
        self.mean = None  # running mean of the batch losses, a device scalar

    def reduce(self, terms: torch.Tensor):
        batch = terms.detach().mean()
        self.mean = batch if self.mean is None else MOMENTUM * self.mean + (1 - MOMENTUM) * batch
        return threshold_loss(terms, self.factor * self.mean)  # the count: a device tensor, read with the report

    def state_dict(self) -> dict:
        return {"mean": self.mean}

    def load_state_dict(self, state: dict) -> None:
        self.mean = state.get("mean")
