"""Training: one run of one config, and everything it needs. Knows nothing of Ray, MLflow or searches.

- `config`: the one frozen training config (defaults -> YAML -> --set; each declared strategy's section);
- `datasets`, `data`, `augment`: the dataset registry, decoded uint8 tensors on the device, batched
  augmentation; `models`: timm's models with the CIFAR stem; `schedules`: stateless LR and trimming schedules;
- `inputs`: what a config needs of its data and model, checked before anything trains;
- `loop`: the training loop (`Trainer`), which calls its strategies' hooks and names none of them;
  `run`: one run with files and a progress bar (`tune-hardbatch train`); `correctness`: a run's
  per-example test correctness as a file (numpy only);
- `strategies/`: the data-selection strategies, their declarations and registry.

May import: `errors`, `metrics`, `output.formats`, `output.plots` (below it); never search, verdict,
tracking or ray_backend. Importing this package imports nothing (config and the strategies' declarations
load without torch).
"""
