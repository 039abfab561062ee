"""The three data-selection strategies: pure functions plus thin objects that apply them.

- `hard_batch`: hard mini-batch selection (delta), `trim`: mini-batch trimming (p), `stepwise`: step-wise
  progressive data (splits); `plan` and `rules` are their torch-free parts (stage plans, config rules).

Nothing is imported here, so `strategies.plan` and `strategies.rules` load without torch.
"""
