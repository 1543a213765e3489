"""``model.hidden = [a, b]`` through the tasks: load-time validation, the ptb-notebook recipe, training with
mixed sizes (the loss falls), exact resume of a language model that carries a state per layer, and the other
recurrent tasks trained a few steps with layers of different sizes (the numbers of those models are compared with
the fused / scratch backends in tests/models/test_per_layer_sizes.py; here: the task plumbing)."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import TINY_LM, read_metrics, run_cli, train_losses
from rnnkit.cli import main
from rnnkit.tasks.recipes import load_recipe

MIXED = ["--set", "model.hidden=[40,24]", "--set", "model.layers=2"]


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "args, needle",
    [
        (
            ["--set", "model.hidden=[256,128,64]"],
            "--set model.hidden=[256,128,64]: model.hidden = [256, 128, 64] holds 3 values but model.layers = 2: "
            "give one per layer, or set model.layers = 3",
        ),
        (
            ["--set", "model.layers=3"],
            "ptb-notebook.toml: model.hidden = [256, 128] holds 2 values but model.layers = 3",
        ),
        (["--set", "model.hidden=[256,0]"], "--set model.hidden=[256,0]: model.hidden[1] must be >= 1, got 0"),
        (["--set", "model.hidden=[-4,2]"], "model.hidden[0] must be >= 1, got -4"),
        (["--set", "model.hidden=[]"], "model.hidden is empty: give one size for every layer"),
        (["--set", 'model.hidden=[256,"wide"]'], "model.hidden must be an integer or a list of integers"),
        (["--set", "model.tie=true"], "model.tie needs model.embedding == the last layer's size (got 200 and 128)"),
    ],
)
def test_bad_sizes_are_one_line_errors_naming_the_key(capsys, args, needle):
    code, err = _cli(capsys, "train", "ptb-notebook", "--check", *args)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err


@pytest.mark.parametrize("recipe", ["sms-spam", "har-subset", "airline", "spa-eng-small", "parity", "ptb-awd"])
def test_every_recurrent_task_checks_and_builds_mixed_sizes(capsys, recipe):
    code, err = _cli(
        capsys,
        "train",
        recipe,
        "--check",
        "--set",
        "model.hidden=[24,16]",
        "--set",
        "model.layers=2",
        *(["--set", "model.embedding=16"] if recipe == "ptb-awd" else []),
    )
    assert code == 0, err
    code, err = _cli(capsys, "train", recipe, "--check", "--set", "model.hidden=[24,16]", "--set", "model.layers=3")
    assert code == 2 and "model.hidden = [24, 16] holds 2 values but model.layers = 3" in err, err


def test_ptb_notebook_check_and_settings(capsys):
    code, err = _cli(capsys, "train", "ptb-notebook", "--check")
    assert code == 0, err
    c = load_recipe("ptb-notebook")
    m, d, o, t = c.model, c.data, c.optim, c.train
    assert (m.embedding, m.hidden, m.layers, m.dropout, m.init_scale, m.forget_bias, m.tie) == (
        200,
        [256, 128],
        2,
        0.0,
        0.1,
        0.0,
        False,
    )
    assert (d.bptt, d.carry_state, t.batch_size, t.max_epochs) == (20, True, 60, 15)
    assert (o.name, o.lr, o.clip, o.schedule, o.decay, o.decay_after) == ("sgd", 1.0, 5.0, "zaremba", 0.5, 4)
    lrs = [o.lr * o.decay ** max(e - o.decay_after, 0) for e in range(15)]
    assert lrs[:5] == [1.0] * 5 and lrs[5] == 0.5 and lrs[-1] == 0.5**10  # "halved from the 6th epoch"
    assert "118.0" in c.description


def test_ptb_notebook_model_has_the_notebooks_size_and_steps(data_dir):
    """On the real PTB: a 10,000-word vocabulary, 774 steps an epoch at batch 60 x 20 steps, and the notebook's
    3,955,088 parameters (Keras counts one bias per LSTM layer; PyTorch's b_ih + b_hh hold 1,536 entries more)."""
    from rnnkit.tasks import get_task

    task = get_task("lm")(load_recipe("ptb-notebook"), data_dir, torch.device("cpu"))
    task.prepare(("train",))
    assert len(task.vocab) == 10_000
    assert task.num_train_batches(0) == 774
    model = task.build_model()
    total = sum(p.numel() for p in model.parameters())
    bias_hh = sum(p.numel() for n, p in model.named_parameters() if n.rpartition(".")[2].startswith("bias_hh"))
    assert total - bias_hh == 3_955_088 and bias_hh == 1_536
    assert all(p.abs().max() <= 0.1 for p in model.parameters())  # uniform in [-0.1, 0.1], forget bias 0


@pytest.mark.parametrize("backend", ["fast", "scratch"])
def test_language_model_with_mixed_sizes_trains(tmp_path, data_dir, backend):
    run = tmp_path / backend
    run_cli(
        "train",
        "ptb-small",
        "--data-dir",
        str(data_dir),
        "--out",
        str(run),
        "--max-steps",
        "40",
        *TINY_LM,
        *MIXED,
        "--set",
        f"model.backend={backend}",
        "--set",
        "train.eval_test=false",
    )
    losses = train_losses(run)
    first, last = sum(losses[s] for s in range(1, 6)) / 5, sum(losses[s] for s in range(36, 41)) / 5
    assert last < first - 0.8, (first, last)
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["model"]["rnn.1.weight_hh_l0"].shape == (4 * 24, 24)
    h = ckpt["task_loop"]["hidden"]  # the carried state, one (h, c) per layer of its own width
    assert ckpt["task_loop"]["nested"] and [[t.shape for t in layer] for layer in h] == [
        [(1, 8, 40)] * 2,
        [(1, 8, 24)] * 2,
    ]


def test_resume_with_mixed_sizes_is_bit_identical(tmp_path, data_dir):
    """The carried per-layer state (widths 40 and 24) goes into the checkpoint and back: an interrupted run
    resumes exactly, losses and weights equal bit for bit."""
    args = [*TINY_LM, *MIXED, "--set", "model.dropout=0.3", "--set", "train.eval_test=false", "--set", "data.bptt=7"]
    full, part = tmp_path / "full", tmp_path / "part"
    run_cli("train", "ptb-small", "--data-dir", str(data_dir), "--out", str(full), "--max-steps", "20", *args)
    run_cli("train", "ptb-small", "--data-dir", str(data_dir), "--out", str(part), "--max-steps", "9", *args)
    run_cli("train", "--resume", str(part), "--max-steps", "20")
    a, b = train_losses(full), train_losses(part)
    assert sorted(a) == sorted(b) == list(range(1, 21))
    assert [a[s] for s in range(1, 21)] == [b[s] for s in range(1, 21)]
    sa = torch.load(full / "checkpoints" / "last.pt", weights_only=True)
    sb = torch.load(part / "checkpoints" / "last.pt", weights_only=True)
    assert sa["model"].keys() == sb["model"].keys() and all(
        torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"]
    )
    for la, lb in zip(sa["task_loop"]["hidden"], sb["task_loop"]["hidden"], strict=True):
        assert all(torch.equal(x, y) for x, y in zip(la, lb, strict=True))


@pytest.mark.parametrize(
    "recipe, extra",
    [
        (
            "sms-spam",
            [
                "--set",
                "model.embedding=16",
                "--set",
                "train.batch_size=32",
                "--set",
                "optim.lr=0.01",
                "--set",
                "model.bidirectional=true",
            ],
        ),
        ("har-subset", ["--set", "train.batch_size=32"]),
        ("airline", []),
        (
            "spa-eng-small",
            [
                "--set",
                "data.max_pairs=2000",
                "--set",
                "model.embedding=16",
                "--set",
                "train.batch_size=32",
                "--set",
                "data.valid_bleu_sentences=20",
                "--set",
                "model.bidirectional=true",
            ],
        ),
    ],
)
def test_other_tasks_train_with_mixed_sizes(tmp_path, data_dir, recipe, extra):
    run = tmp_path / recipe
    assert (
        main(
            [
                "train",
                recipe,
                "--data-dir",
                str(data_dir),
                "--out",
                str(run),
                "--max-steps",
                "12",
                "-q",
                "--set",
                "model.hidden=[24,12]",
                "--set",
                "model.layers=2",
                "--set",
                "train.log_every=1",
                "--set",
                "train.tensorboard=false",
                "--set",
                "train.eval_test=false",
                *extra,
            ]
        )
        == 0
    )
    losses = train_losses(run)
    assert len(losses) == 12 and all(math.isfinite(v) for v in losses.values())
    valid = [r for r in read_metrics(run) if r.get("split") == "valid"]
    assert valid and all(math.isfinite(v) for v in valid[-1].values() if isinstance(v, float)), valid
