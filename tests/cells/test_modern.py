"""The modern cells (minGRU, minLSTM, sLSTM, mLSTM, Mamba): the fast form against the paper's step, padding,
directions, stacking, state continuation, the decode path and precision - the contract of make_recurrent."""

from __future__ import annotations

import importlib

import pytest
import torch

from rnnkit.cells.base import RecurrentSpec

CELLS = ("mingru", "minlstm", "slstm", "mlstm", "mamba")
SEQ, BATCH, INPUT, HIDDEN = 7, 3, 5, 8
LENGTHS = torch.tensor([7, 4, 1])
# small hyperparameters: 2 heads, Mamba N = 4, a width-3 convolution, mLSTM chunks of 4 steps (several per sequence)
EXTRA = dict(heads=2, state_size=4, conv_size=3)


def _module(cell: str):
    return importlib.import_module(f"rnnkit.cells.{cell}")


def _spec(cell: str, **kw) -> RecurrentSpec:
    kw = {"num_layers": 1, "bidirectional": False, **EXTRA, **kw}
    return RecurrentSpec(cell, INPUT, HIDDEN, **kw)


def _pair(spec: RecurrentSpec, dtype=torch.float64, seed: int = 0):
    """(scratch, fast) modules with the same weights."""
    mod = _module(spec.cell)
    torch.manual_seed(seed)
    scratch = mod.build(spec, "scratch").to(dtype)
    _perturb(scratch)
    fast = mod.build(spec, "fast").to(dtype)
    fast.load_state_dict(scratch.state_dict())
    for layer in fast.layers:  # several chunks / blocks per test sequence
        for core in layer:
            for knob in ("chunk_size", "block"):
                if hasattr(core, knob):
                    setattr(core, knob, 3)
    return scratch, fast


