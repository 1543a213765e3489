"""The projected LSTM recurrence against nn.LSTM, and the per-shape choice between the two.

Tolerances: in fp64 the projected layer is nn.LSTM's arithmetic in another order (1e-10); in fp32 1e-5. With
bf16 GEMMs (fp32 cell state and gate arithmetic) the stated tolerance is a relative error (Frobenius norm) of at
most 2e-2 for the output and for every gradient against the fp32 layer; measured values are ~5e-3.
"""

from __future__ import annotations

import pytest
import torch

from conftest import expected_choice
from rnnkit.cells import select
from rnnkit.cells.base import RecurrentSpec
from rnnkit.cells.kernel import KernelLSTM, build_kernel
from rnnkit.cells.projected import lstm_stack
from rnnkit.train.precision import Precision

BF16_TOL = 2e-2


@pytest.fixture(autouse=True)
def _fresh_choices():
    select.reset()
    select.set_policy(None)
    yield
    select.reset()
    select.set_policy(None)


def _grads(out, state, ins, seed=0):
    g = torch.Generator().manual_seed(seed)
    y, (h, c) = out, state
    loss = sum(
        (t.float() * torch.randn(t.shape, generator=g, dtype=torch.float32).to(t.device)).sum() for t in (y, h, c)
    )
    return torch.autograd.grad(loss, ins)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layers,inp,hidden", [(1, 5, 7), (2, 8, 6), (3, 4, 9)])
