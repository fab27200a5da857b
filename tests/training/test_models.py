"""Models: the paper's exact parameter counts, shapes, block choice, spec validation."""

import pytest
import torch

from qcarleman.errors import UsageError
from qcarleman.training.models import (
    MLP,
    Bottleneck,
    ResNet,
    SmallCNN,
    build_model,
    count_parameters,
)

torch.set_num_threads(1)


def test_resnet32x4_cifar100_has_paper_count():
    assert count_parameters(ResNet(depth=32, widen=4, in_channels=3, classes=100)) == 7_451_044


def test_resnet56x11_count_on_meta_device():
    with torch.device("meta"):
        model = ResNet(depth=56, widen=11, in_channels=3, classes=100)
    assert count_parameters(model) == 103_703_700
    assert any(isinstance(m, Bottleneck) for m in model.modules())


def test_resnet20_forward_and_structure():
    model = ResNet(20, 1, 3, 10)
    assert count_parameters(model) == 272_474  # the classic ResNet-20 (He et al. 2016)
    assert not any(isinstance(m, Bottleneck) for m in model.modules())
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert ResNet(8, 1, 1, 10)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("depth", [7, 21, 2])
def test_resnet_bad_depth(depth):
    with pytest.raises(UsageError, match="6k\\+2"):
        ResNet(depth)


def test_small_models_forward():
    cnn = SmallCNN(in_channels=1, classes=10, image_size=8, width=8, stages=2)
    assert cnn(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert isinstance(cnn.classifier, torch.nn.Linear)
    mlp = MLP(64, 10, [16, 16], "tanh")
    assert mlp(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(UsageError, match="stages"):
        SmallCNN(image_size=8, stages=4)
    with pytest.raises(UsageError, match="activation"):
        MLP(activation="sine")


def test_build_model_spec():
    m = build_model({"name": "mlp", "in_features": 4, "classes": 3, "hidden": [5]})
    assert count_parameters(m) == 4 * 5 + 5 + 5 * 3 + 3
    with pytest.raises(UsageError, match="no option 'depth'"):
        build_model({"name": "mlp", "depth": 3})
    with pytest.raises(UsageError, match="unknown model"):
        build_model({"name": "vgg"})
