"""The Python API as a notebook uses it: no CLI, in-memory data, callbacks, resume - and agreement with the CLI.

Every run is a real one on real data, shrunk to a few steps.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit
from conftest import REPO, train_losses
from rnnkit.callbacks import EarlyStopping
from rnnkit.errors import UserError

pd = pytest.importorskip("pandas")

SMALL_TEXT = {
    "model.embedding": 16,
    "model.hidden": 16,
    "train.batch_size": 16,
    "train.log_every": 4,
    "train.tensorboard": False,
}
# the resume tests' LM: dropout on (RNG state matters), carried hidden state (loop state matters)
TINY_LM = {
    "model.embedding": 32,
    "model.hidden": 32,
    "train.batch_size": 8,
    "data.bptt": 7,
    "data.train": "ptb/ptb.valid.txt",
    "train.log_every": 1,
    "train.tensorboard": False,
    "model.dropout": 0.3,
    "train.eval_test": False,
}


def sms_pairs(data_dir: Path, n: int = 600) -> list[tuple[str, str]]:
    lines = (data_dir / "sms-spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[:n]
    return [(text, label) for label, text in (ln.split("\t", 1) for ln in lines)]


def airline(data_dir: Path):
    return pd.read_csv(data_dir / "timeseries" / "airline-passengers.csv", index_col=0, parse_dates=True)["Passengers"]


def test_notebook_session(tmp_path, data_dir):
    """Train a classifier from a list, classify, stop it from a callback, resume it, forecast from a Series."""
    seen: list[dict] = []

    def stop_at_step_10(record: dict) -> bool:
        seen.append(record)
        return record.get("step", 0) >= 10 and "split" not in record

    run = rnnkit.train(
        "text-classify",
        data=sms_pairs(data_dir),
        out=tmp_path / "spam",
        overrides=SMALL_TEXT,
        callbacks=[stop_at_step_10],
        progress=False,
    )
    assert isinstance(run, rnnkit.Run)
    s = run.summary
    assert s["stopped"] == "callback" and s["step"] == 12  # the first training record at or after step 10
    # a clean stop: validated at the stop, last.pt saved there, resumable
    assert [r["step"] for r in run.records if r.get("split") == "valid"][-1] == 12
    assert torch.load(run.path / "checkpoints" / "last.pt", weights_only=True)["loop"]["step"] == 12
    assert {r["step"] for r in seen if "split" not in r} == {4, 8, 12}
    assert any(r.get("split") == "valid" for r in seen)
    assert set(run.info["materialised"]["files"]) == {"data/examples.tsv"}
    assert run.config.data.path == ["data/examples.tsv"]

    one = run.classify("WINNER!! claim your free prize now, call 09061701461")
    assert one["label"] in ("ham", "spam") and abs(sum(one["probabilities"].values()) - 1) < 1e-5
    many = run.classify(["see you at lunch", "free entry in a weekly competition"])
    assert [r["text"] for r in many] == ["see you at lunch", "free entry in a weekly competition"]

    frame = run.metrics
    assert {"step", "loss", "split"} <= set(frame.columns)
    assert len(frame) == len(run.records)

    run.resume(max_steps=20, progress=False)
    assert run.summary["stopped"] == "max_steps" and run.summary["step"] == 20
    assert sorted(train_losses(run.path)) == [4, 8, 12, 16, 20]  # the resumed run continued, nothing repeated
    assert "test" in run.summary

    series = airline(data_dir)
    fc_run = rnnkit.train(
        "airline",
        data=series,
        out=tmp_path / "air",
        max_steps=15,
        overrides={"model.hidden": 8, "train.tensorboard": False},
        progress=False,
    )
    fc = fc_run.forecast(history=series, horizon=4)  # one type: the rows of `rnnkit forecast --json`
    assert isinstance(fc, pd.DataFrame)
    assert list(fc.columns) == ["time", "column", "forecast", "lower", "upper"]
    assert [str(t.date()) for t in fc["time"]] == ["1961-01-01", "1961-02-01", "1961-03-01", "1961-04-01"]
    assert set(fc["column"]) == {"Passengers"}
    assert (fc["lower"] <= fc["forecast"]).all() and (fc["forecast"] <= fc["upper"]).all()
    plain = fc_run.forecast(history=list(series.to_numpy()), horizon=4)
    np.testing.assert_allclose(plain["forecast"], fc["forecast"])
    assert list(plain["time"]) == ["144", "145", "146", "147"]  # numbered rows continue
    # the run's own series (kept in its checkpoint) ends where the Series ends
    np.testing.assert_allclose(fc_run.forecast(horizon=4)["forecast"], plain["forecast"])


def test_evaluate_equals_the_cli_json(tiny_run):
    from rnnkit.cli import main

    for kind in ("text-classify", "forecast"):
        run_dir = tiny_run(kind)
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(["eval", str(run_dir), "--split", "test", "--json"]) == 0
        api = rnnkit.load(run_dir).evaluate("test")
        assert json.loads(json.dumps(api, default=str)) == json.loads(out.getvalue())
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(["eval", str(run_dir), "--json"]) == 0
        assert json.loads(json.dumps(rnnkit.load(run_dir).evaluate(), default=str)) == json.loads(out.getvalue())


def test_resume_is_bit_exact_through_the_api(tmp_path, data_dir):
    """As tests/train/test_resume.py for the CLI: 6 steps, then resumed to 14, equals 14 steps in one go."""
    full = rnnkit.train(
        "ptb-small", data_dir=data_dir, out=tmp_path / "full", overrides=TINY_LM, max_steps=14, progress=False
    )
    part = rnnkit.train(
        "ptb-small", data_dir=data_dir, out=tmp_path / "part", overrides=TINY_LM, max_steps=6, progress=False
    )
    assert part.summary["stopped"] == "max_steps"
    rnnkit.load(part.path).resume(max_steps=14, progress=False)
    a, b = train_losses(full.path), train_losses(part.path)
    assert sorted(a) == sorted(b) == list(range(1, 15))
    assert [a[s] for s in a] == [b[s] for s in a]  # exact float equality
    sa = torch.load(full.path / "checkpoints" / "last.pt", weights_only=True)["model"]
    sb = torch.load(part.path / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_early_stopping_decides_alike_across_resume():
    """EarlyStopping rebuilt from a resumed run's records stops where it would have in one run."""
    valid = [0.9, 0.8, 0.85, 0.84, 0.83, 0.82]  # best at the 2nd validation; patience 3 -> stop at the 5th
    records = [{"split": "valid", "step": 10 * (i + 1), "loss": v, "ppl": v} for i, v in enumerate(valid)]
    whole = EarlyStopping(patience=3)
    whole.on_train_begin({"metric": "ppl", "higher_is_better": False, "records": []})
    decisions = [whole(dict(r, note=None)) for r in records]
    assert decisions == [False, False, False, False, True, True] and whole.best == 0.8 and whole.best_step == 20
    resumed = EarlyStopping(patience=3)  # a new process after a stop at step 30
    resumed.on_train_begin({"metric": "ppl", "higher_is_better": False, "records": records[:3]})
    assert resumed.wait == 1 and [resumed(r) for r in records[3:]] == decisions[3:]
    acc = EarlyStopping(metric="accuracy", patience=1, min_delta=0.01)
    acc.on_train_begin({"metric": "ppl", "higher_is_better": False, "records": []})
    assert not acc({"split": "valid", "accuracy": 0.5}) and acc({"split": "valid", "accuracy": 0.505})
    with pytest.raises(ValueError):
        EarlyStopping(patience=0)
    from rnnkit.errors import UserTypeError, UserValueError

    with pytest.raises(UserValueError, match=r"^EarlyStopping\(patience=\.\.\.\) must be >= 1, got 0$"):
        EarlyStopping(patience=0)
    with pytest.raises(UserTypeError, match=r"^EarlyStopping\(patience=\.\.\.\) must be an int, got str"):
        EarlyStopping(patience="3")
    with pytest.raises(UserValueError, match=r"^EarlyStopping\(mode=\.\.\.\)"):
        EarlyStopping(mode="up")
    with pytest.raises(UserTypeError, match=r"^EarlyStopping\(metric=\.\.\.\)"):
        EarlyStopping(metric=5)


