"""Folding batch normalisation into the convolution before it, as quantization wants (one int8 layer, not two)."""

from __future__ import annotations

import copy
import itertools

from ..autograd.grad_mode import no_grad
from ..nn.batchnorm import BatchNorm2d
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.linear import Identity
from ..nn.module import Module, Parameter


def fuse_conv_bn(model: Module, inplace: bool = False) -> Module:
    """``model`` (a copy unless ``inplace``) with every ``Conv2d`` that a ``BatchNorm2d`` follows in a
    ``Sequential`` folded into one ``Conv2d`` (the ``BatchNorm2d`` replaced by ``Identity``): the evaluation-mode
    result, ``bn(conv(x))`` with the running statistics. Batch norms without running statistics (which normalise
    by each batch's own) stay as they are. PyTorch's ``fuse_modules`` names the pairs; this finds them."""
    model = model if inplace else copy.deepcopy(model)
    for seq in [m for m in model.modules() if isinstance(m, Sequential)]:
        names = [name for name, _ in seq.named_children()]
        for a, b in itertools.pairwise(names):
            conv, bn = getattr(seq, a), getattr(seq, b)
            if isinstance(conv, Conv2d) and isinstance(bn, BatchNorm2d) and bn.track_running_stats \
                    and conv.weight.ndim == 4:
                setattr(seq, a, _folded(conv, bn))
                setattr(seq, b, Identity().train(bn.training))
    return model


def _folded(conv: Conv2d, bn: BatchNorm2d) -> Conv2d:
    """A Conv2d computing ``bn(conv(x))`` in evaluation mode."""
    with no_grad():
        inv = (bn.running_var + bn.eps).rsqrt()
        gamma = bn.weight if bn.affine else 1.0
        beta = bn.bias if bn.affine else 0.0
        factor = inv * gamma
        bias = conv.bias if conv.bias is not None else 0.0
        fused = copy.deepcopy(conv)
        fused.weight = Parameter(conv.weight * factor.reshape(-1, 1, 1, 1))
        fused.bias = Parameter((bias - bn.running_mean) * factor + beta)
    return fused
