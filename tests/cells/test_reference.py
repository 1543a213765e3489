"""rnnkit's modern cells against their reference packages (the optional extra ``rnnkit[reference]``): with the
weights copied across, the same outputs and states to 1e-5. Each test states the parameter mapping it uses;
docs/recurrences.md lists them. Skipped, with the reason, where the extra is not installed."""

from __future__ import annotations

import importlib

import pytest
import torch

from rnnkit.cells.base import RecurrentSpec

TOL = dict(rtol=1e-5, atol=1e-5)
BATCH, SEQ = 3, 8


def _need(package: str):
    return pytest.importorskip(package, reason=f"{package} is not installed (pip install 'rnnkit[reference]')")


def _build(spec: RecurrentSpec, backend: str = "fast"):
    return importlib.import_module(f"rnnkit.cells.{spec.cell}").build(spec, backend).double()


def _perturb(module: torch.nn.Module, seed: int = 5) -> None:
    """Every parameter moved off its initial value (zero gate weights, unit norms...), so each one matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _load(ours: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` (names of layer 0, direction 0's core) into ``ours``; every parameter must be covered."""
    prefix = "layers.0.0."
    state = {prefix + k: v.detach().clone() for k, v in tensors.items()}
    assert set(state) == set(ours.state_dict()), set(state) ^ set(ours.state_dict())
    ours.load_state_dict(state)


def _steps(ours, x):
    """Our module fed one time step at a time (the decode path), time-major x."""
    state, outs = None, []
    for t in range(x.size(0)):
        y, state = ours(x[t : t + 1], state)
        outs.append(y)
    return torch.cat(outs), state


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("expand", [1.0, 1.5])
def test_min_rnns_equal_mingru_pytorch(cell, expand):
    """mingru-pytorch's minGRU / minLSTM (log-space parallel mode and sequential mode) = rnnkit's, with the same
    weights under the same names: proj = to_hidden_and_gate (to_hidden_and_f_i_gate), out_proj = to_out. Its
    log-space form keeps states positive through g; rnnkit computes the same h in linear space."""
    _need("minGRU_pytorch")
    from minGRU_pytorch.minGRU import minGRU
    from minGRU_pytorch.minLSTM import minLSTM

    dim = 8
    torch.manual_seed(0)
    ref_cls = minGRU if cell == "mingru" else minLSTM
    ref = ref_cls(dim, expansion_factor=expand).double()
    _perturb(ref)
    ours = _build(RecurrentSpec(cell, dim, dim, bias=False, expand=expand))
    names = {"to_hidden_and_gate.weight": "proj.weight", "to_hidden_and_f_i_gate.weight": "proj.weight"}
    _load(ours, {names.get(k, k.replace("to_out", "out_proj")): v for k, v in ref.state_dict().items()})
    x = torch.randn(BATCH, SEQ, dim, dtype=torch.float64)  # the package is batch-major
    with torch.no_grad():
        ref_out, ref_h = ref(x, return_next_prev_hidden=True)  # parallel mode from a zero state
        out, h = ours(x.transpose(0, 1))
        torch.testing.assert_close(out.transpose(0, 1), ref_out, **TOL)
        torch.testing.assert_close(h[0], ref_h[:, 0], **TOL)
        # the package's sequential mode, one token at a time with its hidden carried
        prev, ref_steps = None, []
        for t in range(SEQ):
            y, prev = ref(x[:, t : t + 1], prev, return_next_prev_hidden=True)
            ref_steps.append(y)
        step_out, step_h = _steps(ours, x.transpose(0, 1))
        torch.testing.assert_close(step_out.transpose(0, 1), torch.cat(ref_steps, 1), **TOL)
        torch.testing.assert_close(step_h[0], prev[:, 0], **TOL)


def test_mamba_equals_mambapy():
    """mambapy's MambaBlock (the mixer of its ResidualBlock; parallel scan and step with cache) = rnnkit's mamba
    layer with bias=False; the state dict loads under the package's own names. Its step cache (h, inputs) is
    rnnkit's state (ssm, conv transposed to (batch, conv_size - 1, inner))."""
    _need("mambapy")
    from mambapy.mamba import MambaBlock, MambaConfig

    dim = 8
    torch.manual_seed(0)
    config = MambaConfig(d_model=dim, n_layers=1, d_state=4, d_conv=3, expand_factor=2)
    ref = MambaBlock(config).double()
    _perturb(ref)
    ours = _build(RecurrentSpec("mamba", dim, dim, bias=False, state_size=4, conv_size=3))
    ours.layers[0][0].block = 3
    _load(ours, ref.state_dict())
    x = torch.randn(BATCH, SEQ, dim, dtype=torch.float64)
    with torch.no_grad():
        ref_out = ref(x)
        out, (conv, ssm) = ours(x.transpose(0, 1))
        torch.testing.assert_close(out.transpose(0, 1), ref_out, **TOL)
        cache = (
            torch.zeros(BATCH, 2 * dim, 4, dtype=torch.float64),
            torch.zeros(BATCH, 2 * dim, 2, dtype=torch.float64),
        )
        ref_steps = []
        for t in range(SEQ):
            y, cache = ref.step(x[:, t], cache)
            ref_steps.append(y)
        torch.testing.assert_close(torch.stack(ref_steps, 1), ref_out, **TOL)
        torch.testing.assert_close(ssm[0], cache[0], **TOL)
        torch.testing.assert_close(conv[0], cache[1].transpose(1, 2), **TOL)


