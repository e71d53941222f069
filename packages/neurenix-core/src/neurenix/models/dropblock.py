"""DropBlock (Ghiasi, Lin and Le, "DropBlock: A regularization method for convolutional networks", NeurIPS 2018),
with torchvision.ops' names and semantics (``DropBlock2d``, ``drop_block2d``): torch.nn has none."""

from __future__ import annotations

from .. import creation
from ..arguments import integer, number
from ..errors import ShapeError
from ..nn import functional as F
from ..nn.module import Module
from ..nn.task_axis import task_count
from ..tensor import Tensor

_OP = "drop_block2d"


def drop_block2d(input: Tensor, p: float, block_size: int, inplace: bool = False, eps: float = 1e-6,
                 training: bool = True) -> Tensor:
    """In training, zero random ``block_size`` x ``block_size`` squares of each channel of an (N, C, H, W) input and
    scale the result by (elements / elements kept), as torchvision's ``drop_block2d``.

    Block seeds fall with probability ``gamma = p*H*W / (block_size**2 * (H-block_size+1) * (W-block_size+1))`` on
    the positions where a whole block fits, so that about a fraction ``p`` of the elements is dropped. Unlike
    torchvision's, an even ``block_size`` works (a seed at (i, j) drops rows i..i+block_size-1 and the same
    columns, which for an odd size is torchvision's block); a block larger than the map raises. Inside
    ``task_batch`` (see nn.task_axis) each task is scaled by its own kept fraction: tasks never mix. ``inplace``
    is accepted for torchvision's signature: values never alias.
    """
    p = number(p, "p (a probability)", _OP, minimum=0.0, maximum=1.0)
    block_size = integer(block_size, "block_size", _OP, minimum=1)
    if not isinstance(input, Tensor) or input.ndim != 4:
        raise ShapeError(f"{_OP}: expected an (N, C, H, W) tensor, got {getattr(input, 'shape', type(input).__name__)}")
    if not training or p == 0.0:
        return input
    n, c, h, w = input.shape
    if block_size > min(h, w):
        raise ValueError(f"{_OP}: block_size {block_size} is larger than the {h}x{w} feature map")
    gamma = p * h * w / (block_size ** 2 * (h - block_size + 1) * (w - block_size + 1))
    seeds = creation.rand((n, c, h - block_size + 1, w - block_size + 1), dtype=input.dtype, device=input.device)
    seeds = (seeds < gamma).to(input.dtype)
    # position (i, j) is dropped when a seed lies in the block_size x block_size window ending there
    dropped = F.max_pool2d(F.pad(seeds, [block_size - 1] * 4), block_size, stride=1)
    return input * _scaled(1.0 - dropped, eps)


def _scaled(keep: Tensor, eps: float) -> Tensor:
    """``keep`` times elements / (eps + elements kept): over the batch, or per task inside ``task_batch``."""
    t = max(task_count(), 1)
    if keep.shape[0] % t:
        raise ShapeError(f"{_OP}: {keep.shape[0]} rows do not split into {t} tasks")
    per_task = keep.reshape(t, -1)
    return (per_task * (per_task.shape[1] / (eps + per_task.sum(1, keepdim=True)))).reshape(keep.shape)


class DropBlock2d(Module):
    """DropBlock on (N, C, H, W) inputs in training mode (see ``drop_block2d``), as torchvision's
    ``DropBlock2d(p, block_size, inplace=False, eps=1e-6)``."""

    def __init__(self, p: float, block_size: int, inplace: bool = False, eps: float = 1e-6):
        super().__init__()
        self.p = number(p, "p (a probability)", "DropBlock2d", minimum=0.0, maximum=1.0)
        self.block_size = integer(block_size, "block_size", "DropBlock2d", minimum=1)
        self.inplace, self.eps = inplace, eps

    def forward(self, input: Tensor) -> Tensor:
        return drop_block2d(input, self.p, self.block_size, self.inplace, self.eps, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}"
