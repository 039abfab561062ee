"""Dataset loading: shapes, seeded subsets, image folders (modes, sizes, decode cache) and errors."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from tune_hardbatch.errors import UserError
from tune_hardbatch.training import data
from tune_hardbatch.training.config import DataConfig
from tune_hardbatch.training.data import load_dataset

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def folder_cfg(root, tmp_path, **kw) -> DataConfig:
    return DataConfig(name="imagefolder", root=str(root), cache_dir=str(tmp_path / "cache"), **kw)


def write_png(path, mode="RGB", size=(8, 8), value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value,) * len(mode)
    Image.new(mode, size, color).save(path)


def tiny_folder(root, sizes=((8, 8),) * 3, modes=("L", "RGBA", "RGB")):
    """root/{train,test}/{a,b}/ with one image per (mode, size) in each class folder."""
    for split in ("train", "test"):
        for c, value in (("a", 50), ("b", 200)):
            for i, (mode, size) in enumerate(zip(modes, sizes)):
                write_png(root / split / c / f"{i}.png", mode, size, value)
    return root


def forbid_decode(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded although the cache should have been used")
    monkeypatch.setattr(data, "_decode_images", fail)


def count_decodes(monkeypatch) -> list:
    calls, real = [], data._decode_images
    def counting(paths, size):
        calls.append(len(paths))
        return real(paths, size)
    monkeypatch.setattr(data, "_decode_images", counting)
    return calls


def same(a: data.Dataset, b: data.Dataset) -> bool:
    return all(torch.equal(getattr(a, f), getattr(b, f))
               for f in ("train_x", "train_y", "test_x", "test_y", "val_x", "val_y"))


# ---------------------------------------------------------------------------------------------------
# digits, train_limit, synthetic


def test_digits_shapes_and_dtypes():
    ds = load_dataset(DataConfig(), seed=0)
    assert ds.train_x.shape == (1437, 1, 8, 8) and ds.train_x.dtype == torch.uint8
    assert ds.test_x.shape == (360, 1, 8, 8) and ds.test_x.dtype == torch.uint8
    assert ds.train_y.shape == (1437,) and ds.train_y.dtype == torch.int64 and ds.test_y.dtype == torch.int64
    assert ds.classes == [str(i) for i in range(10)] and ds.num_classes == 10
    assert ds.in_chans == 1 and ds.image_hw == (8, 8)
    for y in (ds.train_y, ds.test_y):
        assert y.min() == 0 and y.max() == 9 and len(torch.unique(y)) == 10
    assert ds.train_x.max() == 255 and ds.train_x.min() == 0
    # the split does not depend on the run seed
    assert same(ds, load_dataset(DataConfig(), seed=5))


def test_limits_use_split_seed_not_trial_seed():
    full = load_dataset(DataConfig(), seed=0)
    a = load_dataset(DataConfig(train_limit=100, test_limit=50), seed=1)
    assert a.train_x.shape == (100, 1, 8, 8) and a.train_y.shape == (100,) and a.test_y.shape == (50,)
    assert same(a, load_dataset(DataConfig(train_limit=100, test_limit=50), seed=2))  # every trial seed alike
    other = load_dataset(DataConfig(train_limit=100, test_limit=50, split_seed=1), seed=1)
    assert not torch.equal(a.train_x, other.train_x) and not torch.equal(a.test_x, other.test_x)
    # the kept samples are real samples: x matches the full sets at split_seed's permutation
    keep = torch.randperm(1437, generator=torch.Generator().manual_seed(0))[:100]
    assert torch.equal(a.train_x, full.train_x[keep]) and torch.equal(a.train_y, full.train_y[keep])
    keep = torch.randperm(360, generator=torch.Generator().manual_seed(0))[:50]
    assert torch.equal(a.test_x, full.test_x[keep]) and torch.equal(a.test_y, full.test_y[keep])
    assert torch.equal(load_dataset(DataConfig(train_limit=100), seed=0).test_x, full.test_x)  # no test_limit
    big = load_dataset(DataConfig(train_limit=5000, test_limit=5000), seed=1)
    assert same(big, full)


# ---------------------------------------------------------------------------------------------------
# the validation split (data.val_fraction, data.split_seed)


def rows(x: torch.Tensor) -> set:
    return {bytes(r) for r in x.flatten(1).numpy()}


def test_val_split_is_disjoint_stratified_and_fixed_by_split_seed():
    full = load_dataset(DataConfig(), seed=0)
    cfg = DataConfig(val_fraction=0.2)
    ds = load_dataset(cfg, seed=0)
    assert len(ds.train_y) + len(ds.val_y) == 1437 and ds.has_val and not full.has_val
    assert torch.equal(ds.test_x, full.test_x)  # the test set is untouched
    # disjoint and together the whole training set: as multisets of (image, label) rows
    pairs = lambda x, y: sorted(bytes(r) + bytes([int(c)]) for r, c in zip(x.flatten(1).numpy(), y))
    assert pairs(torch.cat([ds.train_x, ds.val_x]), torch.cat([ds.train_y, ds.val_y])) == \
        pairs(full.train_x, full.train_y)
    per_class, held = torch.bincount(full.train_y), torch.bincount(ds.val_y, minlength=10)
    assert all(abs(int(h) - 0.2 * int(n)) <= 1 for h, n in zip(held, per_class)), (held, per_class)
    # identical for every trial seed and for a second load; another split_seed gives another split
    for again in (load_dataset(cfg, seed=7), load_dataset(cfg, seed=0)):
        assert same(ds, again)
    moved = load_dataset(DataConfig(val_fraction=0.2, split_seed=3), seed=0)
    assert torch.equal(torch.bincount(moved.val_y), torch.bincount(ds.val_y))
    assert not torch.equal(moved.val_x, ds.val_x)


def test_val_split_indices_are_a_partition_per_class():
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 3 + [0] * 5)
    train, val = data.split_indices(labels, 0.3, split_seed=4)
    assert sorted(train.tolist() + val.tolist()) == list(range(len(labels)))
    assert not set(train.tolist()) & set(val.tolist())
    assert torch.bincount(labels[val]).tolist() == [5, 2, 1]  # round(0.3 x 15, 7, 3), halves up (4.5 -> 5)
    again = data.split_indices(labels, 0.3, split_seed=4)
    assert torch.equal(train, again[0]) and torch.equal(val, again[1])


def test_val_split_after_train_limit_and_its_errors():
    ds = load_dataset(DataConfig(train_limit=200, val_fraction=0.1), seed=0)
    limited = load_dataset(DataConfig(train_limit=200), seed=0)
    assert len(ds.train_y) + len(ds.val_y) == 200
    assert rows(ds.val_x) | rows(ds.train_x) == rows(limited.train_x)
    with pytest.raises(UserError, match="val_fraction.*would keep none") as info:
        load_dataset(DataConfig(train_limit=12, val_fraction=0.9), seed=0)
    assert info.value.key == "data.val_fraction" and "\n" not in str(info.value)
    with pytest.raises(UserError, match="holds out no sample") as info:
        load_dataset(DataConfig(train_limit=30, val_fraction=0.01), seed=0)
    assert info.value.key == "data.val_fraction"


def test_val_fraction_is_validated():
    from tune_hardbatch.training.config import build_config

    for key, value in (("data.val_fraction", 1.0), ("data.val_fraction", -0.1), ("data.split_seed", -1),
                       ("data.test_limit", 0)):
        with pytest.raises(UserError) as info:
            build_config(None, {key: value})
        assert info.value.key == key and "allowed" in str(info.value)


def test_synthetic_shapes_and_determinism():
    cfg = DataConfig(name="synthetic", synthetic_shape=(2, 5, 7), synthetic_train=50, synthetic_test=20,
                     synthetic_classes=4)
    a, b, c = load_dataset(cfg, seed=3), load_dataset(cfg, seed=3), load_dataset(cfg, seed=4)
    assert a.train_x.shape == (50, 2, 5, 7) and a.test_x.shape == (20, 2, 5, 7)
    assert a.train_x.dtype == torch.uint8 and a.train_y.dtype == torch.int64
    assert a.classes == ["0", "1", "2", "3"] and a.in_chans == 2 and a.image_hw == (5, 7)
    assert 0 <= a.train_y.min() and a.train_y.max() <= 3
    assert same(a, b) and not torch.equal(a.train_x, c.train_x)


def test_device_argument():
    ds = load_dataset(DataConfig(name="synthetic", synthetic_train=4, synthetic_test=2), 0, device="cpu")
    assert ds.train_x.device.type == "cpu" and ds.test_y.device.type == "cpu"


# ---------------------------------------------------------------------------------------------------
# imagefolder on real CIFAR-10 JPEGs, and the decode cache


def test_imagefolder_cifar_subset_and_cache(cifar_subset, tmp_path, monkeypatch):
    cfg = folder_cfg(cifar_subset, tmp_path)
    ds = load_dataset(cfg, seed=0)
    assert ds.train_x.shape == (1000, 3, 32, 32) and ds.train_x.dtype == torch.uint8
    assert ds.test_x.shape == (200, 3, 32, 32) and ds.test_y.shape == (200,)
    assert ds.classes == CIFAR_CLASSES and ds.num_classes == 10
    assert torch.equal(torch.bincount(ds.train_y), torch.full((10,), 100))
    assert torch.equal(ds.test_y, torch.arange(10).repeat_interleave(20))  # folder order, no shuffle
    # labels and pixels match the files: first test image of "cat"
    first_cat = sorted((cifar_subset / "test" / "cat").iterdir())[0]
    expected = torch.from_numpy(np.array(Image.open(first_cat).convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(ds.test_x[3 * 20], expected)
    assert 100 < ds.train_x.float().mean() < 140  # real photos, not blank

    entries = [e for e in os.listdir(tmp_path / "cache") if not e.startswith(".")]
    assert len(entries) == 2  # train and test
    for e in entries:
        assert {"x.npy", "y.npy", "meta.json"} <= set(os.listdir(tmp_path / "cache" / e))
    forbid_decode(monkeypatch)
    again = load_dataset(cfg, seed=0)
    assert same(ds, again) and again.classes == ds.classes


def test_cache_key_changes_with_files(tmp_path, monkeypatch):
    root = tiny_folder(tmp_path / "imgs")
    cfg = folder_cfg(root, tmp_path)
    calls = count_decodes(monkeypatch)
    first = load_dataset(cfg, 0)
    assert calls == [6, 6]
    assert same(first, load_dataset(cfg, 0)) and calls == [6, 6]  # cached
    target = root / "train" / "a" / "0.png"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touch: only train changes
    load_dataset(cfg, 0)
    assert calls == [6, 6, 6]
    write_png(root / "train" / "b" / "extra.png")
    grown = load_dataset(cfg, 0)
    assert calls == [6, 6, 6, 7] and grown.train_x.shape[0] == 7


def test_unwritable_cache_dir_warns_and_still_loads(tmp_path):
    root = tiny_folder(tmp_path / "imgs")
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    cfg = DataConfig(name="imagefolder", root=str(root), cache_dir=str(blocker / "cache"))
    data._warned_cache_dirs.clear()
    with pytest.warns(UserWarning, match="cache"):
        ds = load_dataset(cfg, 0)
    assert ds.train_x.shape == (6, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        load_dataset(cfg, 0)


# ---------------------------------------------------------------------------------------------------
# imagefolder: modes, sizes, val/


def test_mixed_modes_become_rgb(tmp_path):
    ds = load_dataset(folder_cfg(tiny_folder(tmp_path / "imgs"), tmp_path), 0)
    assert ds.train_x.shape == (6, 3, 8, 8) and ds.in_chans == 3
    assert ds.classes == ["a", "b"] and ds.train_y.tolist() == [0, 0, 0, 1, 1, 1]
    assert (ds.train_x[:3] == 50).all() and (ds.train_x[3:] == 200).all()  # gray / RGBA / RGB, same value


def test_mixed_sizes_resized(tmp_path):
    sizes = ((8, 8), (12, 6), (8, 8))
    root = tiny_folder(tmp_path / "imgs", sizes=sizes, modes=("RGB",) * 3)
    ds = load_dataset(folder_cfg(root, tmp_path, image_size=16), 0)
    assert ds.train_x.shape == (6, 3, 16, 16) and ds.test_x.shape == (6, 3, 16, 16)
    assert (ds.train_x[:3] == 50).all()  # a flat colour stays flat when resized
    common = load_dataset(folder_cfg(root, tmp_path), 0)  # no image_size: the most common size
    assert common.train_x.shape == (6, 3, 8, 8)


def test_val_split_and_test_resized_to_train(tmp_path):
    root = tmp_path / "imgs"
    for c in ("a", "b"):
        write_png(root / "train" / c / "0.png", size=(8, 8))
        write_png(root / "val" / c / "0.png", size=(4, 4))
    ds = load_dataset(folder_cfg(root, tmp_path), 0)
    assert ds.train_x.shape == (2, 3, 8, 8) and ds.test_x.shape == (2, 3, 8, 8)
    assert not ds.has_val  # val/ without test/ is the test set, as before


def cifar_with_own_val(cifar_subset, root):
    """root/train and root/test: the CIFAR subset's; root/val: 3 further real training JPEGs per class
    (moved out of a copy of train/, so the three sets are disjoint)."""
    import shutil

    shutil.copytree(cifar_subset / "train", root / "train")
    os.symlink(cifar_subset / "test", root / "test")
    for cls in CIFAR_CLASSES:
        (root / "val" / cls).mkdir(parents=True)
        for path in sorted((root / "train" / cls).iterdir())[:3]:
            path.rename(root / "val" / cls / path.name)
    return root


def test_imagefolder_own_val_beside_test_is_the_validation_set(cifar_subset, tmp_path):
    from tune_hardbatch.training.inputs import data_shape

    root = cifar_with_own_val(cifar_subset, tmp_path / "imgs")
    ds = load_dataset(folder_cfg(root, tmp_path), 0)
    assert ds.has_val and ds.val_x.shape == (30, 3, 32, 32) and ds.train_x.shape == (970, 3, 32, 32)
    assert torch.equal(ds.val_y, torch.arange(10).repeat_interleave(3))
    assert ds.test_x.shape == (200, 3, 32, 32)
    first = sorted((root / "val" / "bird").iterdir())[0]
    assert torch.equal(ds.val_x[2 * 3], torch.from_numpy(np.array(Image.open(first).convert("RGB"))).permute(2, 0, 1))
    assert not rows(ds.val_x) & rows(ds.train_x) and not rows(ds.val_x) & rows(ds.test_x)
    assert data_shape(folder_cfg(root, tmp_path)).num_train == 970
    for call in (lambda c: load_dataset(c, 0), data_shape):
        with pytest.raises(UserError, match="has its own val/.*allowed: 0") as info:
            call(folder_cfg(root, tmp_path, val_fraction=0.1))
        assert info.value.key == "data.val_fraction"


def test_imagefolder_val_fraction_on_real_cifar(cifar_subset, tmp_path):
    from tune_hardbatch.training.inputs import data_shape

    cfg = folder_cfg(cifar_subset, tmp_path, val_fraction=0.1, split_seed=2)
    ds = load_dataset(cfg, 0)
    assert torch.equal(torch.bincount(ds.val_y), torch.full((10,), 10))  # 10% of 100 per class, exactly
    assert torch.equal(torch.bincount(ds.train_y), torch.full((10,), 90))
    assert not rows(ds.val_x) & rows(ds.train_x)
    assert same(ds, load_dataset(cfg, 5))
    assert data_shape(cfg).num_train == 900


# ---------------------------------------------------------------------------------------------------
# errors: one UserError line keyed data.root


def assert_root_error(cfg, *needles):
    with pytest.raises(UserError) as info:
        load_dataset(cfg, 0)
    msg = str(info.value)
    assert msg.startswith("data.root") and "\n" not in msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def test_error_missing_root(tmp_path):
    assert_root_error(folder_cfg(tmp_path / "nope", tmp_path), str(tmp_path / "nope"))


def test_error_no_train_split(tmp_path):
    write_png(tmp_path / "imgs" / "test" / "a" / "0.png")
    assert_root_error(folder_cfg(tmp_path / "imgs", tmp_path), "train/")


def test_error_no_test_or_val(tmp_path):
    write_png(tmp_path / "imgs" / "train" / "a" / "0.png")
    assert_root_error(folder_cfg(tmp_path / "imgs", tmp_path), "test/", "val/")


def test_error_split_without_class_folders(tmp_path):
    write_png(tmp_path / "imgs" / "train" / "a" / "0.png")
    (tmp_path / "imgs" / "test").mkdir()
    assert_root_error(folder_cfg(tmp_path / "imgs", tmp_path), "no images", "test")


def test_error_corrupt_image_names_file(tmp_path):
    root = tiny_folder(tmp_path / "imgs")
    bad = root / "train" / "b" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg" * 10)
    assert_root_error(folder_cfg(root, tmp_path), str(bad))


def test_error_empty_class_folder(tmp_path):
    root = tiny_folder(tmp_path / "imgs")
    (root / "train" / "empty_class").mkdir()
    assert_root_error(folder_cfg(root, tmp_path), "empty_class")


def test_error_test_class_not_in_train(tmp_path):
    root = tiny_folder(tmp_path / "imgs")
    write_png(root / "test" / "zebra" / "0.png")
    assert_root_error(folder_cfg(root, tmp_path), "zebra")


def test_error_torchvision_files_missing(tmp_path, capfd):
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = assert_root_error(DataConfig(name="cifar10", root=str(empty)),
                            "cifar10 not found", f"{empty}/cifar-10-batches-py", "data.download")
    assert "Traceback" not in capfd.readouterr().err and "Traceback" not in msg


# ---------------------------------------------------------------------------------------------------
# torchvision sources: real MNIST-format files; CIFAR / SVHN / STL-10 through stand-in classes


def write_idx(path, array: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_format_files(tmp_path, name, folder):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    ds = load_dataset(DataConfig(name=name, root=str(tmp_path)), 0)
    assert ds.train_x.shape == (12, 1, 28, 28) and ds.test_x.shape == (5, 1, 28, 28)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert ds.train_y.tolist() == [i % 10 for i in range(12)] and ds.num_classes == 10


class FakeTV:
    """Stands in for a torchvision dataset class; records how it was called."""

    def __init__(self, root, train=None, split=None, download=False):
        is_train = train if split is None else split == "train"
        n = 6 if is_train else 3
        self.calls = (root, train, split, download)
        self.classes = [f"c{i}" for i in range(10)]
        self.targets = self.labels = list(range(n)) if split is None else np.arange(n, dtype=np.uint8)
        side = 96 if split is not None and type(self).stl else 32
        self.data = (np.full((n, side, side, 3), 7, np.uint8) if split is None  # CIFAR: HWC
                     else np.full((n, 3, side, side), 7, np.uint8))


@pytest.mark.parametrize("name,attr,hw,classes", [
    ("cifar10", "CIFAR10", (32, 32), "c"), ("cifar100", "CIFAR100", (32, 32), "c"),
    ("svhn", "SVHN", (32, 32), "digits"), ("stl10", "STL10", (96, 96), "c")])
def test_torchvision_conversions(monkeypatch, tmp_path, name, attr, hw, classes):
    import torchvision.datasets as tvd

    fake = type(attr, (FakeTV,), {"stl": name == "stl10"})
    monkeypatch.setattr(tvd, attr, fake)
    ds = load_dataset(DataConfig(name=name, root=str(tmp_path)), 0)
    assert ds.train_x.shape == (6, 3, *hw) and ds.test_x.shape == (3, 3, *hw)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert (ds.train_x == 7).all() and ds.train_y.tolist() == list(range(6))
    prefix = "" if classes == "digits" else "c"
    assert ds.classes == [f"{prefix}{i}" for i in range(10)]
