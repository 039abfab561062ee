"""The strategies' config rules (delta, trimming, step-wise), with no torch: `config.validate` calls them."""

from __future__ import annotations

from ..errors import UserError
from . import plan


def validate_strategies(cfg) -> None:
    """Strategy rules for a Config; raises UserError naming the key."""
    delta = cfg.hard_batch.delta
    if delta is not None and not 0 < delta <= 1:
        raise UserError("hard_batch.delta", f"got {delta}; allowed: 0 < delta <= 1, or null (reshuffled SGD)")
    t = cfg.trim
    for key in ("p_start", "p_end"):
        p = getattr(t, key)
        if not 0 < p <= 1:
            raise UserError(f"trim.{key}", f"got {p}; allowed: 0 < p <= 1")
    if t.schedule in ("linear", "cosine", "step") and t.p_end > t.p_start:
        raise UserError("trim.p_end", f"got {t.p_end} > trim.p_start {t.p_start}; the {t.schedule} "
                        "schedule decreases p (keep fewer samples later): p_end <= p_start")
    if not 0 < t.step_at < 1:
        raise UserError("trim.step_at", f"got {t.step_at}; allowed: 0 < step_at < 1")
    plan.validate(cfg)
