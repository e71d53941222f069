"""Wide residual networks (Zagoruyko and Komodakis, "Wide Residual Networks", BMVC 2016), WRN-28-10 as few-shot
work since S2M2 (Mangla et al., WACV 2020) uses it on 80x80 miniImageNet images."""

from __future__ import annotations

from ..arguments import integer, number
from ..nn import init
from ..nn.activation import ReLU
from ..nn.batchnorm import BatchNorm2d
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.dropout import Dropout
from ..nn.linear import Linear
from ..nn.module import Module
from ..tensor import Tensor


class WideBasicBlock(Module):
    """The pre-activation block: BatchNorm, ReLU, 3x3 convolution (``stride``), BatchNorm, ReLU, dropout, 3x3
    convolution, added to the input; where the width or size changes, the shortcut is a 1x1 convolution of the
    activated input (``convShortcut``). Names as the reference PyTorch port's (and S2M2's) BasicBlock."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, drop_rate: float):
        super().__init__()
        self.bn1 = BatchNorm2d(in_channels)
        self.relu1 = ReLU()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        self.relu2 = ReLU()
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.dropout = Dropout(drop_rate)
        self.equal_in_out = in_channels == out_channels and stride == 1
        self.convShortcut = None if self.equal_in_out else Conv2d(in_channels, out_channels, 1, stride=stride,
                                                                  bias=False)

    def forward(self, x: Tensor) -> Tensor:
        act = self.relu1(self.bn1(x))
        out = self.conv2(self.dropout(self.relu2(self.bn2(self.conv1(act)))))
        # an identity shortcut carries the input itself, a projection the activated input (as the reference)
        return out + (x if self.equal_in_out else self.convShortcut(act))


class WideGroup(Module):
    """``blocks`` WideBasicBlocks, the first with ``stride``, held as ``layer`` (the reference's NetworkBlock)."""

    def __init__(self, blocks: int, in_channels: int, out_channels: int, stride: int, drop_rate: float):
        super().__init__()
        self.layer = Sequential(*(WideBasicBlock(in_channels if i == 0 else out_channels, out_channels,
                                                 stride if i == 0 else 1, drop_rate) for i in range(blocks)))

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(Module):
    """WRN-``depth``-``widen_factor``: a 3x3 convolution to 16 channels, three groups of (depth - 4) / 6
    pre-activation blocks of widths 16k, 32k, 64k (strides 1, 2, 2), BatchNorm and ReLU, the mean over positions
    (64k features: 640 for WRN-28-10), then a Linear head of ``out_features`` if given (``fc``).

    The variant of S2M2 and of the reference PyTorch port (xternalz/WideResNet-pytorch): convolutions without
    bias, global average pooling (any image size: S2M2 feeds 80x80, maps 80 -> 40 -> 20; 84x84 works as well),
    dropout of ``drop_rate`` between the two convolutions of each block; parameter names as theirs (conv1,
    block1.layer.0.bn1, ..., bn1), so S2M2's checkpoints load (without their classifier). FEAT's WRN-28-10 is
    another port (biases, the stride on the second convolution). Initialised as the reference: convolutions
    Kaiming-normal (fan out, ReLU gain), BatchNorm 1 and 0, the head's bias 0. WRN-28-10 holds about 36.5M
    parameters. ``out_features`` (attribute): the size of one output row.
    """

    def __init__(self, depth: int = 28, widen_factor: int = 10, drop_rate: float = 0.0, in_channels: int = 3,
                 out_features: int | None = None):
        super().__init__()
        depth = integer(depth, "depth", "WideResNet", minimum=10)
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet: depth must be 6n + 4 (10, 16, 22, 28, ...), got {depth}")
        k = integer(widen_factor, "widen_factor", "WideResNet", minimum=1)
        drop_rate = number(drop_rate, "drop_rate", "WideResNet", minimum=0.0, maximum=1.0)
        n, widths = (depth - 4) // 6, (16, 16 * k, 32 * k, 64 * k)
        self.conv1 = Conv2d(integer(in_channels, "in_channels", "WideResNet", minimum=1), 16, 3, padding=1,
                            bias=False)
        for g, stride in enumerate((1, 2, 2)):
            self.add_module(f"block{g + 1}", WideGroup(n, widths[g], widths[g + 1], stride, drop_rate))
        self.bn1 = BatchNorm2d(widths[3])
        self.relu = ReLU()
        self.fc = None
        if out_features is not None:
            self.fc = Linear(widths[3], integer(out_features, "out_features", "WideResNet", minimum=1))
        self.out_features = out_features or widths[3]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if self.fc is not None:
            init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = self.relu(self.bn1(x)).mean((2, 3))
        return x if self.fc is None else self.fc(x)


class WRN28_10(WideResNet):  # the name few-shot papers give it
    """WRN-28-10: ``WideResNet(28, 10, ...)``, 640 features, about 36.5M parameters."""

    def __init__(self, drop_rate: float = 0.0, in_channels: int = 3, out_features: int | None = None):
        super().__init__(28, 10, drop_rate, in_channels, out_features)
