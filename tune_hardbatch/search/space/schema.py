"""The search-space file's sections, their keys and defaults, and the names of a search's files.

Pure data: every other room of `space/` (and `search/prepare/`, the search side) reads its constants here.
"""

from __future__ import annotations

from pathlib import Path

SPACE_DIR = Path(__file__).resolve().parents[2] / "search_spaces"
DEFAULT_SPACE = SPACE_DIR / "default.yaml"
RESULTS_FILE = "results.csv"
SPACE_FILE = "search_space.yaml"
BEST_FILE = "best_config.yaml"
CONFIRM_DIR = "confirm"  # the confirmation phase's Ray Tune experiment, inside the search's directory
ARMS_FILE = "confirm_arms.json"  # the arms chosen for confirmation (fixed once chosen: --resume reads them)
CONFIRM_RESULTS_FILE = "confirm_results.csv"

SECTIONS = ("base", "space", "arms", "search", "confirm", "resources", "tracking", "run")
KINDS = ("uniform", "loguniform", "int", "choice", "grid")
SEARCHERS = ("optuna", "random", "grid")
SCHEDULERS = ("halving", "fifo")  # synchronous successive halving per arm (`search.rungs`), or none
METRICS = ("val_top1", "val_top5", "val_loss", "test_top1", "test_top5", "test_loss", "train_top1", "train_loss",
           "train_loss_full", "convergence_epoch", "epochs_to_target")
MINIMISED = ("val_loss", "test_loss", "train_loss", "train_loss_full", "convergence_epoch", "epochs_to_target")
TEST_METRICS = ("test_top1", "test_top5", "test_loss", "epochs_to_target")  # read off the test set
VAL_METRICS = ("val_top1", "val_top5", "val_loss")
STATUSES = ("finished", "stopped_early", "diverged", "failed")
