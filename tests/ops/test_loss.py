"""The hand-written softmax cross-entropy must equal PyTorch's, value and gradient, or training silently changes."""

import pytest
import torch
import torch.nn.functional as F

from rnnkit.ops.loss import softmax_cross_entropy


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


@pytest.mark.parametrize(("bias", "tied", "ignore_every"), [(True, False, 0), (False, False, 4), (True, True, 3)])
def test_linear_cross_entropy_matches_linear_then_cross_entropy(bias: bool, tied: bool, ignore_every: int) -> None:
    """The fused output layer: loss and the gradients of hidden, weight and bias, incl. a weight also used as
    an embedding (tied), where the transposed weight gradient is accumulated with the embedding's."""
    from rnnkit.ops.loss import linear_cross_entropy

    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(48, 24, dtype=torch.float64, generator=g)
    weight = torch.randn(300, 24, dtype=torch.float64, generator=g) * 0.3
    b = torch.randn(300, dtype=torch.float64, generator=g) if bias else None
    target = torch.randint(0, 300, (48,), generator=g)
    if ignore_every:
        target[::ignore_every] = -100
    tokens = torch.randint(0, 300, (10,), generator=g)

    def run(fused: bool) -> tuple[torch.Tensor, ...]:
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        bb = b.clone().requires_grad_() if b is not None else None
        loss = linear_cross_entropy(h, w, bb, target) if fused else F.cross_entropy(F.linear(h, w, bb), target)
        if tied:
            loss = loss + F.embedding(tokens, w).pow(2).sum() * 0.01
        (loss * 1.7).backward()
        return (loss, h.grad, w.grad) + ((bb.grad,) if bb is not None else ())

    for ours, ref in zip(run(True), run(False)):
        assert torch.allclose(ours, ref, rtol=0, atol=1e-12)
    assert run(True)[2].is_contiguous()  # the transposed product lands in the parameter's layout


def test_linear_cross_entropy_without_grad_or_under_autocast_is_the_plain_expression() -> None:
    from rnnkit.ops.loss import linear_cross_entropy

    hidden, weight, b = torch.randn(16, 8), torch.randn(50, 8), torch.randn(50)
    target = torch.randint(0, 50, (16,))
    ref = F.cross_entropy(F.linear(hidden, weight, b), target)
    with torch.no_grad():
        assert torch.allclose(linear_cross_entropy(hidden, weight, b, target), ref, atol=1e-6)
    w = weight.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = linear_cross_entropy(hidden, w, b, target)
    assert out.dtype == torch.float32 and abs(out.item() - ref.item()) < 0.05
    out.backward()
    assert w.grad is not None and w.grad.dtype == torch.float32


@pytest.mark.parametrize("bias", [True, False])
def test_linear_cross_entropy_under_bf16_autocast_equals_autocasts_own_chain(bias: bool) -> None:
    """The low-precision output layer (bf16 GEMMs, fp32 log-softmax in place, the softmax gradient written once in
    bf16) against autocast's generic F.linear -> float -> cross_entropy: the same value and gradients to bf16
    rounding (relative error below 1e-2), fp32 gradients for the fp32 weights, and ignored rows ignored."""
    from rnnkit.ops.loss import linear_cross_entropy

    torch.manual_seed(0)
    h0, w0, b0 = torch.randn(40, 16), torch.randn(300, 16) * 0.3, torch.randn(300) * 0.1
    target = torch.randint(0, 300, (40,))
    target[::7] = -100

    def run(ours: bool) -> tuple[torch.Tensor, ...]:
        h = h0.bfloat16().requires_grad_()  # the dropout output under autocast is bf16
        w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_() if bias else None
        fn = linear_cross_entropy if ours else (lambda h, w, b, t: F.cross_entropy(F.linear(h, w, b).float(), t))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = fn(h, w, b, target)
        (loss * 3.0).backward()
        grads = (h.grad, w.grad) + ((b.grad,) if b is not None else ())
        return (loss, *grads)

    mine, ref = run(True), run(False)
    assert mine[0].dtype == torch.float32 and mine[1].dtype == torch.bfloat16
    assert all(g.dtype == torch.float32 for g in mine[2:])
    for a, r in zip(mine, ref):
        a, r = a.detach().double(), r.detach().double()
        assert float((a - r).norm() / r.norm()) < 1e-2


