"""Models by name through timm's factory, with the CIFAR stem for ResNets on small images."""

from __future__ import annotations

import difflib

import timm
import torch.nn as nn
from timm.models.resnet import ResNet

from ..errors import UserError


def create_model(cfg, num_classes: int, in_chans: int, image_side: int) -> nn.Module:
    """`timm.create_model(name, num_classes, in_chans)`, randomly initialised (no hub download)."""
    if not timm.is_model(cfg.name):
        close = difflib.get_close_matches(cfg.name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError("model.name", f"unknown model {cfg.name!r}; allowed: any timm model name{hint}")
    model = timm.create_model(cfg.name, pretrained=False, num_classes=num_classes, in_chans=in_chans)
    if use_cifar_stem(cfg, model, image_side):
        apply_cifar_stem(model)
    return model


def use_cifar_stem(cfg, model: nn.Module, image_side: int) -> bool:
    """`model.cifar_stem`: true/false as set; null = on for ResNets at 64 px or less."""
    if cfg.cifar_stem is None:
        return isinstance(model, ResNet) and image_side <= 64
    if cfg.cifar_stem and not isinstance(model, ResNet):
        raise UserError("model.cifar_stem", f"only ResNet-family models have a stem to replace, "
                        f"not {cfg.name!r}; allowed: false")
    return cfg.cifar_stem


def apply_cifar_stem(model: ResNet) -> None:
    """3x3 stride-1 first convolution and no max-pool, keeping a 32 px image at 32 px into layer1."""
    stem = model.conv1
    first = stem[0] if isinstance(stem, nn.Sequential) else stem
    conv = nn.Conv2d(first.in_channels, first.out_channels, 3, stride=1, padding=1, bias=False)
    if isinstance(stem, nn.Sequential):
        stem[0] = conv
    else:
        model.conv1 = conv
    model.maxpool = nn.Identity()


# Depthwise share of the spatial convolutions from which a net counts as depthwise-heavy: MobileNets and
# EfficientNets are at 0.7-1.0, ResNets, ResNeXts, Res2Nets and RegNets at 0; a quarter keeps a net that
# mixes in a few depthwise stages on the cheap side (each depthwise shape costs seconds to autotune).
DEPTHWISE_HEAVY_SHARE = 0.25


def is_depthwise(conv: nn.Conv2d) -> bool:
    """One input channel per group (groups == in_channels > 1): MobileNet/EfficientNet's depthwise conv.

    Grouped convolutions with several channels per group (ResNeXt 32x4d: 4 to 32) are not depthwise.
    """
    return conv.groups > 1 and conv.groups == conv.in_channels


def is_depthwise_heavy(model: nn.Module) -> bool:
    """Whether at least `DEPTHWISE_HEAVY_SHARE` of the spatial (k > 1) convolutions are depthwise.

    cuDNN's autotuner times every algorithm for each new convolution shape; for depthwise shapes most
    algorithms are slow or fall back to per-group loops, so autotuning them takes tens of seconds for
    little gain. Pointwise (1x1) and squeeze-excitation convolutions are dense and autotune quickly: they
    are left out of the count, or they would hide the depthwise ones (EfficientNet-B0: 16 of 81 convs,
    but 16 of its 17 spatial ones).
    """
    spatial = [m for m in model.modules() if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1]
    depthwise = sum(1 for m in spatial if is_depthwise(m))
    return bool(spatial) and depthwise >= DEPTHWISE_HEAVY_SHARE * len(spatial)


def cudnn_benchmark(model: nn.Module, setting) -> bool:
    """`cudnn_benchmark`: true/false as set; null (auto) = autotune unless the net is depthwise-heavy."""
    return (not is_depthwise_heavy(model)) if setting is None else bool(setting)
