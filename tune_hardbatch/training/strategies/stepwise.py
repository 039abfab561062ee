"""Step-wise progressive data (Prasad et al., "Rethinking of Deep Models Parameters with Respect to Data
Distribution"): stages train on nested random subsets of growing size, each with its own epochs, batch
multiplier and learning-rate multiplier; weights and optimizer state carry over, the LR schedule restarts.

Its whole effect is the stage plan (`plan.make_plan`) and the subsets below, which every run takes (one
stage on a permutation of all data without step-wise), so its strategy object has no per-step hook.
"""

from __future__ import annotations

import torch

from .base import Strategy
from .plan import Stage, stage_sizes


def nested_subsets(num_samples: int, plan: list[Stage], generator: torch.Generator) -> list[torch.Tensor]:
    """One seeded permutation; stage i takes its first floor(f_i * M) samples (so subsets are nested)."""
    perm = torch.randperm(num_samples, generator=generator, device=generator.device)
    return [perm[:size] for size in stage_sizes(num_samples, plan)]


class Stepwise(Strategy):
    """The stages come from the plan; nothing to decide per step."""
