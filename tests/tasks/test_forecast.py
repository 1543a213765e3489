"""Forecasting on real series: every recipe trains, eval reports the model beside the baselines, `rnnkit forecast`
prints/plots the next steps, and bad series are one-line user errors.

A few commands go through the real console entry point (`run_cli`, a subprocess); the rest call the same
`rnnkit.cli.main` in-process so that the file stays well under a minute on one thread.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli, train_losses
from rnnkit.cli import main
from rnnkit.models.forecaster import Forecaster, forecast_loss

TINY = [
    "--set",
    "model.hidden=16",
    "--set",
    "train.log_every=1",
    "--set",
    "train.tensorboard=false",
    "--set",
    "train.eval_test=false",
]
AIRLINE = "timeseries/airline-passengers.csv"


def cli(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("forecast")
    out = {r: root / r for r in ("airline", "temperatures", "sunspots", "sine-series")}
    run_cli("train", "airline", "--data-dir", str(data_dir), "--out", str(out["airline"]), "--max-steps", "30", *TINY)
    for recipe in ("temperatures", "sunspots", "sine-series"):
        assert cli("train", recipe, "--data-dir", data_dir, "--out", out[recipe], "--max-steps", "30", "-q", *TINY) == 0
    return out


def _assert_user_error(code: int, stderr: str, *needles: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for n in needles:
        assert n in stderr, (n, stderr)


@pytest.mark.parametrize("recipe", ["airline", "temperatures", "sunspots", "sine-series"])
def test_each_recipe_trains_and_the_loss_falls(runs, recipe):
    losses = train_losses(runs[recipe])
    first, last = np.mean([losses[s] for s in range(1, 6)]), np.mean([losses[s] for s in range(26, 31)])
    assert last < 0.9 * first, (first, last)
    assert (runs[recipe] / "checkpoints" / "best.pt").is_file()


def test_eval_json_reports_model_and_baselines(runs, data_dir):
    out = json.loads(run_cli("eval", str(runs["airline"]), "--split", "test", "--json").stdout)
    for key in ("loss", "rmse", "mae", "mase", "mape", "smape", "coverage"):
        assert isinstance(out[key], float), key
    for name in ("naive", "seasonal_naive", "mean"):
        assert {"rmse", "mae", "mase", "mape", "smape"} <= set(out["baselines"][name])
    # recompute the seasonal-naive baseline by hand: airline test = the last 29 months, origins 115..132
    y = np.loadtxt(data_dir / AIRLINE, delimiter=",", skiprows=1, usecols=1)
    origins = np.arange(115, 133)
    assert out["windows"] == origins.size and out["horizon"] == 12
    truth = np.stack([y[o : o + 12] for o in origins])
    snaive = np.stack([y[o - 12 : o] for o in origins])
    naive = np.repeat(y[origins - 1][:, None], 12, 1)
    scale = np.mean(np.abs(y[12:93] - y[:81]))  # in-sample seasonal naive on the 93 training months
    sn = out["baselines"]["seasonal_naive"]
    assert math.isclose(sn["rmse"], float(np.sqrt(np.mean((truth - snaive) ** 2))), rel_tol=1e-9)
    assert math.isclose(sn["mase"], float(np.mean(np.abs(truth - snaive)) / scale), rel_tol=1e-9)
    assert math.isclose(out["baselines"]["naive"]["mae"], float(np.mean(np.abs(truth - naive))), rel_tol=1e-9)


def test_forecast_json_and_plot(runs, data_dir, tmp_path):
    png = tmp_path / "f.png"
    proc = run_cli(
        "forecast",
        str(runs["airline"]),
        "--csv",
        str(data_dir / AIRLINE),
        "--horizon",
        "12",
        "--json",
        "--plot",
        str(png),
    )
    out = json.loads(proc.stdout)
    rows = out["rows"]
    assert [r["time"] for r in rows] == [f"1961-{m:02d}" for m in range(1, 13)]
    assert all(r["lower"] <= r["forecast"] <= r["upper"] and r["forecast"] > 0 for r in rows)
    assert png.stat().st_size > 5000 and out["plot"] == str(png)


def test_forecast_table_holdout_and_longer_horizons(runs, data_dir, tmp_path, capsys):
    y = np.loadtxt(data_dir / AIRLINE, delimiter=",", skiprows=1, usecols=1)
    assert cli("forecast", runs["airline"], "--holdout", "--json", "--plot", tmp_path / "h.png") == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["truth"] for r in out["rows"]] == y[-12:].tolist()
    assert out["rows"][0]["time"] == "1960-01"
    assert math.isclose(
        out["metrics"]["baselines"]["seasonal_naive"]["rmse"], float(np.sqrt(np.mean((y[-12:] - y[-24:-12]) ** 2)))
    )
    # no --csv: the run's own series from its artifacts; beyond the trained horizon: blocks fed back
    assert cli("forecast", runs["airline"], "--horizon", "30") == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("forecast of the 30 steps after 1960-12") and text[1].split()[:2] == ["time", "forecast"]
    assert len(text) == 32 and text[-1].startswith("1963-06")
    assert cli("forecast", runs["sine-series"], "--json") == 0  # synthetic: numeric time continues
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["time"] for r in rows[:2]] == ["100.0", "100.1"] and len(rows) == 20


@pytest.mark.parametrize("strategy, architecture", [("recursive", "rnn"), ("direct", "seq2seq")])
def test_gaussian_strategies_give_intervals_around_the_mean(tmp_path, data_dir, capsys, strategy, architecture):
    run = tmp_path / "g"
    assert (
        cli(
            "train",
            "sine-series",
            "--out",
            run,
            "--max-steps",
            "20",
            "-q",
            *TINY,
            "--set",
            "data.synthetic_length=400",
            "--set",
            f"model.strategy={strategy}",
            "--set",
            f"model.arch={architecture}",
            "--set",
            "model.distribution=gaussian",
            "--set",
            "model.samples=50",
        )
        == 0
    )
    losses = train_losses(run)
    assert losses[20] < losses[1]
    capsys.readouterr()
    assert cli("forecast", run, "--json", "--horizon", "25") == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == 25 and all(r["lower"] < r["forecast"] < r["upper"] for r in rows)
    assert cli("eval", run, "--split", "test", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["coverage"] <= 1 and math.isfinite(out["loss"]) and out["windows"] == 41  # 60 test points


def test_model_shapes_and_gaussian_loss():
    torch.manual_seed(0)
    x = torch.randn(10, 3, 2)  # (lookback, batch, k)
    for arch in ("rnn", "seq2seq"):
        for gaussian in (False, True):
            m = Forecaster(2, 5, 8, strategy="direct", arch=arch, gaussian=gaussian)
            mean, logvar = m(x)
            assert mean.shape == (3, 5, 2) and (logvar is None) == (not gaussian)
            assert logvar is None or logvar.shape == (3, 5, 2)
    rec = Forecaster(2, 5, 8, strategy="recursive", gaussian=True).eval()
    one_step, _ = rec(x)
    assert one_step.shape == (10, 3, 2)
    ahead, _ = rec.unroll(x, 4)
    assert ahead.shape == (3, 4, 2) and torch.allclose(ahead[:, 0], one_step[-1], atol=1e-6)
    paths, _ = rec.unroll(x, 4, repeats=7, generator=torch.Generator().manual_seed(0), sample=True)
    assert paths.shape == (21, 4, 2) and paths[:7].std(0).min() > 0
    mean, target, logvar = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    expected = F.gaussian_nll_loss(mean, target, logvar.exp(), full=True)
    assert torch.allclose(forecast_loss(mean, logvar, target), expected, atol=1e-6)
    assert torch.allclose(forecast_loss(mean, None, target), F.mse_loss(mean, target))


def test_bad_series_are_one_line_user_errors(tmp_path, data_dir, runs, capsys):
    missing = tmp_path / "missing.csv"
    missing.write_text('"Month","Passengers"\n"1949-01",112\n"1949-02",118\n"1949-03",\n"1949-04",129\n')
    proc = run_cli("train", "airline", "--out", str(tmp_path / "r0"), "--set", f"data.path={missing}", check=False)
    _assert_user_error(proc.returncode, proc.stderr, "missing.csv: line 4, column 'Passengers': missing value")
    text = tmp_path / "text.csv"
    text.write_text("t,v\n" + "".join(f"{i},{'high' if i == 7 else i}\n" for i in range(200)))
    proc = run_cli("forecast", str(runs["airline"]), "--csv", str(text), check=False)
    _assert_user_error(proc.returncode, proc.stderr, "text.csv: line 9, column 'v': not a number: 'high'")
    short = tmp_path / "short.csv"
    short.write_text("t,v\n" + "".join(f"{i},{i}\n" for i in range(30)))  # (a zero, for the log-transform case)
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("\n".join(short.read_text().splitlines()[:21]))
    cases = [
        (["train", "airline", "--out", tmp_path / "r1", "--set", f"data.path={text}"], ["line 9", "not a number"]),
        (
            ["train", "airline", "--out", tmp_path / "r2", "--set", f"data.path={short}"],
            ["short.csv: series too short: 30 points"],
        ),
        (
            ["train", "airline", "--data-dir", data_dir, "--out", tmp_path / "r3", "--set", "data.horizon=200"],
            ["data.horizon=200 is longer than the series (144 points)"],
        ),
        (
            ["forecast", runs["airline"], "--csv", data_dir / AIRLINE, "--horizon", "145"],
            ["--horizon 145 is longer than the series (144 points)"],
        ),
        (["forecast", runs["airline"], "--csv", tiny], ["tiny.csv: series too short: 20 points", "lookback=24"]),
        (
            [
                "train",
                "airline",
                "--out",
                tmp_path / "r4",
                "--set",
                f"data.path={short}",
                "--set",
                "data.lookback=2",
                "--set",
                "data.horizon=2",
                "--set",
                "data.season=2",
            ],
            ["short.csv: line 2, column 'v': value 0 is not"],
        ),
    ]
    for args, needles in cases:
        capsys.readouterr()
        code = cli(*args)
        _assert_user_error(code, capsys.readouterr().err, *needles)


def test_several_value_columns_are_forecast_jointly(tmp_path, data_dir, capsys):
    y = np.loadtxt(data_dir / AIRLINE, delimiter=",", skiprows=1, usecols=1)
    csv = tmp_path / "two.csv"
    csv.write_text(
        "n,month,a,b,note\n"
        + "".join(f"{i},{1949 + i // 12}-{i % 12 + 1:02d},{v},{v / 2 + 10},x\n" for i, v in enumerate(y))
    )
    run = tmp_path / "two"
    assert (
        cli(
            "train",
            "airline",
            "--out",
            run,
            "--max-steps",
            "5",
            "-q",
            *TINY,
            "--set",
            f"data.path={csv}",
            "--set",
            "data.time_column=month",
            "--set",
            "data.value_columns=a,b",
        )
        == 0
    )
    capsys.readouterr()
    assert cli("forecast", run, "--csv", csv, "--time-col", "month", "--target", "b,a", "--horizon", "3", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    # the same names in another order are matched by name
    assert out["columns"] == ["a", "b"] and [(r["time"], r["column"]) for r in out["rows"][:3]] == [
        ("1961-01", "a"),
        ("1961-01", "b"),
        ("1961-02", "a"),
    ]
    code = cli("forecast", run, "--csv", csv, "--time-col", "month", "--target", "a")
    _assert_user_error(code, capsys.readouterr().err, "1 value column(s), but the model forecasts 2 (a, b)")


def test_rows_out_of_time_order_are_refused_unless_data_sort(tmp_path, data_dir, runs, capsys):
    lines = (data_dir / AIRLINE).read_text().splitlines()
    lines[5], lines[6] = lines[6], lines[5]  # 1949-05 and 1949-06 swapped: lines 6 and 7 of the file
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    code = cli("train", "airline", "--out", tmp_path / "r", "--set", f"data.path={swapped}", *TINY)
    _assert_user_error(
        code,
        capsys.readouterr().err,
        "swapped.csv: line 7, column 'Month': time '1949-05' comes before '1949-06' on line 6",
        "data.sort = true",
    )
    assert not (tmp_path / "r").exists()
    assert cli("forecast", runs["airline"], "--csv", swapped) == 2
    assert "swapped.csv: line 7" in capsys.readouterr().err
    out = tmp_path / "sorted"
    assert (
        cli(
            "train",
            "airline",
            "--out",
            out,
            "--set",
            f"data.path={swapped}",
            "--set",
            "data.sort=true",
            "--max-steps",
            "3",
            "-q",
            *TINY,
        )
        == 0
    )
    from rnnkit.runs import load_run

    saved = load_run(out).checkpoint["artifacts"]
    assert saved["history_times"][-1] == "1960-12" and sorted(saved["history_times"]) == saved["history_times"]


def test_plot_into_a_missing_directory_is_refused_before_any_work(runs, tmp_path, capsys):
    capsys.readouterr()
    target = tmp_path / "no-such-dir" / "f.png"
    assert cli("forecast", runs["airline"], "--plot", target) == 2
    err = capsys.readouterr().err
    _assert_user_error(2, err, f"--plot {target}: directory {target.parent} does not exist")
    assert not target.parent.exists()
    assert cli("forecast", runs["airline"], "--plot", tmp_path) == 2  # a directory, not a file name
    assert "is a directory" in capsys.readouterr().err