def test_output_buffer_reused_across_steps_keeps_every_gradient_right() -> None:
    """The fused output layer reuses one logits buffer across steps (a fresh one is page faults every step on
    the CPU): step after step, two losses summed before one backward (gradient accumulation), and a second
    backward through a graph whose buffer a later step reused (which must fail loudly, not read new values)."""
    from rnnkit.ops.loss import _WORKSPACE, linear_cross_entropy

    g = torch.Generator().manual_seed(2)
    weight = (torch.randn(200, 16, generator=g) * 0.3).requires_grad_()
    bias = torch.randn(200, generator=g).requires_grad_()
    batches = [(torch.randn(30, 16, generator=g), torch.randint(0, 200, (30,), generator=g)) for _ in range(3)]

    def reference(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
        w, b = weight.detach().clone().requires_grad_(), bias.detach().clone().requires_grad_()
        hs = [h.clone().requires_grad_() for h, _ in pairs]
        loss = sum(F.cross_entropy(F.linear(h, w, b), t) for h, (_, t) in zip(hs, pairs))
        loss.backward()
        return (loss.detach(), w.grad, b.grad, *[h.grad for h in hs])

    def fused(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
        weight.grad = bias.grad = None
        hs = [h.clone().requires_grad_() for h, _ in pairs]
        loss = sum(linear_cross_entropy(h, weight, bias, t) for h, (_, t) in zip(hs, pairs))
        loss.backward()
        return (loss.detach(), weight.grad, bias.grad, *[h.grad for h in hs])

    for pairs in ([batches[0]], [batches[1]], batches[:2], [batches[2]], batches):  # one step, then accumulation
        for ours, ref in zip(fused(pairs), reference(pairs)):
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert _WORKSPACE.free is not None and _WORKSPACE.free.shape == (30, 200)  # kept for the next step

    h0 = batches[0][0].clone().requires_grad_()
    kept = linear_cross_entropy(h0, weight, bias, batches[0][1])
    kept.backward(retain_graph=True)
    linear_cross_entropy(batches[1][0].clone().requires_grad_(), weight, bias, batches[1][1]).backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        kept.backward()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_cross_entropy_where_the_target_probability_underflows(dtype: torch.dtype) -> None:
    """A prediction confident and wrong beyond the smallest normal float: the loss is still logsumexp - logit (a
    finite ~1e3 nats here, not inf or nan), the gradient still softmax - onehot; an ignored row whose target
    probability is 0 adds nothing (inf x 0 would be nan)."""
    from rnnkit.ops.loss import linear_cross_entropy

    g = torch.Generator().manual_seed(2)
    hidden = torch.randn(6, 4, dtype=torch.float64, generator=g)
    weight = torch.randn(50, 4, dtype=torch.float64, generator=g)
    bias = torch.zeros(50, dtype=torch.float64)
    bias[7] = 1000.0  # word 7 takes every row's probability: every other word's is exp(-~1000) = 0
    target = torch.tensor([3, 7, 11, 7, 3, 0])
    target_ignored = target.clone()
    target_ignored[4] = -100

    def run(fused: bool, tgt: torch.Tensor) -> list[torch.Tensor]:
        h, w, b = (t.to(dtype).clone().requires_grad_() for t in (hidden, weight, bias))
        loss = linear_cross_entropy(h, w, b, tgt) if fused else F.cross_entropy(F.linear(h, w, b), tgt)
        loss.backward()
        return [loss.detach(), h.grad, w.grad, b.grad]

    for tgt in (target, target_ignored):
        ours, ref = run(True, tgt), run(False, tgt)
        assert torch.isfinite(ours[0]) and ours[0] > 100
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
