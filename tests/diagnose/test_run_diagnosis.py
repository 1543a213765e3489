"""rnnkit diagnose RUN: learning curves and a verdict (high variance / high bias) on runs built to show each."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_LM
from rnnkit.cli import main

# a word LM memorising ~3,300 tokens, validated on the 7,400 tokens held out after them: it overfits in epochs
OVERFIT_LM = [
    *TINY_LM,
    "--set",
    "model.hidden=64",
    "--set",
    'data.valid=""',
    "--set",
    "data.valid_fraction=0.1",
    "--set",
    "data.train_fraction=0.05",
    "--set",
    "optim.name=adam",
    "--set",
    "optim.lr=0.01",
    "--set",
    'optim.schedule="constant"',
    "--set",
    'optim.loss_over_time="mean"',
    "--set",
    "train.log_every=10",
    "--set",
    "train.eval_test=false",
    "--set",
    "train.max_epochs=5",
]
# a 2-unit RNN with a learning rate far too small: the training loss does not move
UNDERFIT_PARITY = [
    "--set",
    "data.size=1000",
    "--set",
    "data.bits=20",
    "--set",
    "model.hidden=2",
    "--set",
    "optim.lr=0.00003",
    "--set",
    "train.batch_size=50",
    "--set",
    "train.max_epochs=2",
    "--set",
    "train.log_every=2",
    "--set",
    "train.eval_every=4",
    "--set",
    "train.tensorboard=false",
    "--set",
    "train.eval_test=false",
]


def _json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("diag") / "overfit"
    assert main(["train", "ptb-small", "--data-dir", str(data_dir), "--out", str(run), "--quiet", *OVERFIT_LM]) == 0
    return run


def test_overfitting_run_is_high_variance(overfit_run, capsys):
    d = _json(capsys, "diagnose", str(overfit_run))
    assert d["verdict"] == "high_variance", d["reasons"]
    assert d["gap_final"] > d["gap_first"] + 0.5  # the validation-training gap grew
    assert d["valid_loss_final"] > d["valid_loss_best"]  # and validation turned up
    assert d["train_loss_final"] < d["train_loss_first"]
    png = overfit_run / "diagnosis.png"
    assert d["plot"] == str(png) and png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000
    capsys.readouterr()
    assert main(["diagnose", str(overfit_run)]) == 0
    text = capsys.readouterr().out
    assert "high variance" in text and "gap" in text and f"{d['gap_final']:.3g}" in text


def test_underfitting_run_is_high_bias(tmp_path, capsys):
    run = tmp_path / "underfit"
    assert main(["train", "parity", "--out", str(run), "--quiet", *UNDERFIT_PARITY]) == 0
    d = _json(capsys, "diagnose", str(run), "--plot", str(tmp_path / "u.png"))
    assert d["verdict"] == "high_bias", d["reasons"]
    assert d["train_drop"] < 0.25 and "hardly fell" in d["reasons"][0]
    assert (tmp_path / "u.png").read_bytes().startswith(b"\x89PNG")
    # a target loss the run does not reach is high bias whatever the curve's shape
    assert _json(capsys, "diagnose", str(run), "--target-loss", "0.1")["verdict"] == "high_bias"


def test_learning_curve_by_data_size(overfit_run, capsys):
    d = _json(capsys, "diagnose", str(overfit_run), "--data-sizes", "0.5,1.0", "--max-steps", "12")
    assert [r["fraction"] for r in d["sizes"]] == [0.5, 1.0]
    assert [r["train_fraction"] for r in d["sizes"]] == [0.025, 0.05]
    for r in d["sizes"]:
        assert r["steps"] == 12 and r["train_loss"] > 0 and r["valid_loss"] > 0
        cfg = (overfit_run / "data-sizes" / f"f{r['fraction']:g}" / "config.toml").read_text()
        assert f"train_fraction = {r['train_fraction']}" in cfg
    assert d["verdict"] in ("more_data_helps", "more_data_does_not_help")
    assert (overfit_run / "data-sizes.png").read_bytes().startswith(b"\x89PNG")
    again = _json(capsys, "diagnose", str(overfit_run), "--data-sizes", "0.5,1.0", "--max-steps", "12")
    assert again["sizes"] == d["sizes"]  # finished copies are reused, not retrained


def test_user_errors(tmp_path, capsys):
    cases = [
        (["diagnose", str(tmp_path / "nope")], "neither 'gradients' nor a run directory"),
        (["diagnose", str(tmp_path)], "not a run directory"),
        (["diagnose", str(tmp_path), "--data-sizes", "0,2"], "fractions must lie in (0, 1]"),
    ]
    run = tmp_path / "parity"
    assert main(["train", "parity", "--out", str(run), "--quiet", *UNDERFIT_PARITY, "--set", "train.max_steps=2"]) == 0
    cases.append((["diagnose", str(run), "--data-sizes", "0.5,1"], "has no data.train_fraction"))
    for args, needle in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err
