"""Sequence to sequence on real pairs: Spanish->English (Tatoeba) and a chatbot (dialogs.tsv), tiny models."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, read_metrics, run_cli, train_losses

TINY_S2S = [
    "--set",
    "data.max_pairs=3000",
    "--set",
    "model.hidden=48",
    "--set",
    "model.embedding=32",
    "--set",
    "train.batch_size=32",
    "--set",
    "train.log_every=1",
    "--set",
    "train.tensorboard=false",
    "--set",
    "data.valid_bleu_sentences=100",
    "--set",
    "optim.lr=0.01",
    "--set",
    "model.beam=3",
]
TINY_CHAT = [
    "--set",
    "model.hidden=32",
    "--set",
    "model.embedding=16",
    "--set",
    "model.layers=2",
    "--set",
    "train.batch_size=32",
    "--set",
    "train.log_every=1",
    "--set",
    "train.tensorboard=false",
    "--set",
    "data.max_pair_tokens=12",
    "--set",
    "model.beam=2",
]


def run_stdin(*args: str, stdin: str) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, with text on standard input."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.run(
        [sys.executable, "-m", "rnnkit", *args], input=stdin, capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("s2s") / "run"
    run_cli("train", "spa-eng-small", "--data-dir", str(data_dir), "--out", str(run), "--max-steps", "70", *TINY_S2S)
    return run


def test_loss_falls_and_test_metrics_reload_exactly(tiny_run):
    losses = train_losses(tiny_run)
    first, last = np.mean([losses[s] for s in range(1, 6)]), np.mean([losses[s] for s in range(66, 71)])
    assert last < first - 1.5, (first, last)  # from ~ln(vocab) to far below
    logged = [r for r in read_metrics(tiny_run) if r.get("split") == "test"][-1]
    out = json.loads(run_cli("eval", str(tiny_run), "--split", "test", "--json").stdout)
    assert {"bleu", "chrf", "bleu_greedy", "loss"} <= set(out)
    assert out["beam"] == 3 and out["sentences"] > 50
    # a reloaded model (vocabulary, saved split, weights) gives the numbers training logged, decodes included
    for k in ("loss", "bleu", "bleu_greedy", "chrf"):
        assert out[k] == pytest.approx(logged[k], rel=1e-6, abs=1e-9), k


def test_translate_args_stdin_file_and_attention_plot(tiny_run, tmp_path):
    sents = ["¿Cómo te llamas?", "Como te llamas", "Hola", "Estoy leyendo un libro"]
    png = tmp_path / "att.png"
    by_args = run_cli("translate", str(tiny_run), "--show-attention", str(png), *sents).stdout.splitlines()
    assert len(by_args) == 4 and all(line.strip() for line in by_args)
    pngs = sorted(tmp_path.glob("att-*.png"))
    assert len(pngs) == 4 and all(p.stat().st_size > 1000 for p in pngs)
    proc = run_stdin("translate", str(tiny_run), stdin=f"{sents[0]}\n\n{sents[2]}\n{sents[3]}\n")
    assert proc.stdout.splitlines() == [by_args[0], "", by_args[2], by_args[3]]  # a line out per line in
    f = tmp_path / "in.txt"
    f.write_text("\n".join(sents) + "\n", encoding="utf-8")
    greedy = run_cli("translate", str(tiny_run), "--file", str(f), "--greedy").stdout
    assert run_cli("translate", str(tiny_run), "--beam", "1", *sents).stdout == greedy
    assert len(greedy.splitlines()) == 4
    bad = run_cli("translate", str(tiny_run), "--file", str(tmp_path / "missing.txt"), check=False)
    assert bad.returncode == 2 and "file not found" in bad.stderr


def test_accents_are_optional_on_the_spanish_side(tiny_run):
    from rnnkit.runs import load_run

    task = load_run(tiny_run, device="cpu").task
    assert task.strips("source") and not task.strips("target")
    a, toks, _ = task.encode_source("¿Cómo estás? Hablas español")
    b, _, _ = task.encode_source("¿COMO ESTAS? Hablas espanol")
    assert a == b and toks[:3] == ["¿", "como", "estas"]


def test_split_is_reproducible_saved_and_disjoint_by_source(tiny_run, data_dir):
    from rnnkit.data.parallel import SPLIT_CODES, grouped_split, normalize, read_pairs
    from rnnkit.runs import load_run

    pairs = read_pairs(data_dir / "spa-eng" / "spa.txt.gz", 1, 0)
    with gzip.open(data_dir / "spa-eng" / "spa.txt.gz", "rt", encoding="utf-8") as f:
        assert len(pairs) == sum(1 for _ in f)  # every line a pair (118,964 in the full set)
    keys = [normalize(p.source, accents=False) for p in pairs]
    a = grouped_split(keys, {"valid": 0.05, "test": 0.05}, seed=0)
    assert np.array_equal(a, grouped_split(keys, {"valid": 0.05, "test": 0.05}, seed=0))
    assert not np.array_equal(a, grouped_split(keys, {"valid": 0.05, "test": 0.05}, seed=1))
    for code in (1, 2):
        assert abs((a == code).mean() - 0.05) < 0.001
    by_key: dict[str, set[int]] = {}
    for k, c in zip(keys, a.tolist()):
        by_key.setdefault(k, set()).add(c)
    assert all(len(v) == 1 for v in by_key.values())  # a sentence and its other translations share a split
    # the run saved its split, and its test sources never occur in its training data
    loaded = load_run(tiny_run, device="cpu")
    task = loaded.task
    saved = loaded.checkpoint["artifacts"]["split"].numpy()
    assert saved.size == 3000
    assert np.array_equal(saved, grouped_split(keys[:3000], {"valid": 0.05, "test": 0.05}, seed=0))
    train_src = {keys[i] for i in np.flatnonzero(saved == SPLIT_CODES["train"])}
    test_lines = task.split_lines("test")
    assert test_lines and all(keys[n - 1] not in train_src for n in test_lines)


def test_bad_pairs_files_are_one_line_errors(tmp_path, data_dir):
    cases = {
        "empty.tsv": (b"", "file is empty"),
        "notab.tsv": (b"hello\thola\nno tab here\n", "line 2: no tab"),
        "latin1.tsv": ("hola\tcaf\u00e9\n".encode("latin-1"), "not valid UTF-8"),
        "cols.tsv": (b"a\tb\nc\td\n", "data.source_column=2"),
    }
    for name, (content, needle) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        col = "2" if name == "cols.tsv" else "0"
        proc = run_cli(
            "train",
            "spa-eng-small",
            "--out",
            str(tmp_path / f"run-{name}"),
            "--set",
            f"data.path={path}",
            "--set",
            f"data.source_column={col}",
            "--set",
            "data.target_column=1",
            "--max-steps",
            "1",
            check=False,
        )
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert needle in proc.stderr and name in proc.stderr, proc.stderr


def test_chat_once_prints_the_asked_number_of_replies(tmp_path, data_dir):
    run = tmp_path / "chat"
    run_cli("train", "chatbot", "--data-dir", str(data_dir), "--out", str(run), "--max-steps", "30", *TINY_CHAT)
    losses = train_losses(run)
    assert np.mean([losses[s] for s in range(26, 31)]) < np.mean([losses[s] for s in range(1, 6)]) - 1.0
    out = run_cli("chat", str(run), "--once", "hello", "--replies", "3", "--seed", "1").stdout.splitlines()
    assert len(out) == 3 and all(r.strip() for r in out)
    beam = run_cli("chat", str(run), "--once", "hi, how are you doing?", "--replies", "3", "--decoding", "beam")
    assert len(beam.stdout.splitlines()) == 3
    convo = run_stdin("chat", str(run), "--replies", "2", "--seed", "0", stdin="hello\nwhat school do you go to?\n")
    assert len(convo.stdout.splitlines()) == 4  # two messages, two replies each, history carried between
    empty = run_cli("chat", str(run), "--once", "   ", check=False)
    assert empty.returncode == 2 and "empty" in empty.stderr


# -- in-process units -----------------------------------------------------------------------------
def _task(data_dir, **over):
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe

    overrides = {"data.max_pairs": 2000, "model.hidden": 24, "model.embedding": 16, "train.batch_size": 32}
    overrides.update(over)
    cfg = load_recipe("spa-eng-small", overrides)
    task = get_task("seq2seq")(cfg, data_dir, torch.device("cpu"))
    task.prepare(("train", "valid"))
    return task


def test_attention_weights_sum_to_one_and_ignore_padding():
    from rnnkit.models.seq2seq import Seq2Seq

    torch.manual_seed(0)
    for attention in ("bahdanau", "dot", "general"):
        model = Seq2Seq(
            20,
            20,
            embedding=8,
            hidden=12,
            attention=attention,
            input_feed=attention == "dot",
            bidirectional=attention == "general",
            cell="gru",
        ).eval()
        src = torch.randint(4, 20, (6, 3))
        lengths = torch.tensor([6, 2, 4])
        src[2:, 1] = 0
        src[4:, 2] = 0
        tgt = torch.randint(4, 20, (5, 3))
        feats, w = model(src, lengths, tgt, return_attention=True)  # w: (B, T, S)
        assert torch.allclose(w.sum(-1), torch.ones(3, 5), atol=1e-6)
        assert (w[1, :, 2:] == 0).all() and (w[2, :, 4:] == 0).all()
        # the padded sentence gives what it gives alone
        alone, w_alone = model(src[:2, 1:2], lengths[1:2], tgt[:, 1:2], return_attention=True)
        assert torch.allclose(alone[:, 0], feats[:, 1], atol=1e-5)
        assert torch.allclose(w_alone[0], w[1, :, :2], atol=1e-6)


def test_model_variants_train_and_sampled_softmax_learns(data_dir):
    task = _task(data_dir)
    variants = [
        {"model.attention_kind": "bahdanau", "model.cell": "lstm", "model.bidirectional": True, "model.layers": 2},
        {"model.attention_kind": "general", "model.input_feed": True, "model.tie": True, "model.teacher_forcing": 0.5},
        {"model.attention_kind": "none", "model.backend": "scratch", "model.cell": "gru"},
        {"model.sampled_softmax": 64},
    ]
    for over in variants:
        for k, v in over.items():
            setattr(task.config.model, k.split(".")[1], v)
        torch.manual_seed(0)
        model = task.build_model()
        opt = torch.optim.Adam(model.parameters(), 0.01)
        before = task.evaluate(model, "valid")["loss"]
        model.train()
        for i, batch in enumerate(task.train_batches(0)):
            if i == 25:
                break
            opt.zero_grad()
            loss, count = task.train_step(model, batch)
            assert torch.isfinite(loss) and count > 0
            loss.backward()
            opt.step()
        after = task.evaluate(model, "valid")
        assert after["loss"] < before - 0.5, (over, before, after["loss"])  # full-softmax loss, always
        for k in over:
            setattr(task.config.model, k.split(".")[1], getattr(type(task.config.model)(), k.split(".")[1]))


def test_batches_depend_only_on_seed_and_epoch(data_dir):
    task = _task(data_dir, **{"data.source_punct_dropout": 0.5})
    full = list(task.train_batches(1))
    resumed = list(task.train_batches(1, start=5))
    assert len(resumed) == len(full) - 5
    for a, b in zip(full[5:], resumed):
        assert torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out)
    other = list(task.train_batches(2))
    assert not all(torch.equal(a.index, b.index) for a, b in zip(full, other))
    spread = [int(b.src_len.max() - b.src_len.min()) for b in full]
    task.config.data.bucket = 0
    plain = [int(b.src_len.max() - b.src_len.min()) for b in task.train_batches(1)]
    assert np.mean(spread) < np.mean(plain) / 2  # bucketing keeps similar lengths together


def test_sentencepiece_subwords(data_dir):
    pytest.importorskip("sentencepiece")  # optional: pip install -e ".[subword]"
    task = _task(data_dir, **{"data.tokenizer": "sentencepiece", "data.subword_vocab": 300})
    assert task.src_tok.kind == "sentencepiece" and 50 < len(task.tgt_vocab) <= 310
    ids, toks, _ = task.encode_source("¿Dónde está la biblioteca?")
    assert ids and all(i != 1 for i in ids[:2])
    assert task.tgt_tok.detokenize(task.tgt_tok.tokens("what's your name?")) == "what's your name?"


def test_sentencepiece_missing_is_a_clear_error(data_dir, monkeypatch):
    from rnnkit.errors import UserError

    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # as if not installed
    with pytest.raises(UserError, match="pip install sentencepiece"):
        _task(data_dir, **{"data.tokenizer": "sentencepiece"})


def test_pairs_reader_handles_gzip_columns_and_blank_lines(tmp_path):
    from rnnkit.data.parallel import detokenize_words, normalize, read_pairs, word_tokens

    p = tmp_path / "x.tsv.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write("Hi.\tHola.\tCC-BY\r\n\nWhat's this\u2026?\t¿Qué es\u0085esto?\tCC-BY\n")
    pairs = read_pairs(p, 1, 0)  # U+0085 (a line break to str.splitlines) inside a sentence is no line end
    assert [(q.source, q.target, q.line) for q in pairs] == [
        ("Hola.", "Hi.", 1),
        ("¿Qué es\u0085esto?", "What's this\u2026?", 3),
    ]
    assert normalize("¿Qué es\u0085esto?") == "¿qué es esto?"
    assert word_tokens(normalize("¿Qué es ESTO?")) == ["¿", "qué", "es", "esto", "?"]
    assert detokenize_words(["¿", "qué", "es", "esto", "?"]) == "¿qué es esto?"
    assert detokenize_words(["what's", "your", "name", "?"]) == "what's your name?"
