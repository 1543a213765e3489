"""Export of models whose layers differ in size: the recurrent state is one input and one output per layer
(``h_l0, c_l0, h_l1, c_l1`` -> ``..._out``), checked against PyTorch by ``rnnkit export`` itself and here by
driving the ONNX graph with onnxruntime across two calls (the state carried between them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import TINY_LM
from rnnkit.cells.stack import flat_state, unflatten_state
from rnnkit.cli import main
from rnnkit.runs import load_run

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'rnnkit[serve]'")
pytest.importorskip("onnx", reason="onnx is not installed: pip install 'rnnkit[serve]'")

QUICK = ["--set", "train.log_every=1", "--set", "train.tensorboard=false", "--set", "train.eval_test=false", "-q"]
RUNS = {
    "lm": [
        "ptb-small",
        "--max-steps",
        "4",
        *TINY_LM,
        "--set",
        "model.hidden=[32,12]",
        "--set",
        "data.valid=",
        "--set",
        "data.valid_fraction=0.05",
    ],
    "gru-lm": [
        "ptb-small",
        "--max-steps",
        "2",
        *TINY_LM,
        "--set",
        "model.hidden=[20,12,16]",
        "--set",
        "model.layers=3",
        "--set",
        "model.cell=gru",
        "--set",
        "data.valid=",
        "--set",
        "data.valid_fraction=0.05",
    ],
    "awd": [
        "ptb-awd",
        "--max-steps",
        "2",
        *TINY_LM,
        "--set",
        "model.hidden=[24,32]",
        "--set",
        "model.layers=2",
        "--set",
        "model.embedding=32",
        "--set",
        "data.bptt=10",
        "--set",
        "data.valid=",
        "--set",
        "data.valid_fraction=0.05",
    ],
    "classify": [
        "sms-spam",
        "--max-steps",
        "4",
        "--set",
        "model.embedding=16",
        "--set",
        "model.hidden=[24,8]",
        "--set",
        "model.layers=2",
        "--set",
        "model.bidirectional=true",
        "--set",
        "train.batch_size=32",
    ],
    "translate": [
        "spa-eng-small",
        "--max-steps",
        "3",
        "--set",
        "data.max_pairs=1000",
        "--set",
        "model.hidden=[24,16]",
        "--set",
        "model.layers=2",
        "--set",
        "model.embedding=16",
        "--set",
        "train.batch_size=32",
        "--set",
        "model.bidirectional=true",
        "--set",
        "data.valid_bleu_sentences=10",
        "--set",
        "model.cell=lstm",
        "--set",
        "model.input_feed=true",
    ],  # the recipe's GRU has no c, no feed
}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, data_dir):
    made = {}

    def make(kind: str):
        if kind not in made:
            out = tmp_path_factory.mktemp(f"mixed-{kind}") / "run"
            recipe, *rest = RUNS[kind]
            assert main(["train", recipe, "--data-dir", str(data_dir), "--out", str(out), *rest, *QUICK]) == 0
            made[kind] = out
        return made[kind]

    return make


def _export(run, out, fmt, capsys) -> dict:
    capsys.readouterr()
    code = main(["export", str(run), "--format", fmt, "--out", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    return report


@pytest.mark.parametrize("kind", ["lm", "gru-lm", "awd", "classify", "translate"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_mixed_size_models_export_and_match_pytorch(mixed_run, kind, fmt, tmp_path, capsys):
    report = _export(mixed_run(kind), tmp_path / "model", fmt, capsys)
    assert report["ok"] and report["worst"] <= 1e-4, report["max_abs_diff"]
    meta = json.loads((tmp_path / "model.json").read_text())
    graph = meta["graphs"]["decoder" if kind == "translate" else "model"]
    names = [i["name"] for i in graph["inputs"]]
    shapes = {i["name"]: i["shape"] for i in graph["inputs"]}
    if kind == "lm":
        assert names == ["tokens", "h_l0", "c_l0", "h_l1", "c_l1"]
        assert shapes["c_l1"] == [1, "batch", 12] and shapes["h_l0"] == [1, "batch", 32]
        assert [o["name"] for o in graph["outputs"]][1:] == ["h_l0_out", "c_l0_out", "h_l1_out", "c_l1_out"]
    elif kind == "gru-lm":
        assert names == ["tokens", "h_l0", "h_l1", "h_l2"]
    elif kind == "awd":
        assert names == ["tokens", "h_l0", "c_l0", "h_l1", "c_l1"] and shapes["h_l1"] == [1, "batch", 32]
    elif kind == "translate":
        assert names[4:] == ["h_l0", "c_l0", "h_l1", "c_l1", "feed"] and shapes["h_l1"] == [1, "batch", 16]
    else:
        assert names == ["tokens"]


def test_onnx_language_model_carries_the_per_layer_state_like_pytorch(mixed_run, tmp_path, capsys):
    run = mixed_run("lm")
    _export(run, tmp_path / "lm.onnx", "onnx", capsys)
    loaded = load_run(run, device="cpu")
    model, rnn = loaded.model.eval(), loaded.model.rnn
    session = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()][1:]
    g = torch.Generator().manual_seed(0)
    first, second = (torch.randint(0, len(loaded.task.vocab), (n, 2), generator=g) for n in (6, 4))
    with torch.no_grad():
        _, state = model(first)
        want, want_state = model(second, state)
    feed = {
        "tokens": first.numpy(),
        **{
            n: np.zeros(i.shape[:1] + [2] + i.shape[2:], np.float32)
            for n, i in zip(names, session.get_inputs()[1:], strict=True)
        },
    }
    _, *got_state = session.run(None, feed)
    got, *got_state = session.run(None, {"tokens": second.numpy(), **dict(zip(names, got_state, strict=True))})
    assert np.abs(got - want.numpy()).max() < 1e-4
    for a, b in zip(got_state, flat_state(want_state), strict=True):
        assert a.shape == tuple(b.shape) and np.abs(a - b.numpy()).max() < 1e-4
    back = unflatten_state(rnn, [torch.from_numpy(a) for a in got_state])  # what a runtime hands back to rnnkit
    assert back[1][0].shape == (1, 2, 12)
