"""Models: cuDNN autotuning decided by depthwise convolutions, for the paper models by name."""

import pytest
import timm
import torch
import torch.nn as nn

from tune_hardbatch.training.models import cudnn_benchmark, is_depthwise, is_depthwise_heavy

AUTOTUNE = {  # paper model -> cudnn.benchmark under `cudnn_benchmark: null` (auto)
    "resnet18": True,
    "resnet50": True,
    "resnext50_32x4d": True,  # 32 groups of 4..32 channels: grouped, not depthwise
    "res2net50_26w_4s": True,
    "mobilenetv3_small_100": False,
    "efficientnet_b0": False,
    "efficientnet_b4": False,
    "tf_efficientnetv2_s": False,  # fused (dense) early stages, depthwise later: 30 of 41 spatial convs
}


@pytest.fixture(scope="module")
def paper_models() -> dict:
    """Each paper model built once by name, without weights, on the meta device (no memory, ~1 s in all)."""
    with torch.device("meta"):
        return {name: timm.create_model(name, pretrained=False, num_classes=10) for name in AUTOTUNE}


@pytest.mark.parametrize("name", list(AUTOTUNE))
def test_autotuning_is_on_for_dense_and_grouped_nets_off_for_depthwise_nets(paper_models, name):
    model = paper_models[name]
    assert cudnn_benchmark(model, None) is AUTOTUNE[name]
    assert is_depthwise_heavy(model) is not AUTOTUNE[name]
    assert cudnn_benchmark(model, True) is True and cudnn_benchmark(model, False) is False  # as set


@pytest.mark.parametrize("conv, depthwise", [
    (nn.Conv2d(32, 32, 3, groups=32), True),  # MobileNet / EfficientNet
    (nn.Conv2d(32, 64, 3, groups=32), True),  # depthwise with a channel multiplier of 2
    (nn.Conv2d(128, 128, 3, groups=32), False),  # ResNeXt 32x4d: 4 channels per group
    (nn.Conv2d(64, 64, 3), False),
    (nn.Conv2d(1, 16, 3), False),  # a grey-scale stem: groups == in_channels == 1 is not depthwise
])
def test_depthwise_means_one_input_channel_per_group(conv, depthwise):
    assert is_depthwise(conv) is depthwise


def test_pointwise_and_squeeze_excitation_convs_do_not_dilute_the_count():
    """Only spatial convolutions count: 1 depthwise among 4 spatial convs is depthwise-heavy beside any
    number of pointwise ones (12 here; counted among all 16 convs it would not be)."""
    spatial = [nn.Conv2d(8, 8, 3, groups=8)] + [nn.Conv2d(8, 8, 3) for _ in range(3)]
    pointwise = [nn.Conv2d(8, 8, 1) for _ in range(12)]
    assert is_depthwise_heavy(nn.Sequential(*spatial, *pointwise))
    mostly_dense = [nn.Conv2d(8, 8, 3, groups=8)] + [nn.Conv2d(8, 8, 3) for _ in range(4)]
    assert not is_depthwise_heavy(nn.Sequential(*mostly_dense))  # 1 of 5: under a quarter
    assert not is_depthwise_heavy(nn.Sequential(*pointwise, nn.Linear(8, 2)))  # no spatial conv at all