def _perturb(module: torch.nn.Module) -> None:
    """Move every parameter off its initial value (zero recurrent weights, unit norms...): all paths exercised."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _random_state(module, gen, dtype):
    shapes = module.state_shapes(BATCH)
    parts = []
    for name, shape in shapes:
        t = torch.randn(shape, generator=gen, dtype=dtype)
        if name == "n":  # a normaliser: positive, as the recurrence keeps it
            t = t.abs() + 0.5
        if name == "C" or name == "m":
            t = 0.5 * t
        parts.append(t)
    return parts[0] if len(parts) == 1 else tuple(parts)


def _run(module, x, state, lengths, weights):
    out, new = module(x, state, lengths=lengths)
    new = _tuple(new)
    loss = (out * weights[0]).sum() + sum((s * w[: s.numel()].view_as(s)).sum() for s, w in zip(new, weights[1:]))
    inputs = [x, *(_tuple(state) if state is not None else ())]
    names = [n for n, _ in module.named_parameters()]
    grads = torch.autograd.grad(loss, inputs + [p for _, p in module.named_parameters()], allow_unused=True)
    return out, new, grads[: len(inputs)], dict(zip(names, grads[len(inputs) :]))


def _close(a, b, tol, what, exact=None):
    if a is None or b is None:
        assert a is None and b is None or (a if a is not None else b).abs().max() == 0, what
        return
    # relative to the tensor's own scale: a gradient of size 40 carries fp32 rounding of ~4e-6 per operation
    atol = tol * max(1.0, float(a.detach().abs().max()))
    if exact is not None:  # plus the reference's own rounding: how far the fp32 step is from the fp64 answer
        atol += float((a.detach().double() - exact.detach()).abs().max())
    torch.testing.assert_close(a, b, rtol=tol, atol=atol, msg=lambda m: f"{what}: {m}")


def _exact(module, x, state, lengths, weights):
    """``_run`` of a float64 copy of ``module`` on the same (rounded) inputs."""
    import copy

    double = copy.deepcopy(module).double()
    x = x.detach().double().requires_grad_()
    if state is not None:
        state = tuple(s.detach().double().requires_grad_() for s in _tuple(state))
        state = state[0] if len(state) == 1 else state
    return _run(double, x, state, lengths, [w.double() for w in weights])


def _compare(cell, dtype, tol, num_layers, bidirectional, padded, with_state):
    spec = _spec(cell, num_layers=num_layers, bidirectional=bidirectional, dropout=0.0)
    scratch, fast = _pair(spec, dtype)
    assert [n for n, _ in scratch.named_parameters()] == [n for n, _ in fast.named_parameters()]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(SEQ, BATCH, INPUT, generator=gen, dtype=dtype, requires_grad=True)
    state = _random_state(scratch, gen, dtype) if with_state else None
    if state is not None:
        state = tuple(s.requires_grad_() for s in _tuple(state)) if isinstance(state, tuple) else state.requires_grad_()
    lengths = LENGTHS if padded else None
    out0, _ = scratch(x, state, lengths=lengths)
    weights = [torch.randn(out0.shape, generator=gen, dtype=dtype)] + [
        torch.randn(s.numel(), generator=gen, dtype=dtype)
        for _, s in ((0, torch.empty(sh)) for _, sh in scratch.state_shapes(BATCH))
    ]
    a = _run(scratch, x, state, lengths, weights)
    b = _run(fast, x, state, lengths, weights)
    # Below float64, the step itself is off the exact answer by more than 1e-5 of a tensor's scale where the
    # test's random weights make it ill-conditioned (a GroupNorm over a near-constant head, a sum of cancelling
    # terms): the fast form must then be within 1e-5 of the step plus the step's own distance from the answer
    # (the step run in float64 on the same numbers).
    e = _exact(scratch, x, state, lengths, weights) if dtype != torch.float64 else None
    _close(a[0], b[0], tol, "output", e and e[0])
    for i, (s, t) in enumerate(zip(a[1], b[1])):
        _close(s, t, tol, f"state {scratch.state_names[i]}", e and e[1][i])
    for i, (s, t) in enumerate(zip(a[2], b[2])):
        _close(s, t, tol, f"input/state gradient {i}", e and e[2][i])
    for name in a[3]:
        _close(a[3][name], b[3][name], tol, f"gradient of {name}", e and e[3][name])
    if padded:
        assert out0[LENGTHS[2] :, 2].abs().max() == 0  # zeros past the length


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "num_layers, bidirectional, padded, with_state",
    [(1, False, False, False), (2, True, True, True)],
    ids=["plain", "deep_bi_padded_state"],
)
def test_fast_equals_scratch_float64(cell, num_layers, bidirectional, padded, with_state):
    _compare(cell, torch.float64, 1e-10, num_layers, bidirectional, padded, with_state)


@pytest.mark.parametrize("cell", CELLS)
def test_fast_equals_scratch_float32(cell):
    _compare(cell, torch.float32, 1e-5, 2, False, True, True)


@pytest.mark.parametrize("cell", ["mamba", "mingru", "minlstm", "mlstm", "slstm"])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
def test_fast_form_without_the_compiled_kernels(monkeypatch, cell, dtype, tol):
    """The PyTorch forms the compiled kernels replace (where no C compiler is, or RNNKIT_NATIVE=0) equal the step
    too: Mamba's selective scan, convolution and gate, minGRU / minLSTM's gated scan, sLSTM's recurrence, mLSTM's
    block-diagonal projections."""
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    # float32 in test_fast_equals_scratch_float32's set-up (one direction: the reverse direction's random
    # weights make mLSTM's float32 gradients ill-conditioned beyond the tolerance in either form)
    _compare(cell, dtype, tol, 2, dtype == torch.float64, True, True)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_min_cells_run_the_compiled_gated_scan(cell):
    """Where the kernel builds, minGRU / minLSTM's fast form goes through it (one autograd node from the
    projection to the states), not the PyTorch form."""
    from rnnkit.cells import native

    if native.library() is None:
        pytest.skip("no C compiler: the PyTorch form runs")
    spec = _spec(cell, num_layers=1)
    _, fast = _pair(spec, torch.float32)
    out, _ = fast(torch.randn(SEQ, BATCH, INPUT))
    names = set()
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and type(node).__name__ not in names:
            names.add(type(node).__name__)
            stack.extend(n for n, _ in node.next_functions)
    assert "GatedScanBackward" in names, names


def test_mamba_compiled_scan_is_used_where_a_compiler_is():
    import shutil

    from rnnkit.cells import native

    if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        pytest.skip("no C compiler: the PyTorch form runs")
    assert native.library() is not None


def test_loading_the_compiled_scan_keeps_subnormal_floats():
    """A kernel built with -ffast-math turns on flush-to-zero for the whole process when loaded; ours must not."""
    import shutil
    import subprocess
    import sys

    if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        pytest.skip("no C compiler: nothing is loaded")
    code = (
        "import sys\nfrom rnnkit.cells import native\nassert native.library() is not None\n"
        "tiny = sys.float_info.min\nprint(tiny / 4 > 0, (tiny / 4) * 4 == tiny)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    assert out.stdout.split() == ["True", "True"], out.stdout + out.stderr


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("backend", ["scratch", "fast"])
def test_one_call_equals_one_step_at_a_time(cell, backend):
    """The decode path: feeding a sequence one step at a time, state carried, gives the same outputs and state."""
    spec = _spec(cell, num_layers=2)
    scratch, fast = _pair(spec)
    module = fast if backend == "fast" else scratch
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)
    with torch.no_grad():
        whole, final = module(x)
        state = None
        outs = []
        for t in range(SEQ):
            y, state = module(x[t : t + 1], state)
            outs.append(y)
        torch.testing.assert_close(torch.cat(outs), whole, rtol=1e-10, atol=1e-10)
        for s, t in zip(_tuple(state), _tuple(final)):
            torch.testing.assert_close(s, t, rtol=1e-10, atol=1e-10)
        # and in two pieces of uneven lengths
        y1, s1 = module(x[:3])
        y2, s2 = module(x[3:], s1)
        torch.testing.assert_close(torch.cat([y1, y2]), whole, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cell", CELLS)
def test_padding_gives_each_sequence_alone(cell):
    """A padded batch: each sequence's output and state are those of the sequence run alone (both directions)."""
    spec = _spec(cell, num_layers=2, bidirectional=True)
    _, fast = _pair(spec)
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)
    with torch.no_grad():
        out, state = fast(x, lengths=LENGTHS)
        for b, n in enumerate(LENGTHS.tolist()):
            alone, s_alone = fast(x[:n, b : b + 1])
            torch.testing.assert_close(out[:n, b : b + 1], alone, rtol=1e-10, atol=1e-10)
            assert out[n:, b].abs().max() == 0 if n < SEQ else True
            for s, t in zip(_tuple(state), _tuple(s_alone)):
                torch.testing.assert_close(s[:, b : b + 1], t, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cell", CELLS)
def test_inference_over_slices_of_a_large_batch_equals_one_call(monkeypatch, cell):
    """Without autograd a batch whose temporaries would pass the bound runs in slices of rows (an evaluation
    batch of 1,000 pixel-MNIST series took 11 GB in an mLSTM): outputs and states equal the whole batch at once,
    with padding and a given state, and the slices are really taken."""
    from rnnkit.cells import modern

    spec = _spec(cell, num_layers=2, bidirectional=True)
    _, fast = _pair(spec)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64, generator=gen)
    state = _random_state(fast, gen, torch.float64)
    whole, s_whole = fast(x, state, lengths=LENGTHS)  # autograd on: one call
    calls = []
    forward = fast._forward
    monkeypatch.setattr(fast, "_forward", lambda *a: calls.append(a[0].size(1)) or forward(*a))
    monkeypatch.setattr(modern, "INFERENCE_BYTES", 1)  # one row per slice
    with torch.no_grad():
        out, s_out = fast(x, state, lengths=LENGTHS)
    assert calls == [1] * BATCH
    torch.testing.assert_close(out, whole.detach(), rtol=1e-12, atol=1e-12)
    for a, b in zip(_tuple(s_out), _tuple(s_whole)):
        torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_state_layout_and_errors(cell):
    mod = _module(cell)
    spec = _spec(cell, num_layers=2, bidirectional=True, dropout=0.3)
    module = mod.build(spec, "fast")
    x = torch.randn(SEQ, BATCH, INPUT)
    out, state = module(x)  # training mode: dropout between the layers
    assert out.shape == (SEQ, BATCH, 2 * HIDDEN)
    layout = mod.state_layout(spec, BATCH)
    assert [(n, tuple(s.shape)) for n, s in zip(module.state_names, _tuple(state))] == layout
    assert all(s.shape[1] == BATCH for s in _tuple(state))  # batch is dim 1 of every state tensor
    assert mod.DOC and isinstance(mod.OPTIONS, dict)
    with pytest.raises(ValueError, match="state"):
        module(x, tuple(torch.zeros(1, BATCH, 1) for _ in layout) if len(layout) > 1 else torch.zeros(1, BATCH, 1))
    with pytest.raises(ValueError, match="x of shape"):
        module(torch.randn(SEQ, BATCH, INPUT + 1))
    with pytest.raises(ValueError, match="backend"):
        mod.build(spec, "cudnn")


