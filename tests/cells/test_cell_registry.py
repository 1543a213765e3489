"""The cell registry: one declaration per cell, read by configuration checks, the glossary, make_recurrent and every
state helper; a test-only cell with a three-tensor state (tests/toy_cell.py) goes through the same paths."""

from __future__ import annotations

import warnings

import pytest
import torch

from rnnkit.cells import RecurrentSpec, make_recurrent, registry
from rnnkit.cells.stack import (
    LayerStack,
    final_output,
    flat_state,
    from_layer_states,
    layer_states,
    state_shapes,
    unflatten_state,
    zeros_state,
)
from rnnkit.config import RECURRENCES, InapplicableKeyWarning, RenamedValueWarning
from rnnkit.errors import UserError
from rnnkit.tasks.recipes import load_recipe
from toy_cell import toy_registered


def test_every_cell_is_declared_once_and_read_everywhere():
    from rnnkit.tasks import fields
    from rnnkit.tasks.glossary import glossary

    names = registry.names()
    assert names[:6] == ("lstm", "gru", "rnn_tanh", "rnn_relu", "peephole_lstm", "layernorm_lstm")
    assert list(fields.CELLS) == list(names)
    text = glossary()
    for c in registry.cells():
        assert f"`{c.name}` = {c.doc} ({c.paper}" in text  # the glossary reads doc and paper
        assert c.builder("scratch")  # every cell has the reference implementation
    assert set(registry.forms()) | {"auto"} <= set(RECURRENCES)  # train.recurrence knows every fast form


def test_a_registered_cell_is_a_cell_everywhere():
    with toy_registered():
        config = load_recipe("ptb-small", {"model.cell": "toy"})  # model.cell accepts it
        assert config.model.cell == "toy"
        from rnnkit.tasks.glossary import glossary

        assert "`toy` = test-only cell" in glossary()
    with pytest.raises(UserError, match="model.cell must be one of"):
        load_recipe("ptb-small", {"model.cell": "toy"})


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (
            {"model.cell": "gru", "model.forget_bias": 1.0},
            "model.forget_bias = 1.0: cell 'gru' does not support a forget-gate bias added at initialisation "
            "(cells that do: lstm, peephole_lstm, layernorm_lstm",
        ),
        ({"model.cell": "layernorm_lstm"}, "model.cell = 'layernorm_lstm' has no fast implementation"),
        (
            {"model.cell": "gru", "train.recurrence": "projected"},
            "train.recurrence = 'projected' is not an implementation of cell 'gru' (it has kernel; cells with "
            "projected: lstm)",
        ),
        (
            {"model.backend": "scratch", "train.recurrence": "kernel"},
            "train.recurrence = 'kernel' picks a fast implementation, but model.backend = 'scratch'",
        ),
    ],
)
def test_an_option_a_cell_lacks_is_refused_naming_the_key_and_the_cells_that_have_it(overrides, needle):
    with pytest.raises(UserError, match=r"^overrides=\{") as e:  # in Python's words (the CLI says --set KEY=VALUE)
        load_recipe("ptb-small", overrides)
    assert needle in str(e.value)


def test_unsupported_options_of_a_registered_cell(capsys):
    from rnnkit.cli import main

    with toy_registered():
        # the recipe's weight drop is not the user's request: dropped back to 0 for a cell without W_hh, with a warning
        with pytest.warns(InapplicableKeyWarning, match="model.weight_drop = 0.5 does not apply to model.cell = 'toy'"):
            config = load_recipe("ptb-awd", {"model.cell": "toy"})
        assert (config.model.cell, config.model.weight_drop) == ("toy", 0.0)
        # ... asking for it is an error naming the key and the cells that have the option
        with pytest.raises(UserError, match="does not support DropConnect on hidden-to-hidden matrices .*slstm"):
            load_recipe("ptb-awd", {"model.cell": "toy", "model.weight_drop": 0.3})
        code = main(["train", "sms-spam", "--check", "--set", "model.cell=toy", "--set", "model.attention_size=3"])
        assert code == 0, capsys.readouterr().err


def test_old_backend_and_policy_names_load_with_a_warning(tmp_path):
    recipe = tmp_path / "old.toml"
    recipe.write_text('task = "lm"\n[model]\nbackend = "fused"\n[train]\nrecurrence = "fused"\n')
    with pytest.warns(RenamedValueWarning, match=r'model.backend = "fused" -> "fast".*train.recurrence = "fused"'):
        config = load_recipe(str(recipe))
    assert (config.model.backend, config.train.recurrence) == ("fast", "kernel")
    with pytest.warns(DeprecationWarning, match="backend 'fused' is now called 'fast'"):
        m = make_recurrent(RecurrentSpec("gru", 3, 4), "fused")
    assert isinstance(m, torch.nn.GRU)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names warn about nothing
        load_recipe("ptb-small", {"model.backend": "fast", "train.recurrence": "kernel"})


def test_make_recurrent_refuses_what_the_cell_lacks():
    with pytest.raises(ValueError, match="no fast implementation"):
        make_recurrent(RecurrentSpec("peephole_lstm", 3, 4), "fast")
    with pytest.raises(ValueError, match="unknown backend"):
        make_recurrent(RecurrentSpec("lstm", 3, 4), "turbo")
    with pytest.raises(ValueError, match="unknown cell 'nope'"):
        make_recurrent(RecurrentSpec("nope", 3, 4))
    with toy_registered():
        cell = registry.get("toy")
        lonely = registry.Cell("uni", "x", "y", cell.state, cell.scratch, options=frozenset(), output_state=None)
        with registry.registered(lonely):
            with pytest.raises(ValueError, match=r"does not support read each sequence in both directions"):
                make_recurrent(RecurrentSpec("uni", 3, 4, bidirectional=True), "scratch")
            with pytest.raises(ValueError, match=r"layers of different sizes .* cells that do: lstm"):
                make_recurrent(RecurrentSpec("uni", 3, [4, 5], 2), "scratch")


