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
    "forecast": [
        "airline",
        *("--set", "model.hidden=8", "--set", "model.arch=seq2seq"),
        *("--set", "data.lookback=8", "--set", "data.horizon=3"),
    ],
    "sequence": ["digits-rows", "--set", "model.hidden=8", "--set", "model.layers=1", "--set", "train.batch_size=16"],
    "parity": ["parity", "--set", "model.hidden=8", "--set", "data.size=400", "--set", "data.length=10"],
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


def _export(run, tmp_path, capsys, fmt: str = "onnx") -> dict:
    capsys.readouterr()
    assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / f"model-{fmt}"), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("cell", CELLS)
def test_language_model(cell, tmp_path, data_dir, capsys):
    """State carried across BPTT windows, an exact resume (the checkpoint holds the carried state in the cell's
    layout), generation alone and step-batched alike, ONNX and TorchScript step graphs equal to PyTorch."""
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

    for fmt in ("onnx", "torchscript"):
        report = _export(straight, tmp_path, capsys, fmt)
        assert report["ok"] and report["worst"] <= 1e-5, report


@pytest.mark.parametrize("cell", CELLS)
def test_classifiers(cell, tmp_path, data_dir, capsys):
    """Text (bidirectional, attention pooling), numeric sequences (last-step pooling: each direction's final output,
    read from the state or the outputs) and the parity counter (whose recipe's identity init, for W_hh, is left
    at its default for a cell without one, with a warning)."""
    _train("text", cell, tmp_path / "text", data_dir, 2)
    run = load_run(tmp_path / "text", device="cpu")
    out = predict.classify(run, ["win a free prize now", "see you at lunch"])
    assert len(out) == 2 and all(abs(sum(o["probabilities"].values()) - 1) < 1e-5 for o in out), out
    _train("sequence", cell, tmp_path / "sequence", data_dir, 2, "--set", "model.pooling=last")
    assert train_losses(tmp_path / "sequence")
    capsys.readouterr()
    _train("parity", cell, tmp_path / "parity", data_dir, 2)
    assert "rnnkit: warning: " in capsys.readouterr().err  # model.init = 'identity' does not apply to the cell


@pytest.mark.parametrize("cell", CELLS[:-1])
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
    # the server's step batching of replies: two sources of different lengths decoded as one batch = each alone
    from rnnkit.models.seq2seq import cat_decoder_states

    model, g = run.model.eval(), torch.Generator().manual_seed(0)
    with torch.no_grad():
        alone = [model.encode(torch.randint(4, 40, (n, 1), generator=g), None) for n in (3, 6)]
        together = cat_decoder_states(alone)
        go = torch.ones(2, dtype=torch.long)
        for _ in range(2):
            feats, together, _ = model.step(go, together)
            for i, st in enumerate(alone):
                feat, alone[i], _ = model.step(go[:1], st)
                torch.testing.assert_close(feats[i : i + 1], feat, rtol=0, atol=1e-5)
    report = _export(tmp_path / "run", tmp_path, capsys)
    assert report["ok"] and report["max_abs_diff"]["decoder"] <= 1e-5, report


@pytest.mark.parametrize("cell", CELLS)
def test_autocast_and_awd_layers(cell):
    """bf16 autocast: the output in bf16, the state in the parameters' dtype (fp32) whatever the cell, every
    parameter trained in fp32. AWD-LSTM's stack of one-layer modules runs any cell; weight drop masks the
    hidden-to-hidden matrices the registry names (the sLSTM's per-head R; none for cells without)."""
    from rnnkit.cells import registry
    from rnnkit.cells.stack import flat_state
    from rnnkit.models.awd import AWDLanguageModel
    from rnnkit.models.lm import RNNLanguageModel

    torch.manual_seed(0)
    lm = RNNLanguageModel(30, 8, 8, 2, cell=cell, cell_options={"heads": 2})
    tokens = torch.randint(0, 30, (5, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, state = lm.rnn(lm.encoder(tokens).to(torch.bfloat16))
        loss, _ = lm(tokens, targets=tokens)
    assert out.dtype == torch.bfloat16 and all(t.dtype == torch.float32 for t in flat_state(state))
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in lm.rnn.parameters())

    drops = registry.get(cell).supports("weight_drop")
    awd = AWDLanguageModel(30, 8, [10, 8], 2, cell=cell, weight_drop=0.5 if drops else 0.0, cell_options={"heads": 2})
    awd.train()
    loss, state = awd(tokens, targets=tokens)
    loss.backward()
    assert len(state) == 2 and torch.isfinite(loss)
    if drops:  # the dropped matrix is a function of the parameter: its gradient arrives
        names = registry.get(cell).hidden_to_hidden
        assert all(awd.rnns[0].get_parameter(n).grad is not None for n in names)


def test_data_parallel_training_of_a_cell_with_a_matrix_state(tmp_path, data_dir):
    """`--nproc 2` trains an mLSTM (state: a conv buffer, the (heads, d, d) memory, n and m) as one process does:
    the same weights, and the carried state gathered into the checkpoint as one global batch."""
    from conftest import run_cli
    from rnnkit.config import parse_overrides
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe
    from rnnkit.train.loop import Trainer
    from rnnkit.train.rundir import RunDir

    recipe, *rest = TINY["lm"]
    sets = [*rest, "--set", "model.cell=mlstm", "--set", "train.batch_size=8", "--set", "train.eval_test=false"]
    one, two = tmp_path / "one", tmp_path / "two"
    config = load_recipe(recipe, {**parse_overrides(sets[1::2]), "train.max_steps": 2})
    RunDir(one).write_config(config)
    trainer = Trainer(get_task("lm")(config, data_dir, torch.device("cpu")), config, RunDir(one), torch.device("cpu"))
    trainer.setup(resume=False)
    trainer.fit()
    run_cli("train", recipe, "--nproc", "2", "--out", str(two), "--max-steps", "2", "--data-dir", str(data_dir), *sets)
    a, b = (torch.load(r / "checkpoints" / "last.pt", weights_only=True) for r in (one, two))
    assert b["world_size"] == 2
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-5, msg=k)
    ha, hb = a["task_loop"]["hidden"], b["task_loop"]["hidden"]
    assert [t.shape[1] for t in hb] == [8] * len(hb) == [t.shape[1] for t in ha]  # the global batch of columns
    for x, y in zip(ha, hb):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-5)
