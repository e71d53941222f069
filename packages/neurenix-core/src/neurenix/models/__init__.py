"""Few-shot learning's backbones, built from ``neurenix.nn``: Conv-4, ResNet-12, WRN-28-10 and a small Transformer
encoder for text; DropBlock as a layer. Each runs inside ``neurenix.func.batched_call`` with per-task weights in
every convolution, normalisation and linear layer (MAML on any of them)."""

from .conv4 import Conv4
from .dropblock import DropBlock2d, drop_block2d
from .resnet12 import ResNet12, ResNet12Block
from .transformer import TransformerEncoderClassifier, sinusoidal_positions
from .wide_resnet import WRN28_10, WideBasicBlock, WideGroup, WideResNet

__all__ = [
    "WRN28_10",
    "Conv4",
    "DropBlock2d",
    "ResNet12",
    "ResNet12Block",
    "TransformerEncoderClassifier",
    "WideBasicBlock",
    "WideGroup",
    "WideResNet",
    "drop_block2d",
    "sinusoidal_positions",
]
