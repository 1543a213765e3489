"""Dropout whose CPU mask costs half of PyTorch's.

Why: on the CPU ``F.dropout`` draws its mask with ``bernoulli_``, which runs serially at ~15 ns per element: at
Zaremba-medium size the step's dropouts took 4% of it on 2 threads (``benchmarks/lm_profile.py --ops``), more than
the optimiser. Comparing uniform draws (``rand_like``, ~4 ns per element) with ``p`` gives the same mask
distribution (keep with probability ``1 - p``, survivors scaled by ``1 / (1 - p)``) at half the cost. On other
devices ``F.dropout`` (a fused kernel there) is used as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout of ``x`` with drop probability ``p`` (identity outside training or with ``p == 0``)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0:
        return F.dropout(x, p, training=True)  # also raises PyTorch's error for p outside [0, 1]
    if x.dtype in (torch.bfloat16, torch.float16):
        # the draw in fp32 (a bf16 uniform rounds values just under p up to p: keep probability off by up to 2^-9),
        # the mask and the product in x's dtype
        keep = torch.rand(x.shape, device=x.device) >= p
        return (x * keep).mul_(1.0 / (1.0 - p))
    mask = torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))  # 0 or 1 / (1 - p), same shape as x
    return x * mask


class Dropout(nn.Module):
    """``nn.Dropout`` with :func:`dropout`'s cheaper CPU mask (same ``p``, same train/eval behaviour)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
