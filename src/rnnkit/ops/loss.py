"""Softmax cross-entropy with a hand-written backward, for the large-vocabulary output layers of language models.

Why: with a 10k-word vocabulary the softmax over ``(tokens, vocab)`` logits is a memory-bound pass over a buffer
far larger than the CPU caches, and autograd's generic chain (log_softmax -> nll_loss) walks it more often than
needed: nll_loss's backward allocates and zero-fills a full-size gradient to scatter ``-1`` into it, then
log_softmax's backward reads that buffer and the saved output again. The closed form of the gradient,
``softmax(logits) - onehot(target)``, needs one pass that writes ``exp(log_probs)`` and a scatter of ``-1``.
On the Zaremba small model this is most of the non-matmul time of a training step (benchmarks/lm_speed.py).

The value and the gradient equal ``F.cross_entropy`` (mean over the non-ignored targets) to float rounding.

``linear_cross_entropy`` goes one step further for the output layer of a language model: the decoder's matmul,
its bias, the softmax and the loss in one function, so the logits are never kept (only the softmax the backward
needs, or on CUDA its log). The decoder's weight gradient is ``grad.T @ hidden``, autograd's own product, in the
parameter's layout. (A ``(hidden, vocab)`` product, transposed, was faster for that one GEMM at some shapes on
some CPUs and slower at others, and autograd then copied it into the parameter's layout every step: with that copy
the ptb-small training step fell behind a plain PyTorch loop's. The plain loop's own product cannot lose to the
plain loop on any CPU.)
"""

from __future__ import annotations

import math
import threading
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