def test_early_stopping_callback_stops_a_run(tmp_path, data_dir):
    stopper = EarlyStopping(metric="loss", patience=1, mode="min", min_delta=100.0)  # no improvement counts
    run = rnnkit.train(
        "text-classify",
        data=sms_pairs(data_dir, 300),
        out=tmp_path / "es",
        overrides={**SMALL_TEXT, "train.eval_every": 4, "train.eval_test": False},
        callbacks=[stopper],
        max_steps=40,
        progress=False,
    )
    assert run.summary["stopped"] == "callback" and run.summary["step"] == 8  # validations at 4 (best) and 8
    assert stopper.stopped_step == 8 and stopper.best_step == 4


def test_sequences_from_arrays_and_a_moved_run(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 6, 2))
    y = np.where(X[:, :, 0].sum(1) > 0, "up", "down")
    run = rnnkit.train(
        "sequence-classify",
        data=(X, y),
        out=tmp_path / "seq",
        max_steps=8,
        overrides={"model.hidden": 8, "train.tensorboard": False},
        progress=False,
    )
    assert run.config.data.source == "npz"
    one, many = run.classify(X[0]), run.classify(X[:3])
    assert one["label"] in ("down", "up") and len(many) == 3 and "text" not in one
    assert many[0] == one
    before = run.evaluate("test")
    moved = tmp_path / "elsewhere" / "seq"
    moved.parent.mkdir()
    run.path.rename(moved)  # the data travel with the run: evaluation and resume still find them
    again = rnnkit.load(moved)
    assert again.evaluate("test") == before
    again.resume(max_steps=10, progress=False)
    assert again.summary["step"] == 10


