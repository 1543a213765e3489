"""Numerical pieces that models and tasks need and that know nothing of either: fused losses (loss.py) and
device helpers (device.py). They sit below models in the layer order (see docs/architecture.md)."""
