"""Models by name through timm's factory, with the CIFAR stem for ResNets on small images."""

from __future__ import annotations

import difflib

import timm
import torch.nn as nn
from timm.models.resnet import ResNet

from .errors import UserError


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


def is_depthwise_heavy(model: nn.Module) -> bool:
    """Depthwise/grouped convolutions dominate (MobileNet, EfficientNet): cudnn autotuning costs most there."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    grouped = sum(1 for m in convs if m.groups > 1)
    return grouped * 4 >= len(convs)