def test_in_memory_data_mistakes_are_one_line_and_leave_nothing(tmp_path):
    out = tmp_path / "bad"
    cases = [
        ("text-classify", [("fine text", "a"), ("", "b")], "data[1]: the text is empty"),
        ("text-classify", "not pairs", "expected a list of (text, label) pairs"),
        ("forecast", [1.0, float("nan"), 3.0], "(missing or infinite)"),
        ("sequence-classify", (np.zeros((4, 3)), [0, 1]), "X has 4 examples but y has 2 labels"),
        ("parity", [1, 2], "reads its data from files only"),
    ]
    for task, data, message in cases:
        with pytest.raises(UserError) as err:
            rnnkit.train(task, data=data, out=out, progress=False)
        assert message in str(err.value) and "\n" not in str(err.value)
        assert not out.exists()
    with pytest.raises(UserError, match=r"train\(max_steps=\.\.\.\) must be >= 1, got 0"):
        rnnkit.train("parity", max_steps=0, out=out)
    with pytest.raises(UserError, match="overrides\\['model.hidden'\\] = -3"):
        rnnkit.train("parity", overrides={"model.hidden": -3}, out=out)
    with pytest.raises(UserError, match=r"train\(callbacks\[0\]=\.\.\.\) must be callable, got int"):
        rnnkit.train("parity", callbacks=[1], out=out)


def test_recipes_check_and_help():
    names = [r["name"] for r in rnnkit.recipes()]
    assert "ptb-small" in names and "sms-spam" in names
    checked = rnnkit.check("sms-spam", overrides={"model.hidden": 650})
    assert checked["ok"] and checked["config"]["model"]["hidden"] == 650
    code = (
        "import sys, rnnkit; assert 'torch' not in sys.modules; help(rnnkit.train); "
        "import rnnkit.train.loop; assert callable(rnnkit.train) and callable(rnnkit.tune); help(rnnkit.Run)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PAGER="cat")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for phrase in (
        "Train a recipe",
        "Args:",
        "overrides:",
        "callbacks:",
        "Example::",
        "class Run",
        "def evaluate" if "def evaluate" in text else "evaluate(self",
    ):
        assert phrase in text, phrase
    assert (REPO / "src" / "rnnkit" / "py.typed").is_file()


def test_progress_bar_choice(monkeypatch):
    from rnnkit.train import progress

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    assert progress.bar_kind(None) == "notebook" and progress.bar_kind(False) == "none"
    monkeypatch.setattr(progress, "in_notebook", lambda: False)
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False, raising=False)
    assert progress.bar_kind(None) == "none" and progress.bar_kind(True) == "terminal"


def test_early_stop_a_task_chooses_from_its_data_stops_the_run(tmp_path):
    """text-classify chooses train.early_stop in prepare(), after the trainer exists: the trainer must use it."""
    rng = np.random.default_rng(0)
    words = ["red", "green", "blue", "cat", "dog", "sun", "rain", "tree"]
    texts = [" ".join(rng.choice(words, size=6)) for _ in range(40)]
    labels = [str(x) for x in rng.integers(0, 2, size=40)]  # labels unrelated to the texts: nothing to learn
    run = rnnkit.train(
        "text-classify",
        data=list(zip(texts, labels)),
        out=tmp_path / "tc",
        overrides={"train.tensorboard": False},
        progress=False,
    )
    chosen = run.config.train
    assert chosen.early_stop == 5 and chosen.max_epochs == 30
    assert run.summary["stopped"] == "early_stop" and run.summary["epoch"] < chosen.max_epochs