@pytest.mark.parametrize("cell", ["lstm", "gru", "toy"])
@pytest.mark.parametrize("sizes", [5, [5, 3]])
def test_state_helpers_follow_the_declared_layout(cell, sizes):
    """Shapes, flattening, per-layer views and zeros come from the registry's declaration, for one module and for
    a stack of layers of different sizes; the final output is each direction's end of its reading."""
    with toy_registered():
        spec = RecurrentSpec(cell, 4, sizes, 2, bidirectional=True)
        rnn = make_recurrent(spec, "fast").double()
        x = torch.randn(6, 3, 4, dtype=torch.double)
        lengths = torch.tensor([6, 2, 4])
        out, state = rnn(x, lengths=lengths)
        shapes = state_shapes(rnn, 3)
        assert [tuple(t.shape) for t in flat_state(state)] == [s for _, s in shapes]
        names = [n for n, _ in shapes]
        parts = registry.get(cell).state_names(spec)
        assert names == (list(parts) if spec.uniform else [f"{p}_l{k}" for k in range(2) for p in parts])
        again = unflatten_state(rnn, flat_state(state))
        assert all(torch.equal(a, b) for a, b in zip(flat_state(again), flat_state(state), strict=True))
        layers = layer_states(rnn, state)
        assert len(layers) == 2 and isinstance(rnn, LayerStack) == (not spec.uniform)
        joined = from_layer_states(rnn, layers)
        assert all(torch.equal(a, b) for a, b in zip(flat_state(joined), flat_state(state), strict=True))
        zeros = zeros_state(rnn, 3, x)
        assert [t.shape for t in flat_state(zeros)] == [t.shape for t in flat_state(state)]
        # each direction's end of its reading: the forward one at the last valid step, the backward one at step 0
        top = spec.sizes[-1]
        ends = final_output(rnn, out, state, lengths)
        assert ends.shape == (2, 3, top)
        for b, n in enumerate(lengths.tolist()):
            assert torch.equal(ends[0, b], out[n - 1, b, :top]) and torch.equal(ends[1, b], out[0, b, top:])


@torch.no_grad()
def test_toy_cell_follows_the_contract():
    """The test cell itself: zeros past each length, the state at each length, a sequence equals its steps."""
    with toy_registered():
        rnn = make_recurrent(RecurrentSpec("toy", 4, 5, 2), "fast").double()
        x = torch.randn(6, 3, 4, dtype=torch.double)
        out, state = rnn(x, lengths=torch.tensor([6, 2, 4]))
        assert float(out[2:, 1].abs().max()) == 0 and state[2][:, 1].flatten().tolist() == [2.0, 2.0]
        alone, s_alone = rnn(x[:2, 1:2])
        assert torch.allclose(alone, out[:2, 1:2]) and torch.allclose(s_alone[1], state[1][:, 1:2])
        stepped, s = [], None
        for t in range(6):
            o, s = rnn(x[t : t + 1], s)
            stepped.append(o)
        assert torch.allclose(torch.cat(stepped), rnn(x)[0])


@pytest.mark.parametrize("cell", ["mingru", "minlstm", "slstm", "mlstm", "mamba"])
def test_the_registry_knows_each_modern_cells_state_as_its_module_does(cell):
    spec = RecurrentSpec(cell, 5, 8, 2, bidirectional=True, heads=2, state_size=4, conv_size=3)
    rnn = make_recurrent(spec, "fast")
    assert state_shapes(rnn, 3) == rnn.state_shapes(3)
    _, state = rnn(torch.randn(4, 3, 5))
    assert [tuple(t.shape) for t in flat_state(state)] == [s for _, s in state_shapes(rnn, 3)]
    stack = make_recurrent(RecurrentSpec(cell, 5, [8, 4], 2, heads=2, state_size=4, conv_size=3), "scratch")
    _, state = stack(torch.randn(4, 3, 5))
    assert [tuple(t.shape) for t in flat_state(state)] == [s for _, s in state_shapes(stack, 3)]


def test_run_json_records_the_recurrence_policy_and_where_it_came_from(tiny_run, monkeypatch):
    import json

    from rnnkit.cells import select

    meta = json.loads((tiny_run("lm") / "run.json").read_text())
    assert meta["recurrence"] == {"policy": "auto", "from": "train.recurrence"}
    monkeypatch.setenv(select.ENV, "projected")
    assert select.resolve("kernel").record() == {"policy": "projected", "from": select.ENV, "configured": "kernel"}


def test_diagnose_gradients_takes_every_registered_cell():
    """`rnnkit diagnose gradients --cells` reads the registry: the modern cells, whose state may not hold the output
    (the gradient then reaches the first state tensor that is not a convolution's buffer)."""
    import math

    from rnnkit.api.training import gradient_flow

    flow = gradient_flow(cells=("mingru", "slstm", "mlstm", "mamba"), steps=5, hidden=8, plot=None)
    assert all(len(v) == 5 and all(math.isfinite(x) and x > 0 for x in v) for v in flow.values())
    with pytest.raises(UserError, match="unknown cell.*choose from lstm, gru, .*mamba"):
        gradient_flow(cells=("lstm", "transformer"), plot=None)
