"""The data-selection strategies: each a module of pure functions plus a thin `base.Strategy` object whose
hooks the training loop calls (it names none of them); `registry` says when each is on.

- `hard_batch`: hard mini-batch selection (delta) and its random control, and reshuffled SGD;
  `trim`: mini-batch trimming (p) and its random control; `stepwise`: step-wise progressive data (splits);
  `selective_backprop`: Selective Backprop; `infobatch`: InfoBatch;
- `base`: the hooks and the compute tally; `registry`: the strategies, their order and test examples;
- `plan` and `rules`: the torch-free parts (stage plans and compute budgets, config rules).

Nothing is imported here, so `strategies.plan` and `strategies.rules` load without torch.
"""
