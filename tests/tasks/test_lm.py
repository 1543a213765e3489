"""A tiny word LM trained for a few steps on real Penn Treebank text, then evaluated and sampled."""

from __future__ import annotations

import json
import math

import pytest

from conftest import TINY_LM, read_metrics, run_cli, train_losses


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("lm") / "run"
    run_cli(
        "train",
        "ptb-small",
        "--data-dir",
        str(data_dir),
        "--out",
        str(run),
        "--max-steps",
        "60",
        *TINY_LM,
        "--set",
        "optim.lr=1.0",
        "--set",
        "train.tensorboard=true",
    )
    return run


def test_loss_falls_and_run_dir_is_complete(tiny_run):
    losses = train_losses(tiny_run)
    first, last = sum(losses[s] for s in range(1, 6)) / 5, sum(losses[s] for s in range(56, 61)) / 5
    assert last < first - 1.0, (first, last)  # from ~ln(6000) towards unigram level and below
    files = ("config.toml", "run.json", "metrics.jsonl", "curves.png", "checkpoints/last.pt", "checkpoints/best.pt")
    for name in files:
        assert (tiny_run / name).is_file(), name
    assert list((tiny_run / "tensorboard").glob("events.out.tfevents.*"))
    records = read_metrics(tiny_run)
    train = [r for r in records if "split" not in r]
    assert {"step", "epoch", "loss", "lr", "tokens_per_s"} <= set(train[0])
    evals = {r["split"]: r for r in records if "split" in r}
    assert {"valid", "test"} <= set(evals) and all("ppl" in r for r in evals.values())


def test_eval_json_gives_whole_split_perplexity(tiny_run, data_dir):
    out = json.loads(run_cli("eval", str(tiny_run), "--split", "test", "--json").stdout)
    assert out["tokens"] == 82430 - 1  # every token of PTB test but the first is predicted
    assert math.isclose(out["ppl"], math.exp(out["loss"]), rel_tol=1e-9)
    both = json.loads(run_cli("eval", str(tiny_run), "--json").stdout)
    assert set(both) == {"valid", "test"} and both["test"]["ppl"] == out["ppl"]


def test_generate_is_reproducible_with_a_seed(tiny_run):
    args = ["generate", str(tiny_run), "--prompt", "the company said", "--max-new-tokens", "15", "--seed", "3"]
    a, b = run_cli(*args).stdout, run_cli(*args).stdout
    assert a == b and a.startswith("the company said")
    assert len(a.split()) >= 15
    other = run_cli(
        "generate", str(tiny_run), "--prompt", "the company said", "--max-new-tokens", "15", "--seed", "4"
    ).stdout
    assert other != a


def test_greedy_equals_top_k_1_and_tiny_temperature(tiny_run):
    greedy = run_cli("generate", str(tiny_run), "--prompt", "stocks", "--max-new-tokens", "8", "--greedy").stdout
    assert (
        run_cli(
            "generate", str(tiny_run), "--prompt", "stocks", "--max-new-tokens", "8", "--top-k", "1", "--seed", "1"
        ).stdout
        == greedy
    )
    cold = run_cli(
        "generate", str(tiny_run), "--prompt", "stocks", "--max-new-tokens", "8", "--temperature", "1e-9", "--seed", "1"
    ).stdout
    assert cold == greedy and "nan" not in cold


def test_prompt_of_unknown_words_is_a_user_error(tiny_run):
    proc = run_cli("generate", str(tiny_run), "--prompt", "zzqx qqzv", "--max-new-tokens", "5", check=False)
    assert proc.returncode == 2 and "unknown" in proc.stderr and "Traceback" not in proc.stderr


def test_divergence_stops_with_a_clear_message(tmp_path, data_dir):
    run = tmp_path / "nan"
    run_cli("train", "ptb-small", "--data-dir", str(data_dir), "--out", str(run), "--max-steps", "3", *TINY_LM)
    # a finite learning rate (inf is refused at load time) that overflows float32 at the first update
    proc = run_cli(
        "train",
        "--resume",
        str(run),
        "--max-steps",
        "30",
        "--set",
        "optim.lr=1e300",
        "--set",
        "optim.clip=0",
        "--set",
        "train.checkpoint_every=1",
        check=False,
    )
    assert proc.returncode == 2 and "training diverged" in proc.stderr and "Traceback" not in proc.stderr
    assert "last good checkpoint" in proc.stderr
    import torch

    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["loop"]["step"] == 3
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())


def test_char_level_and_gru_windows(tmp_path, data_dir):
    run = tmp_path / "char"
    run_cli(
        "train",
        "shakespeare-char",
        "--data-dir",
        str(data_dir),
        "--out",
        str(run),
        "--max-steps",
        "25",
        "--set",
        "model.hidden=48",
        "--set",
        "model.embedding=16",
        "--set",
        "train.batch_size=16",
        "--set",
        "data.bptt=30",
        "--set",
        "train.log_every=1",
        "--set",
        "model.cell=gru",
        "--set",
        "train.tensorboard=false",
    )
    losses = train_losses(run)
    assert losses[25] < losses[1] - 0.5
    out = json.loads(run_cli("eval", str(run), "--split", "valid", "--json").stdout)
    assert "bpc" in out
    text = run_cli("generate", str(run), "--prompt", "ROMEO:", "--max-new-tokens", "5", "--seed", "0").stdout
    assert text.startswith("ROMEO:")
    book = tmp_path / "book"
    run_cli(
        "train",
        "book-gru",
        "--data-dir",
        str(data_dir),
        "--out",
        str(book),
        "--max-steps",
        "15",
        "--set",
        "model.hidden=32",
        "--set",
        "model.embedding=16",
        "--set",
        "train.batch_size=64",
        "--set",
        "train.log_every=1",
        "--set",
        "train.tensorboard=false",
        "--set",
        "optim.lr=0.01",
    )
    losses = train_losses(book)
    assert losses[15] < losses[1]


def test_scratch_backend_trains_the_same_model(tmp_path, data_dir):
    """Same seed, same init: the scratch cells and the fused kernel give the same first losses."""
    runs = {}
    for backend in ("fast", "scratch"):
        runs[backend] = tmp_path / backend
        run_cli(
            "train",
            "ptb-small",
            "--data-dir",
            str(data_dir),
            "--out",
            str(runs[backend]),
            "--max-steps",
            "3",
            *TINY_LM,
            "--set",
            f"model.backend={backend}",
            "--set",
            "train.eval_test=false",
        )
    a, b = train_losses(runs["fast"]), train_losses(runs["scratch"])
    assert all(math.isclose(a[s], b[s], rel_tol=1e-4) for s in (1, 2, 3))
