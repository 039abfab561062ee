"""`datasets`: one registry of dataset names that config validation, the input checks, augmentation and the
loaders all read."""

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.training import data
from tune_hardbatch.training.augment import augment_mode
from tune_hardbatch.training.config import CHOICES, DataConfig, build_config
from tune_hardbatch.training.datasets import DATASETS, NAMES


def test_every_registered_name_has_a_loader_and_is_what_validation_accepts():
    assert set(data._LOADERS) == set(DATASETS)
    assert CHOICES["data.name"] == NAMES
    with pytest.raises(UserError, match="data.name: got 'cifar11'; allowed: digits, cifar10, cifar100, stl10"):
        build_config(None, {"data.name": "cifar11"})


def test_a_dataset_that_needs_a_root_is_refused_without_one():
    assert [n for n, info in DATASETS.items() if info.needs_root] == ["imagefolder"]
    with pytest.raises(UserError, match="data.root: imagefolder needs data.root"):
        build_config(None, {"data.name": "imagefolder"})


@pytest.mark.parametrize("name, flips", [("digits", False), ("mnist", False), ("svhn", False),
                                         ("fashion_mnist", True), ("cifar10", True)])
def test_digit_data_is_never_flipped(name, flips):
    assert augment_mode(DataConfig(name=name)) == (True, flips)


def test_torchvision_datasets_name_their_files_and_layout():
    for name, info in DATASETS.items():
        assert (info.source == "torchvision") == (info.files is not None), name
        assert (info.layout is not None) == (info.source in ("torchvision", "sklearn")), name