class _Workspace(threading.local):
    """One reusable ``(tokens, vocab)`` buffer for the output layer's logits on the CPU, per thread.

    Why: at a word-level vocabulary the buffer is tens of MB (1,200 x 10,000 fp32: 48 MB), above glibc's largest
    mmap threshold (32 MB), so every step's fresh one came from the kernel as new pages that the first write
    faults in and zeroes: 21 ms of the 88 ms forward GEMM at that size on the 2-core AVX-512 VM (66 ms into a
    reused buffer), a sixteenth of a ptb-small step at the peer benchmark's shape. The buffer goes back after the
    backward; the forward of the next step takes it. Safety rests on autograd's version counter: the buffer is
    saved for the backward, so a second backward through a graph whose buffer was reused fails loudly instead of
    reading new values. On CUDA the caching allocator already reuses memory: nothing is kept there.
    """

    free: Tensor | None = None

    def take(self, shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> Tensor:
        buf, self.free = self.free, None
        if buf is not None and buf.shape == shape and buf.dtype == dtype and buf.device == device:
            return buf
        return torch.empty(shape, dtype=dtype, device=device)

    def give(self, buf: Tensor) -> None:
        if buf.device.type == "cpu":
            self.free = buf  # one buffer at most: a new shape (the last, shorter batch) replaces it


_WORKSPACE = _Workspace()


def _mean_nll(log_probs: Tensor, target: Tensor, ignore_index: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The mean NLL over the non-ignored rows, plus what the closed-form backward needs."""
    keep = target != ignore_index  # (N,)
    safe = torch.where(keep, target, torch.zeros_like(target))
    picked = log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)  # (N,)
    count = keep.sum()
    loss = -(picked * keep).sum() / count.clamp(min=1)
    return loss, safe, keep, count


def _softmax_minus_onehot(log_probs: Tensor, safe: Tensor, keep: Tensor, count: Tensor, grad_loss: Tensor) -> Tensor:
    """d(mean NLL)/d(logits) = (softmax - onehot) x grad_loss / count, zero on ignored rows; (N, vocab)."""
    # softmax, (N, vocab): the one full pass, in place over the saved buffer (a fresh logits-sized allocation
    # costs page faults every step); a second backward through the same graph then fails loudly on the
    # saved tensor's version counter instead of using overwritten values
    return _minus_onehot(log_probs.exp_(), safe, keep, count, grad_loss)


def _minus_onehot(probs: Tensor, safe: Tensor, keep: Tensor, count: Tensor, grad_loss: Tensor) -> Tensor:
    """:func:`_softmax_minus_onehot` from the softmax itself, in place over it."""
    scale = grad_loss / count.clamp(min=1)
    grad = probs
    minus_one = torch.full((grad.size(0), 1), -1.0, dtype=grad.dtype, device=grad.device)
    grad.scatter_add_(1, safe.unsqueeze(1), minus_one)  # softmax - onehot
    # one row-scaled multiply (ignored rows x 0) instead of asking the device whether any row is ignored
    grad.mul_((keep.to(grad.dtype) * scale).unsqueeze(1))
    return grad


class _SoftmaxCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, ignore_index: int) -> Tensor:
        # logits: (N, vocab); target: (N,)
        log_probs = torch.log_softmax(logits, dim=-1)  # (N, vocab)
        loss, safe, keep, count = _mean_nll(log_probs, target, ignore_index)
        ctx.save_for_backward(log_probs, safe, keep, count)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor, None, None]:
        log_probs, safe, keep, count = ctx.saved_tensors
        return _softmax_minus_onehot(log_probs, safe, keep, count, grad_loss), None, None


class _LinearCrossEntropy(torch.autograd.Function):
    """The decoder's product, the softmax and the mean NLL in one function, its backward by hand.

    On the CPU the buffer holds the softmax itself (not its log): the backward's gradient is then that buffer with
    ``-1`` at the targets, no pass over it, where from log-probabilities it takes an ``exp`` of every entry (at the
    seed notebook's shape, 1,200 x 10,000 per step, that pass was 5% of a 2-thread step; with the bias added by the
    product's own ``addmm``, 6.5%). The loss is ``-log p[target]``, exact to the softmax's rounding while
    ``p[target]`` is a normal float; a row where it underflows (a prediction confident beyond ``e^-87`` and
    wrong) is computed again from its logits as ``logsumexp - logit``, the only rows that pay for it. On CUDA,
    where that check would be a synchronisation every step, the buffer holds the log-probabilities."""

    @staticmethod
    def forward(
        ctx: Any, hidden: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor, ignore_index: int
    ) -> Tensor:
        # hidden: (N, H); weight: (vocab, H); bias: (vocab,); target: (N,)
        logits = _WORKSPACE.take((hidden.size(0), weight.size(0)), hidden.dtype, hidden.device)  # (N, vocab)
        if bias is not None:
            torch.addmm(bias, hidden, weight.t(), out=logits)
        else:
            torch.mm(hidden, weight.t(), out=logits)
        ctx.probs = hidden.device.type == "cpu"
        if not ctx.probs:  # in place: the logits' buffer becomes the log-probabilities
            log_probs = torch._log_softmax(logits, -1, False, out=logits)
            loss, safe, keep, count = _mean_nll(log_probs, target, ignore_index)
            ctx.save_for_backward(hidden, weight, log_probs, safe, keep, count)
            ctx.has_bias = bias is not None
            return loss
        keep = target != ignore_index  # (N,)
        safe = torch.where(keep, target, torch.zeros_like(target)).unsqueeze(1)  # (N, 1)
        picked = logits.gather(1, safe).squeeze(1)  # the targets' logits, before the softmax overwrites them
        probs = torch._softmax(logits, -1, False, out=logits)  # in place: (N, vocab)
        nll = probs.gather(1, safe).squeeze(1).log_().neg_()  # (N,)
        low = (nll > -math.log(torch.finfo(nll.dtype).tiny)) & keep  # p[target] below the normal floats
        if bool(low.any()):
            rows = low.nonzero().squeeze(1)
            again = hidden[rows] @ weight.t() + (bias if bias is not None else 0)  # (k, vocab)
            nll[rows] = torch.logsumexp(again, -1) - picked[rows]
        count = keep.sum()
        loss = torch.where(keep, nll, 0.0).sum() / count.clamp(min=1)  # an ignored row's nll may be inf
        ctx.save_for_backward(hidden, weight, probs, safe.squeeze(1), keep, count)
        ctx.has_bias = bias is not None
        return loss

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor | None, ...]:
        hidden, weight, buf, safe, keep, count = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        scale = None
        if buf.device.type == "cpu" and bool(keep.all()):  # a free check on the CPU (a sync on CUDA)
            # every row counts alike: apply 1 / count to the three (much smaller) results instead of a pass over
            # the (N, vocab) gradient
            scale = grad_loss / count
            grad = buf if ctx.probs else buf.exp_()  # the softmax, in place
            grad.scatter_add_(1, safe.unsqueeze(1), torch.full((grad.size(0), 1), -1.0, dtype=grad.dtype))
        elif ctx.probs:
            grad = _minus_onehot(buf, safe, keep, count, grad_loss)
        else:
            grad = _softmax_minus_onehot(buf, safe, keep, count, grad_loss)  # (N, vocab)
        grad_hidden = torch.mm(grad, weight) if need_h else None  # (N, H)
        # (vocab, H) in the parameter's own layout, as autograd's addmm backward computes it: a transposed
        # (H, vocab) product was faster on some CPUs and shapes but slower on others, and autograd had to copy it
        # into the parameter's layout when it accumulated; the row scale rides on the small ``hidden``
        scaled = hidden if scale is None else hidden * scale  # (N, H)
        grad_weight = torch.mm(grad.t(), scaled) if need_w else None  # (vocab, H)
        # (vocab,): a matrix-vector product reads the gradient at twice the speed of sum(0) on the CPU
        grad_bias = torch.mv(grad.t(), grad.new_ones(grad.size(0))) if ctx.has_bias and need_b else None
        if scale is not None:
            for g in (grad_hidden, grad_bias):
                if g is not None:
                    g.mul_(scale)
        _WORKSPACE.give(buf)  # nothing returned aliases it: the next step's forward may write it
        return grad_hidden, grad_weight, grad_bias, None, None


class _LowPrecisionLinearCrossEntropy(torch.autograd.Function):
    """The output layer under bf16/fp16 autocast: the decoder GEMMs in ``dtype`` with the bias fused in, the
    log-softmax and the loss in fp32 (the log-probabilities in place over the one fp32 copy of the logits), and
    the softmax gradient written once, straight into ``dtype`` for the two backward GEMMs.

    Autocast's generic chain for the same expression keeps fp32 logits and an fp32 gradient of the same
    ``(tokens, vocab)`` size and casts that gradient back to ``dtype`` for the GEMMs: two passes over the largest
    buffers of a step more than this (benchmarks/lm_profile.py --precision bf16). Values and gradients equal
    that chain's to the rounding of ``dtype``."""

    @staticmethod
    def forward(
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        target: Tensor,
        ignore_index: int,
        dtype: torch.dtype,
    ) -> Tensor:
        # hidden: (N, H); weight: (vocab, H) fp32 master; bias: (vocab,); target: (N,)
        h, w = hidden.to(dtype), weight.to(dtype)
        logits = torch.addmm(bias.to(dtype), h, w.t()) if bias is not None else torch.mm(h, w.t())  # (N, V)
        log_probs = logits.float()
        del logits
        torch._log_softmax(log_probs, -1, False, out=log_probs)  # in place: one fp32 buffer
        loss, safe, keep, count = _mean_nll(log_probs, target, ignore_index)
        ctx.save_for_backward(h, w, log_probs, safe, keep, count)
        ctx.has_bias, ctx.dtypes = bias is not None, (hidden.dtype, weight.dtype)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor | None, ...]:
        h, w, log_probs, safe, keep, count = ctx.saved_tensors
        scale = grad_loss / count.clamp(min=1)
        grad = torch.empty(log_probs.shape, dtype=h.dtype, device=h.device)
        torch.exp(log_probs, out=grad)  # softmax, rounded to dtype once
        del log_probs
        grad.scatter_add_(
            1, safe.unsqueeze(1), torch.full((grad.size(0), 1), -1.0, dtype=grad.dtype, device=grad.device)
        )
        grad.mul_((keep.to(scale.dtype) * scale).unsqueeze(1))  # (N, V) in dtype; the row factors stay fp32
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        h_dtype, w_dtype = ctx.dtypes
        grad_hidden = torch.mm(grad, w).to(h_dtype) if need_h else None
        grad_weight = torch.mm(h.t(), grad).t().to(w_dtype) if need_w else None
        grad_bias = grad.sum(0, dtype=torch.float32).to(w_dtype) if ctx.has_bias and need_b else None
        return grad_hidden, grad_weight, grad_bias, None, None, None


def softmax_cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean cross-entropy of ``logits`` (N, vocab) against class indices ``target`` (N,), skipping ``ignore_index``.

    Falls back to ``F.cross_entropy`` where the hand-written backward would not help: no gradient needed (eval),
    or half-precision logits (the reduction is done in fp32 by PyTorch's kernels there).
    """
    if not (torch.is_grad_enabled() and logits.requires_grad) or logits.dtype not in (torch.float32, torch.float64):
        return F.cross_entropy(logits, target, ignore_index=ignore_index)
    return _SoftmaxCrossEntropy.apply(logits, target, ignore_index)


def linear_cross_entropy(
    hidden: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor, ignore_index: int = -100
) -> Tensor:
    """``F.cross_entropy(F.linear(hidden, weight, bias), target)`` for ``hidden`` (N, H), as one fused function.

    Used for the training loss of language models: in fp32 as one function; under bf16/fp16 autocast (CPU or
    CUDA) as its low-precision form (GEMMs in that dtype, softmax and loss in fp32); without gradients, or for other
    dtypes, exactly the unfused expression.
    """
    kind = hidden.device.type
    training = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    if training and kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind):
        dtype = torch.get_autocast_dtype(kind)
        if dtype in (torch.bfloat16, torch.float16) and weight.dtype == torch.float32:
            with torch.autocast(kind, enabled=False):
                return _LowPrecisionLinearCrossEntropy.apply(hidden, weight, bias, target, ignore_index, dtype)
    fused = (
        training
        and hidden.dtype in (torch.float32, torch.float64)
        and weight.dtype == hidden.dtype
        and not torch.is_autocast_enabled(kind)
    )
    if not fused:
        return softmax_cross_entropy(F.linear(hidden, weight, bias).float(), target, ignore_index)
    return _LinearCrossEntropy.apply(hidden, weight, bias, target, ignore_index)
