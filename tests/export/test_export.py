"""`rnnkit export` on tiny trained runs: ONNX (checked with onnxruntime) and TorchScript files that reproduce
PyTorch to 1e-4, and that a runtime can use without rnnkit: greedy generation and greedy translation driven
through onnxruntime give exactly what rnnkit itself decodes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit import predict
from rnnkit.cli import main
from rnnkit.runs import load_run

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'rnnkit[serve]'")
pytest.importorskip("onnx", reason="onnx is not installed: pip install 'rnnkit[serve]'")


def export(run, out, fmt: str, capsys) -> dict:
    capsys.readouterr()  # drop what training the tiny run (on first use, inside this test) printed
    code = main(["export", str(run), "--format", fmt, "--out", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    return report


@pytest.mark.parametrize("kind", ["lm", "text-classify", "sequence-classify", "forecast", "translate"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch(kind, fmt, tiny_run, tmp_path, capsys):
    report = export(tiny_run(kind), tmp_path / "model", fmt, capsys)
    assert report["ok"] and report["worst"] <= 1e-4, report["max_abs_diff"]
    expected = {"translate": ["encoder", "decoder"]}.get(kind, ["model"])
    assert list(report["max_abs_diff"]) == expected
    for f in report["files"]:
        assert (tmp_path / f).stat().st_size > 1000
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["format"] == fmt and set(meta["graphs"]) == set(expected) and meta["notes"]
    assert meta["max_abs_diff"] == report["max_abs_diff"]
    if kind in ("text-classify", "sequence-classify"):
        assert meta["artifacts"]["labels"]


def test_human_readable_output_prints_the_difference(tiny_run, tmp_path, capsys):
    assert main(["export", str(tiny_run("forecast")), "--out", str(tmp_path / "f.onnx")]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'f.onnx'}" in out and "model: max abs diff vs PyTorch" in out and "(ok)" in out


def test_onnx_language_model_generates_what_rnnkit_generates(tiny_run, tmp_path, capsys):
    from rnnkit.data.lm import EOS, detokenize

    run = tiny_run("lm")
    export(run, tmp_path / "lm.onnx", "onnx", capsys)
    loaded = load_run(run, device="cpu")
    task, vocab = loaded.task, loaded.task.vocab
    session = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"])
    spec = loaded.model.rnn.spec
    state = {n: np.zeros((spec.num_layers, 1, spec.hidden_size), np.float32) for n in ("h", "c")}
    tokens = np.array(task.encode_prompt("the company said"), dtype=np.int64)[:, None]
    out: list[str] = []
    for _ in range(10 * 4):  # rnnkit's own cap: 4 tokens per word asked for (a tiny model may say only <eos>)
        logits, state["h"], state["c"] = session.run(None, {"tokens": tokens, **state})
        scores = logits[-1, 0].copy()
        scores[vocab.unk_index] = -np.inf  # rnnkit never samples <unk>
        nxt = int(scores.argmax())
        out.append(vocab.itos[nxt])
        if sum(t != EOS for t in out) >= 10:
            break
        tokens = np.array([[nxt]], dtype=np.int64)
    want = predict.generate(loaded, "the company said", 10, temperature=0.0)
    assert detokenize(out, "word").strip("\n") == want


def test_onnx_encoder_and_step_decoder_translate_like_rnnkit(tiny_run, tmp_path, capsys):
    from rnnkit.data.parallel import EOS_ID, GO_ID, PAD_ID, UNK_ID

    run = tiny_run("translate")
    export(run, tmp_path / "s2s.onnx", "onnx", capsys)
    loaded = load_run(run, device="cpu")
    task = loaded.task
    enc = ort.InferenceSession(str(tmp_path / "s2s.encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(tmp_path / "s2s.decoder.onnx"), providers=["CPUExecutionProvider"])
    state_names = [i.name for i in dec.get_inputs()][4:]
    for text in ["Como te llamas?", "Tengo hambre.", "El perro es grande."]:
        ids, _, _ = task.encode_source(text)
        memory, keys, mask, *state = enc.run(None, {"src": np.array(ids, dtype=np.int64)[:, None]})
        token, got = GO_ID, []
        for _ in range(2 * len(ids) + 10):
            logits, *rest = dec.run(
                None,
                {
                    "tokens": np.array([token], dtype=np.int64),
                    "memory": memory,
                    "keys": keys,
                    "mask": mask,
                    **dict(zip(state_names, state)),
                },
            )
            state = rest[:-1]
            scores = logits[0].copy()
            scores[[PAD_ID, GO_ID] + ([UNK_ID] if task.mcfg.ban_unk else [])] = -np.inf
            token = int(scores.argmax())
            if token == EOS_ID:
                break
            got.append(token)
        want = task.decode(loaded.model, [ids], "greedy")[0][0].tokens
        assert got == want, text


def test_scratch_backend_exports_through_the_fused_kernel(tiny_run, tmp_path):
    """A scratch-backend model exports with dynamic lengths (swapped for the fused module, same weights) and the
    exported graph reproduces the scratch model itself, not only its fused copy."""
    from rnnkit.export import export_run
    from rnnkit.models.lm import RNNLanguageModel

    loaded = load_run(tiny_run("lm"), device="cpu")
    m = loaded.config.model
    scratch = RNNLanguageModel(len(loaded.task.vocab), m.embedding, m.hidden, m.layers, cell=m.cell, backend="scratch")
    scratch.load_state_dict(loaded.model.state_dict())
    loaded.model = scratch.eval()
    report = export_run(loaded, "onnx", tmp_path / "scratch.onnx")
    assert report["ok"], report
    session = ort.InferenceSession(str(tmp_path / "scratch.onnx"), providers=["CPUExecutionProvider"])
    tokens = torch.randint(0, len(loaded.task.vocab), (11, 2))
    h = torch.zeros(m.layers, 2, m.hidden)
    got = session.run(None, {"tokens": tokens.numpy(), "h": h.numpy(), "c": h.numpy()})[0]
    with torch.no_grad():
        want, _ = scratch(tokens, (h, h))
    assert np.abs(got - want.numpy()).max() < 1e-4


def test_unknown_format_and_unexportable_paths_are_user_errors(tiny_run, tmp_path, capsys):
    assert main(["export", str(tiny_run("forecast")), "--format", "tflite"]) == 2  # argparse's error, one line
    assert main(["export", str(tmp_path / "no-such-run")]) == 2
    assert "no-such-run" in capsys.readouterr().err
