"""rnnkit: recurrent neural networks on PyTorch, from the equations to shipped models."""

__version__ = "0.1.0"
