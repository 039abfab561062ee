"""Loss-threshold selection: back-propagate only the samples whose loss is above `factor` x a running mean
of the batch losses (one knob). A tune-hardbatch strategy from outside the package.

This module is its declaration and is torch-free (the tool reads it before anything trains); the
implementation, with torch, is `loss_threshold.strategy`, imported only when a run trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tune_hardbatch.training.ranges import Range
from tune_hardbatch.training.strategies.declaration import Declaration


@dataclass(frozen=True)
class LossThresholdConfig:
    factor: Optional[float] = None  # keep samples with loss > factor x running mean; None: off


DECLARATION = Declaration(
    "loss_threshold", LossThresholdConfig, gate="factor", off=(None,),
    impl="loss_threshold.strategy:LossThreshold",
    label=lambda s: f"lossthr={s.factor:g}", family=lambda s: "lossthr",
    ranges={"factor": Range(0, 10, low_open=True, null="off", why="the multiple of the running mean loss")},
    sets_loss=True,  # its mean over the kept samples is the loss: it cannot combine with trimming
    examples={"loss_threshold": {"loss_threshold": {"factor": 1.0}}},
)
