"""Saving and loading tensors and state dicts: ``neurenix.save`` and ``neurenix.load`` (safetensors files)."""

from .save_load import load, save

__all__ = ["load", "save"]
