"""Batched augmentation on the device: pad-crop and flip on uint8, then normalise and resize.

No per-sample Python: one gather for the crops of a whole batch, one `where` for the flips. The
normalisation statistics are summed over the training set in chunks, never from a float copy of all of it.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .datasets import DATASETS

# Elements per chunk of the statistics pass: 2M float64 values (16 MiB, squared in place) are nothing next
# to a GPU share, yet enough for the chunks' kernels to keep the device busy (CIFAR-10: 74 chunks).
STATS_CHUNK_ELEMENTS = 1 << 21


def augment_mode(data_cfg) -> tuple[bool, bool]:
    """(crop, flip) for `data.augment`; auto = crop+flip, crop only for digit data."""
    mode = data_cfg.augment
    if mode == "auto":
        mode = "crop" if DATASETS[data_cfg.name].digits else "crop_flip"  # a flipped digit is another
    return mode in ("crop", "crop_flip"), mode in ("flip", "crop_flip")


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `pad` and crop back to H x W at a random offset per sample (torchvision's RandomCrop)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, :, None]  # [B, H, 1]
    cols = (dx + torch.arange(w, device=x.device))[:, None, :]  # [B, 1, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # [B, H, W, C] -> [B, C, H, W]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each sample left-right with probability 1/2."""
    mask = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def channel_stats(x: torch.Tensor, chunk_elements: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (unbiased) of [N, C, H, W] pixel values scaled to [0, 1].

    Sums and sums of squares in float64 over chunks of whole samples, so the extra memory is a chunk,
    not a float copy of the data (4x a uint8 training set in float32). float64 sums of 8-bit values
    are exact below 2^53 / 255^2 ~ 1.4e11 values per channel; the results stay on x's device.
    `chunk_elements` None: `STATS_CHUNK_ELEMENTS`.
    """
    n, c, h, w = x.shape
    chunk_elements = chunk_elements or STATS_CHUNK_ELEMENTS
    per_chunk = max(1, chunk_elements // max(1, c * h * w))  # whole samples per chunk
    total = torch.zeros(c, dtype=torch.float64, device=x.device)
    squares = torch.zeros(c, dtype=torch.float64, device=x.device)
    for start in range(0, n, per_chunk):
        chunk = x[start : start + per_chunk].to(torch.float64)
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square_().sum(dim=(0, 2, 3))
    count = n * h * w
    mean = total / count
    var = (squares - total * mean) / max(1, count - 1)
    return mean / 255, var.clamp_min(0).sqrt() / 255


class Augment:
    """Turns uint8 batches into normalised float batches of the model's input size."""

    def __init__(self, data_cfg, train_x: torch.Tensor, channels_last: bool):
        self.crop, self.flip = augment_mode(data_cfg)
        side = train_x.shape[-1]
        self.pad = data_cfg.pad if data_cfg.pad is not None else max(1, side // 8)
        self.size = data_cfg.image_size
        self.channels_last = channels_last
        mean, std = channel_stats(train_x)  # per-channel, from the training data
        self.mean = mean.float().view(1, -1, 1, 1)
        self.std = std.float().clamp_min(1e-3).view(1, -1, 1, 1)

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float().div_(255) - self.mean) / self.std
        if self.size is not None and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=self.size < x.shape[-1])
        if self.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()

    def train(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.crop and self.pad > 0:
            x = random_crop(x, self.pad, generator)
        if self.flip:
            x = random_flip(x, generator)
        return self._finish(x)

    def eval(self, x: torch.Tensor) -> torch.Tensor:
        return self._finish(x)
