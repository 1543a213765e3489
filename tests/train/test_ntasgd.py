"""NT-ASGD: SGD until validation stalls, then Polyak averaging; everything in the optimizer's state dict."""

from __future__ import annotations

import copy

import torch

from rnnkit.train.optim import NTASGD


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, i: int) -> None:
    g = torch.Generator().manual_seed(i)
    x, y = torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()


def test_trigger_is_non_monotone():
    opt = NTASGD(_model().parameters(), lr=0.1, nonmono=2)
    # history before the last 2 evaluations must exist and be better than the new value
    assert [opt.observe(v) for v in (5.0, 4.0, 3.0, 3.5)] == [False] * 4  # 3.5 is not worse than min([5])
    assert opt.observe(4.5) and opt.averaging  # 4.5 > min([5, 4])
    assert not opt.observe(9.0)  # switches once


def test_before_the_switch_it_is_sgd_with_weight_decay():
    a, b = _model(), _model()
    oa = NTASGD(a.parameters(), lr=0.5, weight_decay=0.01)
    ob = torch.optim.SGD(b.parameters(), lr=0.5, weight_decay=0.01)
    for i in range(5):
        _step(a, oa, i)
        _step(b, ob, i)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-7)


def test_average_of_iterates_is_evaluated_then_weights_come_back():
    model = _model()
    opt = NTASGD(model.parameters(), lr=0.3, nonmono=1)
    _step(model, opt, 0)
    for v in (1.0, 0.5, 2.0):
        opt.observe(v)
    assert opt.averaging
    iterates = []
    for i in range(1, 5):
        _step(model, opt, i)
        iterates.append([p.detach().clone() for p in model.parameters()])
    current = [p.detach().clone() for p in model.parameters()]
    with opt.averaged():
        for k, p in enumerate(model.parameters()):
            torch.testing.assert_close(p, torch.stack([it[k] for it in iterates]).mean(0))
    assert all(torch.equal(p, c) for p, c in zip(model.parameters(), current))


def test_state_dict_resumes_exactly_while_averaging():
    model = _model()
    opt = NTASGD(model.parameters(), lr=0.3, weight_decay=1e-3, nonmono=1)
    for v in (1.0, 0.5, 2.0):
        opt.observe(v)
    for i in range(3):
        _step(model, opt, i)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    for i in range(3, 6):
        _step(model, opt, i)
    resumed = _model()
    resumed.load_state_dict(saved_model)
    opt2 = NTASGD(resumed.parameters(), lr=0.3, weight_decay=1e-3, nonmono=1)
    opt2.load_state_dict(saved_opt)
    assert opt2.averaging and opt2.param_groups[0]["val_history"] == [1.0, 0.5, 2.0]
    for i in range(3, 6):
        _step(resumed, opt2, i)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), resumed.parameters()))
    with opt.averaged(), opt2.averaged():
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), resumed.parameters()))
