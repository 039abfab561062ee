"""Augmentation statistics: chunked sums equal the direct computation, and no float copy of the whole
training set is ever made (it would be 4x the uint8 data on the device)."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tune_hardbatch.training import augment
from tune_hardbatch.training.augment import Augment, channel_stats
from tune_hardbatch.training.config import DataConfig


class LargestFloat(TorchDispatchMode):
    """Records the most elements of any floating-point tensor an op returns."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.numel = max(self.numel, t.numel())
        return out


def images(n=103, shape=(3, 9, 7), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=gen)


@pytest.mark.parametrize("chunk", [1, 63, 500, 10**9])  # under one sample, some samples, one chunk
def test_chunked_statistics_equal_the_direct_computation(chunk):
    x = images()
    mean, std = channel_stats(x, chunk_elements=chunk)
    direct = x.double() / 255
    assert torch.allclose(mean, direct.mean(dim=(0, 2, 3)), rtol=0, atol=1e-12)
    assert torch.allclose(std, direct.std(dim=(0, 2, 3)), rtol=0, atol=1e-12)
    as_before = x.float().div(255)  # the former float32 computation, to float32 precision
    assert torch.allclose(mean.float(), as_before.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.float(), as_before.std(dim=(0, 2, 3)), atol=1e-6)


def test_statistics_never_make_a_float_tensor_larger_than_a_chunk():
    x = images(n=200)
    per_sample = x[0].numel()
    with LargestFloat() as seen:
        channel_stats(x, chunk_elements=10 * per_sample)
    assert seen.numel == 10 * per_sample < x.numel()


def test_augment_uses_the_chunked_statistics(monkeypatch):
    x = images(n=200, shape=(1, 8, 8))
    monkeypatch.setattr(augment, "STATS_CHUNK_ELEMENTS", 16 * 64)  # 16 samples a chunk
    with LargestFloat() as seen:
        aug = Augment(DataConfig(name="digits"), x, channels_last=False)
    assert seen.numel <= 16 * 64
    direct = x.float().div(255)
    assert aug.mean.shape == aug.std.shape == (1, 1, 1, 1)
    assert torch.allclose(aug.mean.flatten(), direct.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(aug.std.flatten(), direct.std(dim=(0, 2, 3)), atol=1e-6)
    assert aug.mean.dtype == aug.std.dtype == torch.float32
