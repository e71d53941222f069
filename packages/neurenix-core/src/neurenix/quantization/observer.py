"""Calibration observers: what a prepared model records about a layer's input."""

from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..nn.module import Module
from ..ops.quantized import affine_qparams
from ..tensor import Tensor


class MinMaxObserver(Module):
    """Records the smallest and largest value of every tensor it sees (returning it unchanged), for an affine
    per-tensor int8 quantization covering that range (:meth:`calculate_qparams`). NaN raises: no range holds it."""

    def __init__(self):
        super().__init__()
        self.min_val, self.max_val = math.inf, -math.inf

    def forward(self, x: Tensor) -> Tensor:
        if x.numel():
            with no_grad():
                lo, hi = float(x.min().item()), float(x.max().item())
            if math.isnan(lo) or math.isnan(hi):
                raise ValueError("MinMaxObserver: a calibration input holds NaN")
            self.min_val, self.max_val = min(self.min_val, lo), max(self.max_val, hi)
        return x

    def calculate_qparams(self) -> tuple[float, int]:
        """``(scale, zero_point)`` of the range seen so far; a RuntimeError if it has seen nothing."""
        if self.min_val > self.max_val:
            raise RuntimeError("MinMaxObserver has seen no data: run calibration inputs through the prepared model "
                               "before convert()")
        return affine_qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"
