"""The hand-written softmax cross-entropy must equal PyTorch's, value and gradient, or training silently changes."""

import pytest
import torch
import torch.nn.functional as F

from rnnkit.train.loss import softmax_cross_entropy


@pytest.mark.parametrize("ignore_every", [0, 3])
def test_matches_torch_cross_entropy_value_and_gradient(ignore_every: int) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 500, dtype=torch.float64, generator=g) * 3
    target = torch.randint(0, 500, (64,), generator=g)
    if ignore_every:
        target[::ignore_every] = -100
    ours = logits.clone().requires_grad_()
    ref = logits.clone().requires_grad_()
    a, b = softmax_cross_entropy(ours, target), F.cross_entropy(ref, target)
    (a * 2.5).backward()
    (b * 2.5).backward()
    assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert torch.allclose(ours.grad, ref.grad, rtol=0, atol=1e-12)
    if ignore_every:
        assert ours.grad[::ignore_every].abs().max() == 0


def test_custom_ignore_index_and_float32() -> None:
    logits = torch.randn(40, 30, requires_grad=True)
    target = torch.randint(1, 30, (40,))
    target[5:9] = 0
    loss = softmax_cross_entropy(logits, target, ignore_index=0)
    (grad,) = torch.autograd.grad(loss, logits)
    ref_logits = logits.detach().clone().requires_grad_()
    (ref_grad,) = torch.autograd.grad(F.cross_entropy(ref_logits, target, ignore_index=0), ref_logits)
    assert torch.allclose(loss, F.cross_entropy(logits.detach(), target, ignore_index=0), atol=1e-6)
    assert torch.allclose(grad, ref_grad, atol=1e-7)
