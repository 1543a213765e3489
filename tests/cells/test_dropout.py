"""rnnkit's CPU dropout must be inverted dropout with PyTorch's semantics: keep rate, scale, eval identity, grads."""

import pytest
import torch

from rnnkit.cells.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_scale_and_gradient(p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(200_000, requires_grad=True)
    y = dropout(x, p)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005  # 200k draws: ~5 sigma at most
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * mask)/dx = mask


def test_identity_in_eval_and_at_zero_and_module_follows_train_mode() -> None:
    x = torch.randn(4, 5)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    m = Dropout(0.5)
    assert (m(torch.ones(1000)) == 0).any()
    m.eval()
    assert torch.equal(m(x), x)
    assert torch.equal(dropout(torch.ones(3), 1.0), torch.zeros(3))
    with pytest.raises(ValueError):
        Dropout(1.5)


def test_bf16_dropout_keeps_its_dtype_and_the_exact_keep_probability():
    """Under autocast the activations are bf16: the mask is drawn in fp32 (a bf16 uniform would shift the keep
    probability by up to 2^-9) and applied in bf16, survivors scaled by 1 / (1 - p)."""
    torch.manual_seed(0)
    x = torch.ones(400_000, dtype=torch.bfloat16)
    y = dropout(x, 0.3)
    assert y.dtype == torch.bfloat16
    kept = (y != 0).double().mean().item()
    assert abs(kept - 0.7) < 0.003  # 4 sigma at this size
    assert set(torch.unique(y).tolist()) == {0.0, float(torch.tensor(1 / 0.7).bfloat16())}
