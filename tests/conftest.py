"""Shared pytest fixtures."""

import collections
import os
import tarfile
from pathlib import Path, PurePosixPath

import pytest

# Local Ray clusters in tests: no token auth, no usage reporting (the machine has no internet).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# --- cifar_subset: a small real CIFAR-10 JPEG ImageFolder (shared by data/train tests) -------------

_CIFAR_PER_CLASS = {"train": 100, "test": 20}


@pytest.fixture(scope="session")
def cifar_subset(tmp_path_factory) -> Path:
    """Path to `<tmp>/train/<class>/*.jpg` (100 per class) and `<tmp>/test/<class>/*.jpg` (20 per class).

    Taken from the CIFAR-10 JPEG archive in `$TUNE_HARDBATCH_CIFAR_TAR` or `<repo>/../shared/data/`;
    the test is skipped when neither exists. The archive is read once, extracting only the subset.
    """
    env = os.environ.get("TUNE_HARDBATCH_CIFAR_TAR")
    repo = Path(__file__).resolve().parent.parent
    archive = Path(env) if env else repo.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"CIFAR-10 JPEG archive not found at {archive}")
    out = tmp_path_factory.mktemp("cifar_subset")
    counts = collections.Counter()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) != 4 or parts[1] not in _CIFAR_PER_CLASS:
                continue
            _, split, cls, name = parts
            if counts[split, cls] >= _CIFAR_PER_CLASS[split]:
                continue
            counts[split, cls] += 1
            dest = out / split / cls / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(tar.extractfile(member).read())
            if len(counts) == 20 and all(counts[s, c] == _CIFAR_PER_CLASS[s] for s, c in counts):
                break
    return out
