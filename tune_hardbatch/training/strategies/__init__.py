"""The data-selection strategies: each a module of pure functions plus a thin `base.Strategy` object whose
hooks the training loop calls (it names none of them), and one torch-free `declaration.Declaration` that
tells the rest of the tool everything else about it.

- `hard_batch`: hard mini-batch selection (delta) and its random control; `trim`: mini-batch trimming (p)
  and its random control; `stepwise`: step-wise progressive data (splits); `selective_backprop`: Selective
  Backprop; `infobatch`: InfoBatch (the implementations, with torch);
- `base`: the hooks, the sampler protocol, the compute tally, plain reshuffled SGD and their composition;
- torch-free: `declaration` (what a strategy declares), `catalog` (the built-in declarations and their
  config sections), `registry` (the declarations in order and what is derived from them), `plugins`
  (strategies from outside the package), `labels` (a config's label and family), `plan` (stage plans).

Nothing is imported here, so the torch-free modules load without torch.
"""
