"""The parity recipe (count the ones in bit strings with a simple RNN) trained for a few steps, then evaluated."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import read_metrics, run_cli, train_losses

SMALL = [
    "--set",
    "data.size=2000",
    "--set",
    "train.batch_size=50",
    "--set",
    "train.log_every=1",
    "--set",
    "train.tensorboard=false",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("parity") / "run"
    run_cli("train", "parity", "--out", str(run), "--max-steps", "40", "--seed", "1", *SMALL)
    return run


def test_loss_falls_with_the_recipe(tiny_run):
    losses = train_losses(tiny_run)
    first, last = sum(losses[s] for s in range(1, 6)) / 5, sum(losses[s] for s in range(36, 41)) / 5
    assert last < first - 0.5, (first, last)  # 3.7 -> 2.7 at seed 1
    evals = {r["split"]: r for r in read_metrics(tiny_run) if "split" in r}
    assert {"valid", "test"} <= set(evals) and all(0 <= r["accuracy"] <= 1 for r in evals.values())


def test_eval_json_reports_accuracy(tiny_run):
    out = json.loads(run_cli("eval", str(tiny_run), "--json").stdout)
    assert set(out) == {"valid", "test"}
    assert all(r["examples"] == 200 and 0 <= r["accuracy"] <= 1 and r["loss"] > 0 for r in out.values())
    at_train_end = [r for r in read_metrics(tiny_run) if r.get("split") == "test"][-1]
    assert out["test"]["accuracy"] == at_train_end["accuracy"]  # both score best.pt


def test_count_head_predicts_the_nearest_integer():
    from rnnkit.tasks.parity import CountHead

    head = CountHead(3, 51)
    with torch.no_grad():
        head.read.weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
        head.read.bias.zero_()
    c = torch.tensor([0.0, 0.4, 0.6, 24.49, 24.51, 50.0, 57.0, -3.0])
    h = torch.stack([c, torch.randn(8), torch.randn(8)], dim=1)
    assert head(h).argmax(-1).tolist() == [0, 0, 1, 24, 25, 50, 50, 0]
    assert "values" not in head.state_dict()  # the class values are rebuilt, not stored in checkpoints


def test_unknown_head_is_a_user_error(tmp_path, capsys):
    from rnnkit.cli import main

    code = main(
        ["train", "parity", "--out", str(tmp_path / "bad"), "--max-steps", "1", *SMALL, "--set", "model.head=mlp"]
    )
    assert code == 2 and "model.head" in capsys.readouterr().err