@pytest.mark.parametrize("cell", CELLS)
def test_autocast_output_in_compute_dtype_state_in_fp32(cell):
    spec = _spec(cell)
    _, fast = _pair(spec, torch.float32)
    x = torch.randn(SEQ, BATCH, INPUT)
    ref, ref_state = fast(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, state = fast(x)
    assert out.dtype == torch.bfloat16
    assert all(s.dtype == torch.float32 for s in _tuple(state))
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.05


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("cell", CELLS)
def test_scratch_step_traces(cell):
    """The decode step is plain tensor ops: torch.jit.trace of one step gives the eager numbers."""
    spec = _spec(cell)
    scratch, _ = _pair(spec, torch.float32)
    scratch.eval()
    x = torch.randn(1, BATCH, INPUT)
    state = _random_state(scratch, torch.Generator().manual_seed(3), torch.float32)

    class Step(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x, *state):
            out, new = self.m(x, state[0] if len(state) == 1 else state)
            return (out, *_tuple(new))

    step = Step(scratch)
    with torch.no_grad():
        traced = torch.jit.trace(step, (x, *_tuple(state)), check_trace=False)
        for a, b in zip(traced(x, *_tuple(state)), step(x, *_tuple(state))):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_per_layer_sizes_build_one_layer_modules(cell):
    """Layers of different sizes: spec.layer(k) keeps the cell's hyperparameters, and each one-layer module reads
    the previous layer's output (what make_recurrent's LayerStack composes)."""
    spec = RecurrentSpec(cell, INPUT, (8, 4), num_layers=2, bidirectional=True, **EXTRA)
    second = spec.layer(1)
    assert (second.input_size, second.hidden_size, second.num_layers) == (16, 4, 1)
    assert (second.heads, second.state_size, second.conv_size) == (2, 4, 3)
    with pytest.raises(ValueError, match="per-layer"):
        _module(cell).build(spec, "fast")
    x = torch.randn(SEQ, BATCH, INPUT)
    for k in range(2):
        x, _ = _module(cell).build(spec.layer(k), "fast")(x)
    assert x.shape == (SEQ, BATCH, 8)


@pytest.mark.parametrize("state", [3, 16], ids=["N3", "N16"])
def test_compiled_selective_scan_equals_pytorch_form(monkeypatch, state):
    """The compiled scan (its generic loop, and the one specialised for N = 16) against the PyTorch form."""
    from rnnkit.cells import native
    from rnnkit.cells.scan import selective_scan

    if native.library() is None:
        pytest.skip("no C compiler: the PyTorch form runs")
    gen = torch.Generator().manual_seed(0)
    T, B, D = 7, 3, 5
    args = [
        torch.randn(T, B, D, generator=gen, dtype=torch.float64),
        torch.rand(T, B, D, generator=gen, dtype=torch.float64),
        -torch.rand(D, state, generator=gen, dtype=torch.float64),
        torch.randn(T, B, state, generator=gen, dtype=torch.float64),
        torch.randn(T, B, state, generator=gen, dtype=torch.float64),
        torch.randn(B, D, state, generator=gen, dtype=torch.float64),
    ]
    w = torch.randn(T, B, D, generator=gen, dtype=torch.float64)
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("RNNKIT_NATIVE", flag)
        inputs = [a.clone().requires_grad_() for a in args]
        y, h = selective_scan(*inputs, 3)
        grads = torch.autograd.grad((y * w).sum() + h.sum(), inputs)
        results.append((y, h, *grads))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def _mamba_scan_inputs(state: int, dtype: torch.dtype) -> tuple[list[torch.Tensor], torch.Tensor]:
    """mamba_scan's inputs with every softplus branch: dt above PyTorch's threshold (20), far below zero, and -inf
    (a masked step); z a column block of a projection (row stride 2 D); and a weight for the loss."""
    gen = torch.Generator().manual_seed(1)
    T, B, D = 7, 3, 5
    dt = torch.randn(T, B, D, generator=gen, dtype=torch.float64) * 3
    dt[0, 0, :2] = torch.tensor([25.0, 21.0])
    dt[2, 0, :2] = torch.tensor([12.0, 19.0])  # below the threshold: x + log1p(exp(-x)), not x
    dt[1, 1, :2] = torch.tensor([-30.0, -85.0])
    dt[5:, 2] = float("-inf")  # row 2 ends after 5 steps
    proj = torch.randn(T, B, 2 * D, generator=gen, dtype=torch.float64)
    args = [
        torch.randn(T, B, D, generator=gen, dtype=torch.float64),  # u
        dt,
        -torch.rand(D, state, generator=gen, dtype=torch.float64) * 0.5,  # A
        torch.randn(T, B, state, generator=gen, dtype=torch.float64),  # B
        torch.randn(T, B, state, generator=gen, dtype=torch.float64),  # C
        torch.randn(D, generator=gen, dtype=torch.float64),  # D
        proj,
        torch.randn(B, D, state, generator=gen, dtype=torch.float64),  # h0
    ]
    return [a.to(dtype) for a in args], torch.randn(T, B, D, generator=gen, dtype=torch.float64).to(dtype)


def _run_mamba_scan(args: list[torch.Tensor], w: torch.Tensor) -> list[torch.Tensor]:
    from rnnkit.cells.scan import mamba_scan

    inputs = [a.clone().requires_grad_() for a in args]
    u, dt, A, B, C, D, proj, h0 = inputs
    z = proj[..., proj.size(-1) // 2 :]  # not contiguous: rows at stride 2 D
    out, h = mamba_scan(u, dt, A, B, C, D, z, h0, 3)
    grads = torch.autograd.grad((out * w).sum() + h.sum(), inputs)
    return [t.detach().double() for t in (out, h, *grads)]


@pytest.mark.parametrize("state", [3, 16], ids=["N3", "N16"])
def test_compiled_mamba_scan_equals_pytorch_form(monkeypatch, state):
    """Mamba's softplus + selective scan + gate in the compiled kernel against softplus, the scan and the gate in
    PyTorch: in float64 to 1e-10 (values and every gradient), and in float32 (the kernel's own exp, log and
    log1p) within 1e-5 of each tensor's scale from the exact float64 answer."""
    from rnnkit.cells import native

    if native.library() is None:
        pytest.skip("no C compiler: the PyTorch form runs")
    args, w = _mamba_scan_inputs(state, torch.float64)
    monkeypatch.setenv("RNNKIT_NATIVE", "1")
    fused = _run_mamba_scan(args, w)
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    exact = _run_mamba_scan(args, w)
    for a, b in zip(fused, exact):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert exact[3][5:, 2].abs().max() == 0  # no gradient reaches a masked step's dt
    monkeypatch.setenv("RNNKIT_NATIVE", "1")
    args32, w32 = _mamba_scan_inputs(state, torch.float32)
    for i, (f, e) in enumerate(zip(_run_mamba_scan(args32, w32), exact)):
        assert (f - e).abs().max() <= 1e-5 * e.abs().max(), i


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_compiled_gated_scan_at_saturated_gates(monkeypatch, cell):
    """The kernel's own float32 exp (clamped to the normal range) at logits far into the sigmoid's tails, padded
    sequences and a given state: outputs and every gradient within 1e-5 of each tensor's scale from the exact
    answer (the PyTorch form in float64; the gradients reach ~1e3 here, so the scale, not 1e-5 absolute)."""
    from rnnkit.cells import native

    if native.library() is None:
        pytest.skip("no C compiler: the PyTorch form runs")
    spec = _spec(cell, num_layers=1)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(SEQ, BATCH, INPUT, generator=gen) * 40  # gate logits of +-100 and beyond
    h0 = torch.randn(1, BATCH, HIDDEN, generator=gen)
    w = torch.randn(SEQ, BATCH, HIDDEN, generator=gen)

    def run(flag: str, dtype: torch.dtype) -> list[torch.Tensor]:
        monkeypatch.setenv("RNNKIT_NATIVE", flag)
        torch.manual_seed(0)
        module = _module(cell).build(spec, "fast").to(dtype)
        xi, hi = x.to(dtype).requires_grad_(), h0.to(dtype).requires_grad_()
        out, h = module(xi, hi, lengths=LENGTHS)
        grads = torch.autograd.grad((out * w.to(dtype)).sum() + h.sum(), [xi, hi, *module.parameters()])
        return [t.detach().double() for t in (out, h, *grads)]

    exact, fast = run("0", torch.float64), run("1", torch.float32)
    for i, (e, f) in enumerate(zip(exact, fast)):
        assert (f - e).abs().max() <= 1e-5 * e.abs().max(), i


def test_compiled_conv_and_gate_equal_pytorch_forms(monkeypatch):
    """Mamba's fused convolution + bias + SiLU (its input a column block of the projection, padded sequences, a
    given state) and its output gate ``(y + D u) * silu(z)``: values and every gradient against PyTorch in float64."""
    from rnnkit.cells import native
    from rnnkit.cells.scan import conv_silu_sequence, mamba_gate

    if native.library() is None:
        pytest.skip("no C compiler: the PyTorch form runs")
    gen = torch.Generator().manual_seed(0)
    T, B, C, W = 9, 3, 6, 4
    proj = torch.randn(T, B, 2 * C, generator=gen, dtype=torch.float64)
    args = [torch.randn(B, W - 1, C, generator=gen, dtype=torch.float64)]
    args += [
        torch.randn(C, 1, W, generator=gen, dtype=torch.float64),
        torch.randn(C, generator=gen, dtype=torch.float64),
    ]
    y, D = torch.randn(T, B, C, generator=gen, dtype=torch.float64), torch.randn(C, generator=gen, dtype=torch.float64)
    w = torch.randn(T, B, C, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([9, 5, 2])
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("RNNKIT_NATIVE", flag)
        p, state, weight, bias, yy, dd = (t.clone().requires_grad_() for t in (proj, *args, y, D))
        x, z = p.chunk(2, dim=-1)  # row stride 2 C, as the projection gives them
        u, new = conv_silu_sequence(x, state, weight, bias, lengths)
        out = mamba_gate(yy, u, z, dd)
        grads = torch.autograd.grad((out * w).sum() + (u * w).sum() + new.sum(), [p, state, weight, bias, yy, dd])
        results.append((u, new, out, *grads))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
