"""Softmax cross-entropy with a hand-written backward, for the large-vocabulary output layers of language models.

Why: with a 10k-word vocabulary the softmax over ``(tokens, vocab)`` logits is a memory-bound pass over a buffer
far larger than the CPU caches, and autograd's generic chain (log_softmax -> nll_loss) walks it more often than
needed: nll_loss's backward allocates and zero-fills a full-size gradient to scatter ``-1`` into it, then
log_softmax's backward reads that buffer and the saved output again. The closed form of the gradient,
``softmax(logits) - onehot(target)``, needs one pass that writes ``exp(log_probs)`` and a scatter of ``-1``.
On the Zaremba small model this is most of the non-matmul time of a training step (benchmarks/lm_speed.py).

The value and the gradient equal ``F.cross_entropy`` (mean over the non-ignored targets) to float rounding.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


class _SoftmaxCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, ignore_index: int) -> Tensor:
        # logits: (N, vocab); target: (N,)
        log_probs = torch.log_softmax(logits, dim=-1)  # (N, vocab)
        keep = target != ignore_index  # (N,)
        safe = torch.where(keep, target, torch.zeros_like(target))
        picked = log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)  # (N,)
        count = keep.sum()
        loss = -(picked * keep).sum() / count.clamp(min=1)
        ctx.save_for_backward(log_probs, safe, keep, count)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor, None, None]:
        log_probs, safe, keep, count = ctx.saved_tensors
        scale = grad_loss / count.clamp(min=1)
        grad = torch.exp(log_probs)  # softmax, (N, vocab): the one full pass
        minus_one = torch.full((grad.size(0), 1), -1.0, dtype=grad.dtype, device=grad.device)
        grad.scatter_add_(1, safe.unsqueeze(1), minus_one)  # softmax - onehot
        # one row-scaled multiply (ignored rows x 0) instead of asking the device whether any row is ignored
        grad.mul_((keep.to(grad.dtype) * scale).unsqueeze(1))
        return grad, None, None


def softmax_cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean cross-entropy of ``logits`` (N, vocab) against class indices ``target`` (N,), skipping ``ignore_index``.

    Falls back to ``F.cross_entropy`` where the hand-written backward would not help: no gradient needed (eval),
    or half-precision logits (the reduction is done in fp32 by PyTorch's kernels there).
    """
    if not (torch.is_grad_enabled() and logits.requires_grad) or logits.dtype not in (torch.float32, torch.float64):
        return F.cross_entropy(logits, target, ignore_index=ignore_index)
    return _SoftmaxCrossEntropy.apply(logits, target, ignore_index)
