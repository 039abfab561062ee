"""`inputs`: a config's data, batches and model checked before anything trains (one line each)."""

from __future__ import annotations

import time

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.inputs import Shape, check_inputs, data_shape


def cfg(**sets):
    return build_config(None, {"device": "cpu", **sets})


def test_known_shapes_without_decoding(tmp_path):
    assert data_shape(cfg().data) == Shape(1437, 1, 8, 8, 10)
    assert data_shape(cfg(**{"data.train_limit": 100}).data).num_train == 100
    synthetic = cfg(**{"data.name": "synthetic", "data.synthetic_shape": [3, 16, 20], "data.synthetic_train": 50})
    assert data_shape(synthetic.data) == Shape(50, 3, 16, 20, 10)


def test_training_set_size_is_counted_after_the_validation_split(tmp_path):
    from tune_hardbatch.training.data import load_dataset

    for sets in ({"data.val_fraction": 0.2}, {"data.val_fraction": 0.15, "data.train_limit": 300,
                                              "data.split_seed": 4}):
        c = cfg(**sets)
        assert data_shape(c.data).num_train == len(load_dataset(c.data, 0).train_y)  # exact for digits
    (tmp_path / "cifar-10-batches-py").mkdir()
    c = cfg(**{"data.name": "cifar10", "data.root": str(tmp_path), "data.val_fraction": 0.1})
    assert data_shape(c.data).num_train == 45000  # balanced classes: 5000 - 500 each
    # the batch check sees the smaller set: 1437 -> 1150 training samples hold no batch of 1200
    check_inputs([cfg(**{"optim.batch_size": 1200})])
    with pytest.raises(UserError, match=r"the training set \(1150 samples after data.val_fraction\)"):
        check_inputs([cfg(**{"optim.batch_size": 1200, "data.val_fraction": 0.2})])


def test_missing_torchvision_files_name_the_root(tmp_path):
    c = cfg(**{"data.name": "cifar10", "data.root": str(tmp_path)})
    with pytest.raises(UserError, match=r"cifar-10-batches-py") as info:
        data_shape(c.data)
    assert info.value.key == "data.root"
    assert data_shape(c.data, local=False) is None  # a cluster's workers may have them
    (tmp_path / "cifar-10-batches-py").mkdir()
    assert data_shape(c.data) == Shape(50000, 3, 32, 32, 10)


def test_image_folder_shape_from_its_listing(cifar_subset):
    c = cfg(**{"data.name": "imagefolder", "data.root": str(cifar_subset)})
    assert data_shape(c.data) == Shape(1000, 3, 32, 32, 10)
    sized = cfg(**{"data.name": "imagefolder", "data.root": str(cifar_subset), "data.image_size": 64})
    assert data_shape(sized.data) == Shape(1000, 3, 64, 64, 10)


@pytest.mark.parametrize("sets, key, fragment", [
    ({"optim.batch_size": 2000}, "optim.batch_size", "the training set (1437 samples)"),
    ({"data.train_limit": 100, "stepwise.fractions": "A-O"}, "optim.batch_size", "stage 1 (20 of 100"),
    ({"stepwise.fractions": "A-B-O", "stepwise.batch_multipliers": [1, 3, 1], "optim.batch_size": 200},
     "optim.batch_size", "a batch of 600 is larger than step-wise stage 2"),
    ({"model.name": "vit_tiny_patch16_224"}, "model.name", "cannot take 1x8x8 input"),
    ({"model.name": "inception_v3"}, "model.name", "Output size is too small"),  # too small to downsample
    ({"model.name": "resnet18x"}, "model.name", "did you mean"),
])
def test_bad_inputs_are_one_line_naming_the_key(sets, key, fragment):
    with pytest.raises(UserError) as info:
        check_inputs([cfg(**sets)])
    assert info.value.key == key and fragment in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_each_model_is_built_once_and_the_check_is_cheap():
    configs = [cfg(seed=s, **{"optim.lr": lr}) for s in range(5) for lr in (0.1, 0.01)]
    configs.append(cfg(**{"data.image_size": 16}))
    check_inputs(configs[:1])  # imports torch and timm once
    start = time.perf_counter()
    assert check_inputs(configs) == 2  # 8 px and 16 px: two models, not eleven
    assert time.perf_counter() - start < 20  # generous: a loaded 2-core machine; measured in BENCHMARKS.md
