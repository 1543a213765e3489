"""Every registered cell through every task and service: `--set model.cell=NAME` trains each task, resumes a
language model exactly after a stop (its carried state of any layout in the checkpoint), generates step by step
(alone and in the server's step batch, the same text), translates with beam search from a bidirectional encoder,
classifies, forecasts, and exports to ONNX with step parity. One tiny run per cell and task, a few steps each: the
numerics of each cell are tests/cells/test_modern.py's; here the plumbing.

``toy`` (tests/toy_cell.py) is a test-only cell registered from here: three state tensors, none of them its output,
one not a vector - the layout the classic cells never exercise.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import train_losses
from rnnkit import predict
from rnnkit.cli import main
from rnnkit.runs import load_run
from toy_cell import toy_registered

CELLS = ["mingru", "minlstm", "slstm", "mlstm", "mamba", "toy"]
QUIET = ["--set", "train.log_every=1", "--set", "train.tensorboard=false", "--set", "train.eval_test=false", "-q"]
TINY = {
    "lm": [
        "ptb-small",
        *("--set", "model.embedding=8", "--set", "model.hidden=8", "--set", "train.batch_size=4"),
        *("--set", "data.bptt=5", "--set", "data.train=ptb/ptb.valid.txt", "--set", "data.valid="),
        *("--set", "data.valid_fraction=0.05", "--set", "data.train_fraction=0.05", "--set", "data.max_vocab=200"),
    ],
    "text": [
        "sms-spam",
        *("--set", "model.embedding=8", "--set", "model.hidden=8", "--set", "train.batch_size=16"),
        *("--set", "model.bidirectional=true", "--set", "data.max_vocab=300"),
    ],
    "forecast": ["airline", "--set", "model.hidden=8", "--set", "model.arch=seq2seq"],
    "translate": [
        "spa-eng-attention",
        *("--set", "data.max_pairs=300", "--set", "model.hidden=8", "--set", "model.embedding=8"),
        *("--set", "train.batch_size=16", "--set", "data.valid_bleu_sentences=5", "--set", "model.beam=2"),
        *("--set", "model.bidirectional=true", "--set", "model.layers=2", "--set", "model.hidden=[8, 6]"),
    ],
}


@pytest.fixture(autouse=True)
def _toy():
    with toy_registered():
        yield


def _train(kind: str, cell: str, out, data_dir, steps: int, *extra: str) -> None:
    recipe, *rest = TINY[kind]
    argv = ["train", recipe, "--data-dir", str(data_dir), "--out", str(out), "--max-steps", str(steps)]
    assert main([*argv, *rest, *QUIET, "--set", f"model.cell={cell}", *extra]) == 0


def _export(run, tmp_path, capsys) -> dict:
    capsys.readouterr()
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "model.onnx"), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("cell", CELLS)
def test_language_model(cell, tmp_path, data_dir, capsys):
    """State carried across BPTT windows, an exact resume (the checkpoint holds the carried state in the cell's
    layout), generation alone and step-batched alike, an ONNX step graph equal to PyTorch."""
    pytest.importorskip("onnxruntime")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    _train("lm", cell, straight, data_dir, 4)
    _train("lm", cell, stopped, data_dir, 2)
    hidden = torch.load(stopped / "checkpoints" / "last.pt", weights_only=True)["task_loop"]["hidden"]
    assert hidden  # the state carried into step 3
    assert main(["train", "--resume", str(stopped), "--max-steps", "4", "-q"]) == 0
    assert train_losses(stopped) == train_losses(straight)  # bit for bit
    a = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(stopped / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    lm = load_run(straight, device="cpu")
    requests = [("the company", 5, 0.8, 0, 1.0, 3), ("prices", 4, 0.0, 0, 1.0, None), ("the", 6, 1.2, 5, 0.9, 7)]
    alone = [predict.generate(lm, *r) for r in requests]
    batch = predict.generation_batch(lm)
    streams = [predict.generation_stream(lm, *r) for r in requests]
    with torch.inference_mode():
        batch.add(streams[0])
        batch.step()  # the others join a running batch: their prompts are fed by its steps
        for s in streams[1:]:
            batch.add(s)
        batch.run()
    assert [s.result() for s in streams] == alone

    report = _export(straight, tmp_path, capsys)
    assert report["ok"] and report["worst"] <= 1e-5, report


@pytest.mark.parametrize("cell", CELLS)
def test_text_classifier_bidirectional(cell, tmp_path, data_dir, capsys):
    _train("text", cell, tmp_path / "run", data_dir, 3)
    run = load_run(tmp_path / "run", device="cpu")
    out = predict.classify(run, ["win a free prize now", "see you at lunch"])
    assert len(out) == 2 and all(abs(sum(o["probabilities"].values()) - 1) < 1e-5 for o in out), out


@pytest.mark.parametrize("cell", CELLS)
def test_forecaster_encoder_decoder(cell, tmp_path, data_dir, capsys):
    """The seq2seq forecaster hands its encoder's state to a decoder that reads another input (a convolution's
    buffer starts at zero there)."""
    _train("forecast", cell, tmp_path / "run", data_dir, 3)
    run = load_run(tmp_path / "run", device="cpu")
    values, *_ = predict.saved_history(run)
    result = predict.forecast(run, values, 3, 0.8)
    assert result["mean"].shape == (3, 1) and (result["lower"] <= result["upper"]).all()
    report = _export(tmp_path / "run", tmp_path, capsys)
    assert report["ok"] and report["worst"] <= 1e-5, report


@pytest.mark.parametrize("cell", CELLS)
def test_translation_beam_search_from_a_bidirectional_encoder(cell, tmp_path, data_dir, capsys):
    """Bahdanau attention (its query the decoder's previous output, from the state or carried beside it), a
    bidirectional encoder of two layers of different sizes bridged to the decoder, beam search reordering the
    state's rows, and the exported decoder step equal to PyTorch."""
    _train("translate", cell, tmp_path / "run", data_dir, 2)
    run = load_run(tmp_path / "run", device="cpu")
    (best,) = predict.translate(run, ["hola mundo"], beam=2)
    assert isinstance(best["translation"], str)
    report = _export(tmp_path / "run", tmp_path, capsys)
    assert report["ok"] and report["max_abs_diff"]["decoder"] <= 1e-5, report
