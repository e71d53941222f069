"""ResNet-12 as MetaOptNet (Lee et al., CVPR 2019) and FEAT (Ye et al., CVPR 2020) use it, after TADAM
(Oreshkin et al. 2018): four residual blocks of widths (64, 160, 320, 640)."""

from __future__ import annotations

from ..arguments import integer, number
from ..nn import init
from ..nn.activation import LeakyReLU
from ..nn.batchnorm import BatchNorm2d
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.dropout import Dropout
from ..nn.linear import Identity, Linear
from ..nn.module import Module
from ..nn.pooling import MaxPool2d
from ..tensor import Tensor
from .dropblock import DropBlock2d


class ResNet12Block(Module):
    """Three 3x3 convolutions (no bias) each with BatchNorm, LeakyReLU(0.1) after the first two; a 1x1
    convolution and BatchNorm on the shortcut; the sum through LeakyReLU, a 2x2 max-pool, then ``drop`` (a
    Dropout or DropBlock2d, or nothing). Parameter names as MetaOptNet's BasicBlock (conv1..3, bn1..3,
    downsample.0 and .1), so its and FEAT's checkpoints load."""

    def __init__(self, in_channels: int, out_channels: int, drop: Module | None = None):
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = BatchNorm2d(out_channels)
        self.relu = LeakyReLU(0.1)
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        self.conv3 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn3 = BatchNorm2d(out_channels)
        self.maxpool = MaxPool2d(2)
        self.downsample = Sequential(Conv2d(in_channels, out_channels, 1, bias=False), BatchNorm2d(out_channels))
        self.drop = drop if drop is not None else Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.drop(self.maxpool(self.relu(out + self.downsample(x))))


class ResNet12(Module):
    """ResNet-12, MetaOptNet's and FEAT's variant: ``layer1``..``layer4``, each one ``ResNet12Block`` of widths
    ``channels``, halving the image (84x84 -> 5x5); then the mean over positions (``avg_pool``, 640 features: on
    84x84 and 80x80 images the same as their ``AvgPool2d(5, stride=1)``) or the flattened map (16000 for 84x84),
    then a Linear head of ``out_features`` if given (``fc``; it needs ``avg_pool``).

    ``drop_rate`` > 0: dropout after blocks 1 and 2, DropBlock2d(drop_rate, ``dropblock_size``) after blocks 3
    and 4, as MetaOptNet (which uses drop_rate 0.1, dropblock_size 5 on miniImageNet and 2 on CIFAR-FS); its
    linear ramp of the DropBlock rate over the first 40,000 batches is left to the caller
    (``model.layer3[0].drop.p``). Initialised as MetaOptNet: convolutions Kaiming-normal (fan out, leaky_relu
    gain), BatchNorm 1 and 0. About 12.4M parameters at the default widths. ``out_features`` (attribute): the
    size of one output row (None for a flattened map).
    """

    def __init__(self, in_channels: int = 3, channels: tuple[int, ...] = (64, 160, 320, 640), drop_rate: float = 0.0,
                 dropblock_size: int = 5, avg_pool: bool = True, out_features: int | None = None):
        super().__init__()
        if not isinstance(channels, (tuple, list)) or len(channels) != 4:
            raise ValueError(f"ResNet12: channels must be four widths, got {channels!r}")
        widths = [integer(c, "channels", "ResNet12", minimum=1) for c in channels]
        drop_rate = number(drop_rate, "drop_rate", "ResNet12", minimum=0.0, maximum=1.0)
        c = integer(in_channels, "in_channels", "ResNet12", minimum=1)
        for i, width in enumerate(widths):
            self.add_module(f"layer{i + 1}", Sequential(ResNet12Block(c, width, _drop(i, drop_rate, dropblock_size))))
            c = width
        self.avg_pool = avg_pool
        self.fc = None
        if out_features is not None:
            if not avg_pool:
                raise ValueError("ResNet12: a head (out_features) needs avg_pool=True (the map's size depends on "
                                 "the image's)")
            self.fc = Linear(c, integer(out_features, "out_features", "ResNet12", minimum=1))
        self.out_features = out_features or (c if avg_pool else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")

    def forward(self, x: Tensor) -> Tensor:
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
        x = x.mean((2, 3)) if self.avg_pool else x.flatten(1)
        return x if self.fc is None else self.fc(x)


def _drop(block: int, rate: float, block_size: int) -> Module | None:
    """MetaOptNet's regulariser after block ``block`` (0-based): dropout in the first two, DropBlock after."""
    if rate == 0.0:
        return None
    return Dropout(rate) if block < 2 else DropBlock2d(rate, block_size)
