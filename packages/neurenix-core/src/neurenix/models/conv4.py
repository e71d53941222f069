"""Conv-4, the four-block network of few-shot learning's benchmarks (Vinyals et al. 2016, Matching Networks;
Finn et al. 2017, MAML; Snell et al. 2017, Prototypical Networks)."""

from __future__ import annotations

from ..arguments import integer, pair
from ..nn.activation import ReLU
from ..nn.batchnorm import BatchNorm2d
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.linear import Flatten, Linear
from ..nn.pooling import MaxPool2d


class Conv4(Sequential):
    """``blocks`` x [Conv2d 3x3 padding 1, BatchNorm2d, ReLU, MaxPool2d 2], then Flatten, then a Linear head of
    ``out_features`` if given (MAML's classifier; without it, Prototypical Networks' embedding).

    One flat Sequential, so its parameters are named as the same layers in ``nn.Sequential`` in PyTorch and in
    the benchmarks ("0.weight" the first convolution, "1.weight" its BatchNorm, "17.weight" the head of four
    blocks), and each BatchNorm, ReLU and pool runs as one fused op. The head's input size depends on the image:
    ``image_size`` (int or (h, w); 84 for miniImageNet, 28 for Omniglot), floor-halved by each block.
    ``out_features`` (attribute): the size of one output row.
    """

    def __init__(self, in_channels: int = 3, hidden: int = 64, out_features: int | None = None, blocks: int = 4,
                 image_size: int | tuple[int, int] = 84):
        in_channels = integer(in_channels, "in_channels", "Conv4", minimum=1)
        hidden = integer(hidden, "hidden", "Conv4", minimum=1)
        blocks = integer(blocks, "blocks", "Conv4", minimum=1)
        h, w = (side >> blocks for side in pair(image_size, "image_size", "Conv4", minimum=1))
        if h == 0 or w == 0:
            raise ValueError(f"Conv4: {blocks} blocks halve a {image_size} image to nothing")
        layers = []
        for i in range(blocks):
            layers += [Conv2d(in_channels if i == 0 else hidden, hidden, 3, padding=1), BatchNorm2d(hidden), ReLU(),
                       MaxPool2d(2)]
        layers.append(Flatten())
        features = hidden * h * w
        if out_features is not None:
            layers.append(Linear(features, integer(out_features, "out_features", "Conv4", minimum=1)))
        super().__init__(*layers)
        self.out_features = features if out_features is None else out_features
