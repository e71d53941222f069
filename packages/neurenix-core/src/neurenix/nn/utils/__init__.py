"""Utilities for modules and their parameters, as PyTorch's ``torch.nn.utils``: gradient clipping, and
(``stateless``) tensors put into a module's parameter slots and copies of a module's structure."""

from . import stateless
from .clip_grad import clip_grad_norm_, clip_grad_value_
from .stateless import copy_structure, reparametrize_module, swap_tensor, swap_tensors_dict

__all__ = ["clip_grad_norm_", "clip_grad_value_", "copy_structure", "reparametrize_module", "stateless",
           "swap_tensor", "swap_tensors_dict"]
