"""Predictions and evaluation on new data: ``Run.evaluate(data=...)`` scores new labelled data with the run's own
preprocessing and the metrics of its test split (``rnnkit eval RUN --data FILE`` alike), ``Run.predict(inputs)``
answers one prediction of the task's one type per input. Checked against what the run already says: its own test
data given as new data scores exactly as ``evaluate("test")``, and a classifier's predictions given back as labels
score an accuracy of 1."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit.cli import main
from rnnkit.data.parallel import read_pairs
from rnnkit.errors import UserError, UserTypeError, UserValueError


@pytest.fixture(scope="module")
def runs(tiny_run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: rnnkit.load(tiny_run(k), device="cpu") for k in ("lm", "text-classify", "sequence-classify")}


def test_an_lm_scores_its_own_test_file_as_new_data_exactly(runs):
    run = runs["lm"]
    test_file = Path(run.info["data"]["data.test"]["path"])
    assert run.evaluate(data=test_file) == run.evaluate("test")
    text = test_file.read_text()[:3000] if test_file.suffix != ".gz" else "the company said it would buy the shares"
    assert set(run.evaluate(data=text)) == {"loss", "ppl", "tokens"}


def test_a_translator_scores_its_own_test_pairs_as_new_data_exactly(tiny_run):
    run = rnnkit.load(tiny_run("translate"), device="cpu")
    d = run.config.data
    path = Path(run.info["data"]["data.path"]["path"])
    lines = set(run._load().task.split_lines("test"))
    pairs = [(p.source, p.target) for p in read_pairs(path, d.source_column, d.target_column) if p.line in lines]
    assert run.evaluate(data=pairs) == run.evaluate("test")
    assert run.predict([p[0] for p in pairs[:3]], max_new_tokens=4) == run.translate(
        [p[0] for p in pairs[:3]], max_new_tokens=4
    )


def test_a_classifier_agrees_with_itself(runs, tmp_path, capsys):
    """Its predictions, given back as labels, score accuracy 1 - through the API and `rnnkit eval --data`."""
    run = runs["text-classify"]
    texts = ["WINNER!! claim your prize now", "see you at lunch", "call now to win cash", "ok thanks"]
    preds = run.predict(texts)
    assert len(preds) == len(texts) and all(set(p) >= {"label", "probability", "probabilities"} for p in preds)
    labelled = [(t, p["label"]) for t, p in zip(texts, preds)]
    metrics = run.evaluate(data=labelled)
    assert metrics["accuracy"] == 1.0 and metrics["examples"] == 4 and set(metrics) == set(run.evaluate("test"))
    tsv = tmp_path / "new.tsv"
    tsv.write_text("".join(f"{lab}\t{t}\n" for t, lab in labelled))
    assert run.evaluate(data=tsv) == metrics
    capsys.readouterr()
    assert main(["eval", str(run.path), "--data", str(tsv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(metrics))
    assert run.predict("one text") == [run.classify("one text")]  # always a list, one per input


def test_a_sequence_classifier_agrees_with_itself(runs, tmp_path):
    run = runs["sequence-classify"]
    steps, channels = run.describe()["steps"], run.describe()["channels"]
    x = np.random.default_rng(0).random((6, steps, channels))
    labels = [p["label"] for p in run.predict(x)]
    assert run.evaluate(data=(x, labels))["accuracy"] == 1.0
    npz = tmp_path / "new.npz"
    np.savez(npz, x=x, y=np.array(labels))
    assert run.evaluate(data=npz)["accuracy"] == 1.0


def test_new_data_mistakes_are_one_line(runs, tiny_run, tmp_path):
    run = runs["text-classify"]
    with pytest.raises(UserValueError, match=r"evaluate\(split=\.\.\.\) goes with the run's own data"):
        run.evaluate("test", data=[("a", "ham")])
    with pytest.raises(UserValueError, match=r"evaluate\(data=\.\.\.\) file not found"):
        run.evaluate(data=tmp_path / "missing.tsv")
    with pytest.raises(UserError, match=r"label\(s\) \['eggs'\] are not among the run's classes"):
        run.evaluate(data=[("hello", "eggs")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecaster = rnnkit.load(tiny_run("forecast"), device="cpu")
    history = np.linspace(100.0, 200.0, 40)
    (fc,) = forecaster.predict([history], horizon=3)
    assert list(fc.columns) == ["time", "column", "forecast", "lower", "upper"] and len(fc) == 3  # Run.forecast's
    assert fc.equals(forecaster.forecast(history, horizon=3))
    with pytest.raises(UserError, match="inputs"):
        forecaster.predict(history, horizon=3)  # a history, not a list of them


def test_a_forecaster_scores_a_new_series_from_every_origin(tiny_run, tmp_path, capsys):
    """A new series is scored as the run's forecasts from each of its origins: one window of it is exactly the
    error of ``forecast`` from its lookback; the whole series (a CSV laid out like the run's, a list, a pandas
    Series) gives one report of the test split's keys, and `rnnkit eval --data` prints the same."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = rnnkit.load(tiny_run("forecast"), device="cpu")
    path = Path(run.info["data"]["data.path"]["path"])
    values = pd.read_csv(path).iloc[:, 1].to_numpy(dtype=float)
    d = run.config.data
    L, H = d.lookback, d.horizon
    test = run.evaluate("test")
    for start in (0, len(values) - L - H):
        window = values[start : start + L + H]
        report = run.evaluate(data=window.tolist())
        f = run.forecast(window[:L].tolist(), horizon=H, forecaster="model")["forecast"].to_numpy()
        assert report["windows"] == 1
        assert report["rmse"] == pytest.approx(float(np.sqrt(np.mean((f - window[L:]) ** 2))), rel=1e-9)
        assert report["mae"] == pytest.approx(float(np.mean(np.abs(f - window[L:]))), rel=1e-9)
    whole = run.evaluate(data=path)
    assert set(whole) == set(test) and whole["windows"] == (len(values) - L - H) // d.stride + 1
    assert run.evaluate(data=values.tolist()) == whole == run.evaluate(data=pd.Series(values))
    capsys.readouterr()
    assert main(["eval", str(run.path), "--data", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(whole))
    assert run.evaluate("test") == test  # the run's own splits are untouched
    with pytest.raises(UserError, match=rf"data: {L + H - 1} points hold no window to score.*needs >= {L + H}"):
        run.evaluate(data=values[: L + H - 1].tolist())
    with pytest.raises(UserError, match="2 value column"):
        run.evaluate(data=np.stack([values, values], 1))
    with pytest.raises(UserError, match="data: expected numbers .*got str"):
        run.evaluate(data="1, 2, 3")


def test_predict_refuses_an_option_of_another_method_naming_predict(runs):
    with pytest.raises(UserTypeError, match=r"predict\(beam=\.\.\.\) is not an option of classify \(it takes "):
        runs["text-classify"].predict(["hello"], beam=2)
    with pytest.raises(UserTypeError, match=r"predict\(horizon=\.\.\.\) is not an option of generate"):
        runs["lm"].predict(["the"], horizon=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an old name is still an option (with its warning)
        assert len(runs["lm"].predict(["the"], words=1)) == 1