def test_mlstm_equals_xlstm_layer():
    """xlstm's mLSTMLayer (parallel form, and its recurrent step) = rnnkit's mlstm layer: same names except
    conv1d = conv1d.conv, igate/fgate = mlstm_cell.igate/fgate, outnorm_weight = 1 + mlstm_cell.outnorm.weight.
    Its step's (C, n, m) equal rnnkit's state (n, m without the package's trailing unit dimensions)."""
    _need("xlstm")
    from xlstm.blocks.mlstm.layer import mLSTMLayer, mLSTMLayerConfig

    dim, heads = 32, 2  # inner 64: the package rounds the inner width up to a multiple of 64
    torch.manual_seed(0)
    ref = mLSTMLayer(mLSTMLayerConfig(embedding_dim=dim, num_heads=heads, conv1d_kernel_size=3, context_length=SEQ))
    ref = ref.double()
    _perturb(ref)
    ours = _build(RecurrentSpec("mlstm", dim, dim, bias=False, heads=heads, conv_size=3))
    ours.layers[0][0].chunk_size = 3
    tensors = {}
    for k, v in ref.state_dict().items():
        if k == "mlstm_cell.outnorm.weight":
            tensors["outnorm_weight"] = 1.0 + v
        else:
            tensors[k.replace("conv1d.conv.", "conv1d.").replace("mlstm_cell.", "")] = v
    _load(ours, tensors)
    x = torch.randn(BATCH, SEQ, dim, dtype=torch.float64)
    with torch.no_grad():
        ref_out = ref(x)
        out, state = ours(x.transpose(0, 1))
        torch.testing.assert_close(out.transpose(0, 1), ref_out, **TOL)
        mlstm_state, conv_state, ref_steps = None, None, []
        for t in range(SEQ):
            y, s = ref.step(x[:, t : t + 1], mlstm_state=mlstm_state, conv_state=conv_state)
            mlstm_state, conv_state = s["mlstm_state"], s["conv_state"]
            ref_steps.append(y)
        torch.testing.assert_close(torch.cat(ref_steps, 1), ref_out, **TOL)
        C, n, m = mlstm_state
        torch.testing.assert_close(state[1][0], C, **TOL)
        torch.testing.assert_close(state[2][0], n.squeeze(-1), **TOL)
        torch.testing.assert_close(state[3][0], m.view(BATCH, heads), **TOL)


def test_slstm_equals_xlstm_layer():
    """xlstm's sLSTMLayer (vanilla backend) = rnnkit's slstm layer. Mapping: proj_if = [block_diag(its fgate
    module); block_diag(its igate module)] (its layer feeds the fgate module's output to the cell's i and the
    igate module's to f), proj_zo = [block_diag(zgate); block_diag(ogate)], recurrent and bias = the cell's
    internal _recurrent_kernel_ (heads, 4d, d) and _bias_ (gate-major), norm_weight = 1 + group_norm.weight.
    Its first step on a zero state sets m = i~ where rnnkit (the paper) takes max(log f + 0, i~): m, c and n differ
    by a common factor exp(m), never h, c / n or the output."""
    _need("xlstm")
    from xlstm.blocks.slstm.layer import sLSTMLayer, sLSTMLayerConfig

    dim, heads = 8, 2
    torch.manual_seed(0)
    ref = sLSTMLayer(sLSTMLayerConfig(embedding_dim=dim, num_heads=heads, conv1d_kernel_size=3, backend="vanilla"))
    ref = ref.double()
    _perturb(ref)
    ours = _build(RecurrentSpec("slstm", dim, dim, heads=heads, conv_size=3))
    sd = ref.state_dict()

    def dense(name: str) -> torch.Tensor:
        return torch.block_diag(*sd[name + ".weight"])

    _load(
        ours,
        {
            "conv1d.weight": sd["conv1d.conv.weight"],
            "conv1d.bias": sd["conv1d.conv.bias"],
            "proj_if.weight": torch.cat([dense("fgate"), dense("igate")]),
            "proj_zo.weight": torch.cat([dense("zgate"), dense("ogate")]),
            "recurrent": sd["slstm_cell._recurrent_kernel_"],
            "bias": sd["slstm_cell._bias_"],
            "norm_weight": 1.0 + sd["group_norm.weight"],
        },
    )
    x = torch.randn(BATCH, SEQ, dim, dtype=torch.float64)
    with torch.no_grad():
        ref_out, ref_state = ref(x, return_last_state=True)
        out, state = ours(x.transpose(0, 1))
        torch.testing.assert_close(out.transpose(0, 1), ref_out, **TOL)
        y, c, n, _ = ref_state["slstm_state"]  # (batch, hidden) each
        torch.testing.assert_close(state[1][0], y, **TOL)
        torch.testing.assert_close(state[2][0] / state[3][0], c / n, **TOL)
        torch.testing.assert_close(state[0][0], ref_state["conv_state"], **TOL)
