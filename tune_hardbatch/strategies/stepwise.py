"""Step-wise progressive data (Prasad et al., "Rethinking of Deep Models Parameters with Respect to Data
Distribution"): stages train on nested random subsets of growing size, each with its own epochs, batch
multiplier and learning-rate multiplier; weights and optimizer state carry over, the LR schedule restarts.
"""

from __future__ import annotations

import torch

from .plan import Stage, stage_sizes


def nested_subsets(num_samples: int, plan: list[Stage], generator: torch.Generator) -> list[torch.Tensor]:
    """One seeded permutation; stage i takes its first floor(f_i * M) samples (so subsets are nested)."""
    perm = torch.randperm(num_samples, generator=generator, device=generator.device)
    return [perm[:size] for size in stage_sizes(num_samples, plan)]
