"""Neural-network layers (stub while being written)."""
