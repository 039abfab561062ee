"""The strategies' config rules, with no torch: `config.validate` calls them."""

from __future__ import annotations

from ...errors import UserError
from . import plan


def validate_strategies(cfg) -> None:
    """Strategy rules for a Config; raises UserError naming the key."""
    _hard_batch(cfg)
    _trim(cfg.trim)
    plan.validate(cfg)
    _selective_backprop(cfg.selective_backprop)
    _infobatch(cfg)
    _compute_budget(cfg)


def _hard_batch(cfg) -> None:
    delta = cfg.hard_batch.delta
    if delta is not None and not 0 < delta <= 1:
        raise UserError("hard_batch.delta", f"got {delta}; allowed: 0 < delta <= 1, or null (reshuffled SGD)")
    if cfg.hard_batch.select == "random" and delta is None:
        raise UserError("hard_batch.select", "random needs hard_batch.delta (the fraction of batches drawn); "
                        "allowed with delta null: hardest")


def _trim(t) -> None:
    for key in ("p_start", "p_end"):
        p = getattr(t, key)
        if not 0 < p <= 1:
            raise UserError(f"trim.{key}", f"got {p}; allowed: 0 < p <= 1")
    if t.schedule in ("linear", "cosine", "step") and t.p_end > t.p_start:
        raise UserError("trim.p_end", f"got {t.p_end} > trim.p_start {t.p_start}; the {t.schedule} "
                        "schedule decreases p (keep fewer samples later): p_end <= p_start")
    if not 0 < t.step_at < 1:
        raise UserError("trim.step_at", f"got {t.step_at}; allowed: 0 < step_at < 1")
    if t.select == "random" and t.schedule == "none":
        raise UserError("trim.select", "random needs a trim.schedule (the fraction p drawn); "
                        "allowed with trim.schedule none: largest")


def _selective_backprop(s) -> None:
    if s.keep is not None and not 0 < s.keep <= 1:
        raise UserError("selective_backprop.keep", f"got {s.keep}; allowed: 0 < keep <= 1, or null (off)")
    if not 0 <= s.start < 1:
        raise UserError("selective_backprop.start", f"got {s.start}; allowed: 0 <= start < 1")
    if not s.start < s.end <= 1:
        raise UserError("selective_backprop.end", f"got {s.end}; allowed: selective_backprop.start < end <= 1")
    if s.interrupt < 0:
        raise UserError("selective_backprop.interrupt", f"got {s.interrupt}; allowed: an integer >= 0 "
                        "(0: never interrupt)")


def _infobatch(cfg) -> None:
    ib = cfg.infobatch
    if ib.prune_ratio is not None and not 0 <= ib.prune_ratio < 1:
        raise UserError("infobatch.prune_ratio", f"got {ib.prune_ratio}; allowed: 0 <= prune_ratio < 1, "
                        "or null (off)")
    if not 0 < ib.anneal <= 1:
        raise UserError("infobatch.anneal", f"got {ib.anneal}; allowed: 0 < anneal <= 1")
    if ib.prune_ratio is None:
        return
    if cfg.hard_batch.delta is not None:
        raise UserError("infobatch.prune_ratio", "InfoBatch chooses each epoch's samples itself; allowed with "
                        "hard_batch.delta set: null (hard-batch selection chooses the batches)")
    if cfg.stepwise.fractions is not None:
        raise UserError("infobatch.prune_ratio", "InfoBatch prunes epochs of the whole training set; allowed "
                        "with stepwise.fractions set: null (step-wise stages choose their own subsets)")


def _compute_budget(cfg) -> None:
    budget = cfg.compute_budget
    if budget is None:
        return
    if not budget > 0:
        raise UserError("compute_budget", f"got {budget}; allowed: a number > 0 (compute-equivalents), or null")
    on = [key for key, off in (("hard_batch.delta", cfg.hard_batch.delta is None),
                               ("trim.schedule", cfg.trim.schedule == "none"),
                               ("stepwise.fractions", cfg.stepwise.fractions is None),
                               ("selective_backprop.keep", cfg.selective_backprop.keep in (None, 1.0)),
                               ("infobatch.prune_ratio", cfg.infobatch.prune_ratio is None)) if not off]
    if on:
        raise UserError("compute_budget", f"is the budget of plain SGD only, but {on[0]} is set; allowed: null "
                        f"with {on[0]} set")
