"""Gradient flow through time: the tanh RNN's gradient vanishes, gated cells hold on to it longer."""

from __future__ import annotations

import json

import pytest

from rnnkit.diagnose.gradients import decay_ratio, format_gradient_table, gradient_flow, plot_gradient_flow

STEPS = 101  # so that index 0 is 100 steps before the end


@pytest.fixture(scope="module")
def flow() -> dict[str, list[float]]:
    return gradient_flow(cells=("rnn_tanh", "lstm", "gru"), steps=STEPS)


def test_result_is_plain_json(flow):
    assert list(flow) == ["rnn_tanh", "lstm", "gru"]
    for norms in flow.values():
        assert len(norms) == STEPS
        assert all(type(v) is float and v > 0 for v in norms)
    assert json.loads(json.dumps(flow)) == flow


def test_tanh_rnn_gradient_vanishes(flow):
    assert decay_ratio(flow["rnn_tanh"], 100) < 1e-6  # many orders of magnitude in 100 steps
    assert decay_ratio(flow["rnn_tanh"], 10) < 1e-1


def test_lstm_decays_less_than_tanh_rnn(flow):
    assert decay_ratio(flow["lstm"], 100) > 1e3 * decay_ratio(flow["rnn_tanh"], 100)


def test_backends_agree():
    scratch = gradient_flow(cells=("lstm",), steps=20, hidden=8, input_size=4, batch=3, backend="scratch")
    fused = gradient_flow(cells=("lstm",), steps=20, hidden=8, input_size=4, batch=3, backend="fast")
    assert scratch["lstm"] == pytest.approx(fused["lstm"], rel=1e-9)


def test_table(flow):
    table = format_gradient_table(flow, every=10)
    lines = table.splitlines()
    assert lines[0].split() == ["steps", "back", "rnn_tanh", "lstm", "gru"]
    assert [line.split()[0] for line in lines[1:]] == [str(k) for k in range(0, STEPS, 10)]
    assert lines[1].split()[1] == f"{flow['rnn_tanh'][-1]:.2e}"  # 0 steps back is the last step
    assert lines[-1].split()[1] == f"{flow['rnn_tanh'][0]:.2e}"


def test_plot_writes_a_png(flow, tmp_path):
    path = tmp_path / "flow.png"
    plot_gradient_flow(flow, path)
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n")
