"""tune-hardbatch: does training on hard samples help? Find out by hyperparameter search."""

__version__ = "0.1.0"