def test_equals_nn_lstm_in_double(bias, layers, inp, hidden):
    torch.manual_seed(layers)
    lstm = torch.nn.LSTM(inp, hidden, layers, bias=bias).double()
    x = torch.randn(6, 3, inp, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(layers, 3, hidden, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(layers, 3, hidden, dtype=torch.double, requires_grad=True)
    ins = [x, h0, c0, *lstm.parameters()]
    ref_y, ref_s = lstm(x, (h0, c0))
    y, s = lstm_stack(lstm, x, (h0, c0), torch.float64)
    for a, b in zip((y, *s), (ref_y, *ref_s)):
        assert a.dtype == b.dtype and torch.allclose(a, b, rtol=0, atol=1e-12)
    for a, b in zip(_grads(y, s, ins), _grads(ref_y, ref_s, ins)):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


def test_equals_nn_lstm_in_fp32_without_state():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(20, 16, 2)
    x = torch.randn(9, 4, 20, requires_grad=True)
    ins = [x, *lstm.parameters()]
    ref_y, ref_s = lstm(x)
    y, s = lstm_stack(lstm, x, None, torch.float32)
    assert torch.allclose(y, ref_y, atol=1e-5) and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(s, ref_s))
    for a, b in zip(_grads(y, s, ins), _grads(ref_y, ref_s, ins)):
        assert torch.allclose(a, b, atol=1e-5)


def test_bf16_gemms_stay_within_the_stated_tolerance_of_fp32():
    """bf16 operands, fp32 state: output and every gradient within BF16_TOL of the fp32 layer; the weights'
    gradients come back in fp32 (the master weights' dtype), the output in bf16."""
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(48, 32, 2)
    x = torch.randn(12, 5, 48, requires_grad=True)
    h0, c0 = torch.randn(2, 5, 32) * 0.5, torch.randn(2, 5, 32) * 0.5
    ins = [x, *lstm.parameters()]
    ref_y, ref_s = lstm_stack(lstm, x, (h0, c0), torch.float32)
    y, s = lstm_stack(lstm, x, (h0, c0), torch.bfloat16)
    assert y.dtype == torch.bfloat16 and s[0].dtype == s[1].dtype == torch.float32
    assert _rel(y, ref_y) < BF16_TOL and _rel(s[1], ref_s[1]) < BF16_TOL
    grads = _grads(y, s, ins)
    assert all(g.dtype == torch.float32 for g in grads)
    errors = [_rel(a, b) for a, b in zip(grads, _grads(ref_y, ref_s, ins))]
    assert max(errors) < BF16_TOL, errors
    assert max(errors) > 0  # ... and the GEMMs really ran in bf16


def test_fused_lstm_under_bf16_autocast_picks_by_cpu_kind_and_keeps_an_fp32_state():
    """Under bf16 autocast the implementation follows the CPU kind (:func:`expected_choice`); on every kind the
    output is bf16, the state fp32 (the parameters' dtype, whichever implementation ran), the module's own
    parameters train, and fp32 calls (evaluation) stay on the kernel."""
    torch.manual_seed(2)
    m = build_kernel(RecurrentSpec("lstm", 16, 12, 2))
    assert isinstance(m, KernelLSTM)
    x = torch.randn(6, 3, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, (h, c) = m(x)
    k = select.key(m, x, torch.bfloat16)
    assert select.choices() == {k: expected_choice(k)}
    assert y.dtype == torch.bfloat16 and h.dtype == c.dtype == torch.float32
    y.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in m.parameters())
    ref, _ = torch.nn.LSTM.forward(m, x)
    assert _rel(y, ref) < BF16_TOL
    out, _ = m(x)  # fp32: the kernel, no choice recorded
    assert torch.equal(out, ref) and len(select.choices()) == 1


@pytest.mark.parametrize("impl", ["kernel", "projected"])
def test_each_implementation_returns_the_state_in_the_parameters_dtype(impl):
    """Forced either way, the state is fp32 under bf16 autocast: oneDNN's kernel hands back bf16 h and c, which
    KernelLSTM widens, so what a model carries across BPTT windows never depends on the timing's verdict."""
    if impl == "kernel" and not select._oneDNN_has_bf16_lstm():
        pytest.skip(
            "AVX2 only: oneDNN has no bf16 LSTM on this CPU, so this path does not exist here "
            "(test_bf16_choice_on_every_cpu_kind runs the AVX-512 kinds wherever the CPU has them)"
        )
    select.set_policy(impl)
    torch.manual_seed(5)
    m = build_kernel(RecurrentSpec("lstm", 8, 6, 2))
    x = torch.randn(5, 2, 8)
    state = (torch.randn(2, 2, 6), torch.randn(2, 2, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, (h, c) = m(x, state)
    assert y.dtype == torch.bfloat16 and h.dtype == c.dtype == torch.float32
    ref_y, (ref_h, ref_c) = torch.nn.LSTM.forward(m, x, state)
    assert _rel(y, ref_y) < BF16_TOL and _rel(h, ref_h) < BF16_TOL and _rel(c, ref_c) < BF16_TOL
    (h.sum() + c.sum()).backward()  # the widening keeps the graph
    assert all(p.grad is not None for p in m.parameters())


_KIND_SCRIPT = """
import torch
from rnnkit.cells import select
from rnnkit.cells.base import RecurrentSpec
from rnnkit.cells.kernel import build_kernel
torch.manual_seed(0)
m = build_kernel(RecurrentSpec("lstm", 16, 12, 2))
x = torch.randn(6, 3, 16)
with torch.autocast("cpu", dtype=torch.bfloat16):
    y, (h, c) = m(x)
k = select.key(m, x, torch.bfloat16)
assert y.dtype == torch.bfloat16 and h.dtype == c.dtype == torch.float32, (y.dtype, h.dtype, c.dtype)
if select._oneDNN_has_bf16_lstm():
    t = select.timings()[k]
    assert select.choices() == {k: min(t, key=t.__getitem__)}, (select.choices(), t)
    print("timed", select.choices()[k])
else:
    assert select.choices() == {k: "projected"} and k not in select.timings()
    print("untimed projected")
"""


@pytest.mark.parametrize("isa", ["AVX2", "AVX512_CORE_VNNI", ""])
def test_bf16_choice_on_every_cpu_kind(isa):
    """The three CPU kinds these machines come in, on whichever this one is: oneDNN capped at AVX2 (no bf16 LSTM:
    the projected layer, untimed), at AVX-512 without bf16 units (oneDNN emulates bf16: timed - the kind whose
    kernel returned a bf16 state), and uncapped (this CPU as it is). A cap above the CPU changes nothing, so on an
    AVX2 machine all three run the AVX2 branch."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if isa:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    done = subprocess.run([sys.executable, "-c", _KIND_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    if isa == "AVX2":
        assert done.stdout.strip() == "untimed projected"


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(8, 8, 2, dropout=0.5)
    x = torch.randn(5, 4, 8)
    lstm.eval()
    ref, _ = lstm(x)
    assert torch.allclose(lstm_stack(lstm, x, None, torch.float32)[0], ref, atol=1e-6)
    lstm.train()
    assert not torch.allclose(lstm_stack(lstm, x, None, torch.float32)[0], ref, atol=1e-3)


def test_policy_forces_an_implementation(monkeypatch):
    m = build_kernel(RecurrentSpec("lstm", 6, 5, 1))
    x = torch.randn(4, 2, 6)
    monkeypatch.setenv(select.ENV, "projected")
    select.set_policy(None)  # the process default follows the environment again
    assert select.default().choose(m, x) == "projected"
    y, _ = m(x)  # fp32 through the projected layer
    assert torch.allclose(y, torch.nn.LSTM.forward(m, x)[0], atol=1e-6)
    monkeypatch.setenv(select.ENV, "kernel")
    select.set_policy(None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert select.default().choose(m, x) == "kernel"
    monkeypatch.setenv(select.ENV, "fused")  # the old name, for one release
    select.set_policy(None)
    with pytest.warns(DeprecationWarning, match="'fused' is now called 'kernel'"):
        assert select.default().policy == "kernel"
    monkeypatch.setenv(select.ENV, "fastest")
    select.set_policy(None)
    from rnnkit.errors import UserError

    with pytest.raises(UserError, match=select.ENV):
        select.default()


def test_the_configuration_value_is_resolved_once_and_the_environment_overrides_it(monkeypatch):
    """train.recurrence becomes the run's Recurrence; RNNKIT_RECURRENCE wins over it, and the record says so."""
    monkeypatch.delenv(select.ENV, raising=False)
    rec = select.resolve("projected")
    assert rec.policy == "projected" and rec.record() == {"policy": "projected", "from": "train.recurrence"}
    monkeypatch.setenv(select.ENV, "kernel")
    rec = select.resolve("projected")
    assert rec.record() == {"policy": "kernel", "from": select.ENV, "configured": "projected"}
    m = build_kernel(RecurrentSpec("lstm", 6, 5, 1))
    select.attach(torch.nn.Sequential(m), select.resolve("projected"))
    assert m.recurrence is not None and select.recurrence_of(m) is m.recurrence
    x = torch.randn(4, 2, 6)
    assert m.recurrence.choose(m, x) == "kernel"  # the environment's override, not the process default


def test_timing_leaves_rng_and_gradients_alone(monkeypatch):
    """The set-up timing draws in a forked RNG and uses autograd.grad: the training stream and .grad are as if it
    had never run. (Here oneDNN is told it has bf16, so the timing runs; where its kernel then fails, the
    projected layer wins.)"""
    monkeypatch.setattr(select, "_oneDNN_has_bf16_lstm", lambda: True)
    m = build_kernel(RecurrentSpec("lstm", 8, 6, 2, dropout=0.3))
    x = torch.randn(5, 2, 8)
    torch.manual_seed(11)
    before = torch.get_rng_state()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        chosen = select.default().choose(m, x)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(p.grad is None for p in m.parameters())
    k = select.key(m, x, torch.bfloat16)
    assert select.choices() == {k: chosen} and k in select.timings()


def test_the_faster_implementation_wins():
    import time

    def slow() -> None:
        time.sleep(0.03)

    def fast() -> None:
        pass

    x = torch.zeros(1, 1, 1)
    assert select._time("a", x, kernel=slow, projected=fast) == "projected"
    assert select._time("b", x, kernel=fast, projected=slow) == "kernel"
    assert select.timings()["a"]["kernel"] >= 30


def test_choices_travel_with_the_precision_state():
    """The run's choices (its Recurrence) are the precision state's "recurrence"; a checkpoint of rnnkit 0.2 that
    says "fused" loads as "kernel"."""
    rec = select.Recurrence()
    rec.load_state_dict({"cpu/bfloat16/train/8x6/batch2": "projected", "a": "fused", "bogus": "other"})
    state = Precision("fp32", torch.device("cpu"), rec).state_dict()
    assert state == {"recurrence": {"cpu/bfloat16/train/8x6/batch2": "projected", "a": "kernel"}}
    fresh = select.Recurrence()
    Precision("fp32", torch.device("cpu"), fresh).load_state_dict(state)
    assert fresh.choices == {"cpu/bfloat16/train/8x6/batch2": "projected", "a": "kernel"}
