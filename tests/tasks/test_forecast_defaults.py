"""The forecast task's defaults on a series of the user's own: what is chosen from the data (printed once, kept in
config.toml), the ES + LSTM hybrid, the statistical baselines fitted on the same history, the forecaster chosen on
validation, the forecast as one DataFrame, and bad series as one-line errors naming the file."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from conftest import run_cli, train_losses
from rnnkit.cli import main
from rnnkit.config import load_toml

AIRLINE = "timeseries/airline-passengers.csv"


def cli(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, data_dir):
    """`rnnkit train forecast` with nothing but the file and the horizon, as a newcomer types it."""
    out = tmp_path_factory.mktemp("defaults") / "air"
    proc = run_cli(
        "train",
        "forecast",
        "--set",
        f"data.path={data_dir / AIRLINE}",
        "--set",
        "data.horizon=12",
        "--out",
        str(out),
        "--set",
        "train.tensorboard=false",
        "--set",
        "train.max_epochs=8",
    )
    return out, proc


def test_choices_from_the_data_are_printed_once_and_recorded(default_run):
    out, proc = default_run
    lines = [line for line in proc.stderr.splitlines() if "chosen from the data" in line]
    assert len(lines) == 1, proc.stderr
    assert "data.season=12 (monthly time index" in lines[0] and "optim.name=adamw" in lines[0]
    config = load_toml(out / "config.toml")
    chosen = json.loads((out / "run.json").read_text())["chosen"]
    assert config["data"]["season"] == 12 and config["model"]["arch"] == "hybrid"
    assert config["data"]["transform"] == "log"  # 104..622 passengers: relative changes
    assert config["train"]["max_epochs"] == 8  # set by the user: kept, and not among the choices
    assert "train.max_epochs" not in chosen
    for key, record in chosen.items():
        section, name = key.split(".")
        assert config[section][name] == record["value"] and record["why"], key


def test_the_hybrid_learns_from_where_the_smoothing_leaves_off(default_run):
    out, _ = default_run
    losses = train_losses(out)
    steps = sorted(losses)
    assert min(losses[s] for s in steps[1:]) < losses[steps[0]]


def test_holdout_reports_the_forecast_the_model_and_every_baseline_on_the_same_history(default_run, data_dir, capsys):
    out, proc = default_run
    y = np.loadtxt(data_dir / AIRLINE, delimiter=",", skiprows=1, usecols=1)
    assert cli("forecast", out, "--csv", data_dir / AIRLINE, "--horizon", "12", "--holdout", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    m = result["metrics"]
    assert set(m["baselines"]) == {"naive", "seasonal_naive", "drift", "mean", "ets", "damped", "theta", "ar"}
    assert m["forecaster"] == result["forecaster"] == "ensemble"
    assert isinstance(m["model"]["rmse"], float) and isinstance(m["ensemble"]["rmse"], float)
    # the ensemble: the two of the model and the fitted models (ETS, damped, Theta, AR) with the lowest validation
    # backtest RMSE, weighted by inverse MSE over its origins; the naive forecasts are reported, never pooled
    summary = json.loads((out / "summary.json").read_text())
    pool = summary["valid_best"]["pool"]
    assert len(pool) == 2 and math.isclose(sum(pool.values()), 1.0)
    valid = {
        "model": summary["valid_best"]["rmse"],
        **{k: v["rmse"] for k, v in summary["valid_best"]["baselines"].items()},
    }
    valid.pop("mean")
    pooled = {k: v for k, v in valid.items() if k in ("model", "ets", "damped", "theta", "ar")}
    assert sorted(pool) == sorted(sorted(pooled, key=pooled.__getitem__)[:2])
    inv = {k: valid[k] ** -2 for k in pool}
    for k in pool:
        assert math.isclose(pool[k], inv[k] / sum(inv.values()), rel_tol=1e-6)
    # the line training ends with: there exactly when the model lost to the best baseline on the backtest
    lost = valid["model"] > min(v for k, v in valid.items() if k != "model")
    assert ("note" in summary) == lost and (("note: the model's validation RMSE" in proc.stdout) == lost)
    forecast = np.array([r["forecast"] for r in result["rows"]])
    truth = y[-12:]
    assert math.isclose(m["rmse"], float(np.sqrt(np.mean((forecast - truth) ** 2))), rel_tol=1e-9)
    assert m["rmse"] < m["baselines"]["naive"]["rmse"]  # a seasonal series: the last value repeated is far off
    # the baselines are chosen and fitted on the 132 months before the hold-out (as statsmodels' own fits:
    # tests/models/test_statistical.py)
    from rnnkit.models.statistical import AR, ETS

    history = y[:-12]
    rmse = lambda f: float(np.sqrt(np.mean((np.asarray(f) - truth) ** 2)))  # noqa: E731
    assert math.isclose(m["baselines"]["ets"]["rmse"], rmse(ETS.fit(history, 12).forecast(history, 12)), rel_tol=1e-9)
    assert math.isclose(m["baselines"]["ar"]["rmse"], rmse(AR.fit(history, 12).forecast(history, 12)), rel_tol=1e-9)
    # any forecaster on demand; a forced baseline gives that baseline's forecast
    args = ["forecast", out, "--csv", data_dir / AIRLINE, "--horizon", "12", "--holdout", "--json"]
    assert cli(*args, "--forecaster", "ets") == 0
    forced = json.loads(capsys.readouterr().out)
    assert forced["forecaster"] == "ets"
    assert math.isclose(forced["metrics"]["rmse"], m["baselines"]["ets"]["rmse"], rel_tol=1e-9)


def test_an_untrained_hybrid_is_its_exponential_smoothing(data_dir):
    from rnnkit.runs.setup import resolve_recipe
    from rnnkit.tasks import get_task

    config = resolve_recipe("forecast", {"data.path": [str(data_dir / AIRLINE)], "data.horizon": 6})
    task = get_task("forecast")(config, None, torch.device("cpu"))
    task.prepare()
    model = task.build_model()
    mean, _, _, y, _ = task._split_forecast(model, "valid")
    x, base = task._frames["valid"]
    np.testing.assert_array_equal(mean, base)
    # the base is the smoothing's forecast from each origin, filtered with the training split's parameters
    es = task.es[0]
    origin = int(task.origins["valid"][3])
    np.testing.assert_allclose(base[3, :, 0], es.forecast(task.z[:origin, 0], 6), rtol=1e-10)


def test_run_forecast_is_one_dataframe_for_arrays_and_frames(default_run, data_dir):
    import pandas as pd

    import rnnkit

    out, _ = default_run
    run = rnnkit.load(out)
    raw = pd.read_csv(data_dir / AIRLINE, index_col="Month", parse_dates=True)
    from_frame = run.forecast(raw, horizon=3)
    from_array = run.forecast(raw["Passengers"].to_numpy(), horizon=3)
    assert list(from_frame.columns) == list(from_array.columns) == ["time", "column", "forecast", "lower", "upper"]
    assert [str(t.date()) for t in from_frame["time"]] == ["1961-01-01", "1961-02-01", "1961-03-01"]
    np.testing.assert_allclose(from_frame["forecast"], from_array["forecast"])
    assert from_frame.attrs["forecaster"] == "ensemble"
    assert (from_frame["lower"] <= from_frame["forecast"]).all() and (from_frame["lower"] >= 0).all()


def test_bad_series_name_the_file_and_what_to_change(tmp_path, capsys):
    short = tmp_path / "short.csv"
    short.write_text("month,sales\n" + "".join(f"2020-{m:02d},{m}\n" for m in range(1, 13)))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("month,sales\n2020-01,1\n2020-02,2,7\n")
    cases = [
        (short, 12, "short.csv: data.horizon=12 is longer than the series (12 points)"),
        (short, 5, "short.csv: series too short: 12 points"),
        (ragged, 1, "ragged.csv: line 3: 3 fields, expected 2"),
    ]
    for path, horizon, needle in cases:
        capsys.readouterr()
        code = cli(
            "train",
            "forecast",
            "--set",
            f"data.path={path}",
            "--set",
            f"data.horizon={horizon}",
            "--out",
            tmp_path / f"r{horizon}",
        )
        err = capsys.readouterr().err
        assert code == 2 and needle in err and "Traceback" not in err, err
        assert len([line for line in err.splitlines() if line.strip()]) == 1, err


def test_quantile_forecasts_learn_by_pinball_and_stay_non_negative(tmp_path, data_dir):
    """A count series with zeros (the sunspots' minima), the hybrid trained with quantile outputs: bounds on
    either side of the mean, the loss falls, and nothing forecast for a series that is never negative is."""
    import pandas as pd

    import rnnkit
    from rnnkit.metrics.forecasting import interval_pinball
    from rnnkit.models.forecaster import pinball, quantile_loss

    frame = pd.read_csv(data_dir / "timeseries/monthly-sunspots.csv", index_col="Month", parse_dates=True)
    spots = frame["Sunspots"].iloc[:480]
    assert (spots == 0).any()
    run = rnnkit.train(
        "forecast",
        data=spots,
        out=tmp_path / "q",
        max_steps=40,
        overrides={
            "data.horizon": 6,
            "model.distribution": "quantile",
            "train.tensorboard": False,
            "train.log_every": 5,
        },
        progress=False,
    )
    # the training loss over every training window: the untrained hybrid (its smoothing, bounds 0.69 away) against
    # the kept model
    from rnnkit.runs import load_run

    loaded = load_run(run.path)
    task = loaded.task
    task.prepare()
    with torch.no_grad():
        before = float(task._loss(task.build_model(), task._train_windows))
        after = float(task._loss(loaded.model, task._train_windows))
    assert after < before, (before, after)
    test = run.summary["test"]
    assert 0 < test["coverage"] <= 1 and test["pinball"] > 0
    fc = run.forecast(spots, horizon=12, forecaster="model")
    assert (fc["lower"] <= fc["forecast"]).all() and (fc["forecast"] <= fc["upper"]).all()
    assert (fc[["forecast", "lower", "upper"]] >= 0).all().all()
    # the loss and the metric are the same pinball
    y, lo, hi, mu = (torch.randn(5, 3, 1, dtype=torch.float64) for _ in range(4))
    bounds = torch.stack([lo - 1, hi + 1], -1)[..., 0, :]
    want = float(torch.mean(pinball(bounds[..., 0], y[..., 0], 0.05) + pinball(bounds[..., 1], y[..., 0], 0.95)))
    got = interval_pinball(y[..., 0].numpy(), bounds[..., 0].numpy(), bounds[..., 1].numpy(), 0.9)
    assert math.isclose(got, want / 2, rel_tol=1e-12)
    extra = float(quantile_loss(mu[..., 0], bounds, y[..., 0], 0.9)) - float(torch.mean((mu - y) ** 2))
    assert math.isclose(extra, want, rel_tol=1e-9)


def test_in_memory_series_errors_name_the_column_and_the_time(tmp_path):
    import pandas as pd

    import rnnkit
    from rnnkit.errors import UserError

    index = pd.date_range("2020-01-01", periods=40, freq="MS")
    sales = pd.Series(np.arange(40.0), index=index, name="sales")
    gap = sales.copy()
    gap.iloc[5] = np.nan
    for data, needle in [
        (gap, "data: column 'sales' at 2020-06: nan (missing or infinite)"),
        (sales.iloc[::-1], "data: the index is not in time order"),
    ]:
        with pytest.raises(UserError, match=re.escape(needle)):
            rnnkit.train("forecast", data=data, out=tmp_path / "r", progress=False)
        assert not (tmp_path / "r" / "config.toml").exists()


def test_many_series_in_one_file_train_one_shared_model(tmp_path, data_dir, capsys):
    """The long layout (series, time, value): one column per series, one model with the same weights for all;
    series of different spans (west: 1951-01 to 1954-12) are aligned at their ends, each with its own times."""
    y = np.loadtxt(data_dir / AIRLINE, delimiter=",", skiprows=1, usecols=1)[:96]
    months = [f"{1949 + i // 12}-{i % 12 + 1:02d}" for i in range(len(y))]
    series = {"north": y, "south": 0.5 * y + 40, "east": y[::-1].copy(), "west": 0.8 * y[24:72]}
    spans = {"west": months[24:72]}
    panel = tmp_path / "panel.csv"
    panel.write_text(
        "store,month,sales\n"
        + "".join(f"{sid},{m},{v}\n" for sid, vals in series.items() for m, v in zip(spans.get(sid, months), vals))
    )
    run = tmp_path / "panel"
    args = ["--set", f"data.path={panel}", "--set", "data.series_column=store", "--set", "data.time_column=month"]
    assert cli("train", "forecast", *args, "--set", "data.horizon=6", "--max-steps", "20", "--out", run, "-q") == 0
    config = load_toml(run / "config.toml")
    assert config["model"]["channels"] == "shared"
    from rnnkit.runs import load_run

    model = load_run(run).model
    assert model.rnn.spec.input_size == 1 and model.k == 4  # one series at a time, four of them
    capsys.readouterr()
    assert cli("forecast", run, "--csv", panel, "--horizon", "6", "--holdout", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["columns"] == ["north", "south", "east", "west"]
    assert [r["truth"] for r in out["rows"] if r["column"] == "south"] == list(series["south"][-6:])
    west = [r for r in out["rows"] if r["column"] == "west"]
    assert [r["truth"] for r in west] == list(series["west"][-6:]) and west[0]["time"] == "1954-07"
    assert all(math.isfinite(r["forecast"]) for r in out["rows"])
    assert math.isfinite(out["metrics"]["rmse"]) and math.isfinite(out["metrics"]["baselines"]["drift"]["rmse"])
    import rnnkit

    ahead = rnnkit.load(run).forecast(horizon=2)  # from the run's own series: each from its own end
    assert list(ahead[ahead["column"] == "west"]["time"]) == ["1955-01", "1955-02"]
    assert list(ahead[ahead["column"] == "north"]["time"]) == ["1957-01", "1957-02"]
    # a series with a gap is refused, naming it and the time
    lines = panel.read_text().splitlines()
    gap = tmp_path / "gap.csv"
    gap.write_text("\n".join(line for line in lines if line != f"east,1950-03,{series['east'][14]}") + "\n")
    code = cli("train", "forecast", "--set", f"data.path={gap}", *args[2:], "--out", tmp_path / "g")
    err = capsys.readouterr().err
    assert code == 2 and "gap.csv: series 'east' has no row at time '1950-03' (after '1950-02')" in err, err
    assert "where series 'north' has one" in err


def test_covariates_past_only_and_known_future(tmp_path, capsys):
    """Sales driven by a price known ahead and a temperature known only up to each origin: the model reads both
    (the price over the horizon too), AR regresses on the price (ARX), and a forecast without the price for its
    steps is refused, naming the column."""
    rng = np.random.default_rng(0)
    n, H = 120, 6
    price, temp = rng.normal(10, 2, n + H), rng.normal(0, 1, n + H)
    sales = 60 - 3 * price[:n] + 0.8 * np.concatenate([[0], temp[: n - 1]]) + rng.normal(0, 0.3, n)
    path = tmp_path / "sales.csv"
    rows = [
        f"{2000 + t // 12}-{t % 12 + 1:02d},{sales[t] if t < n else ''},{price[t]},{temp[t] if t < n else ''}"
        for t in range(n + H)
    ]
    path.write_text("month,sales,price,temp\n" + "\n".join(rows) + "\n")
    run = tmp_path / "run"
    covariates = ["--set", "data.future_covariates=price", "--set", "data.past_covariates=temp"]
    args = ["--set", f"data.path={path}", "--set", f"data.horizon={H}", *covariates]
    assert cli("train", "forecast", *args, "--max-steps", "30", "--out", run, "-q") == 0
    from rnnkit.runs import load_run

    loaded = load_run(run)
    model, task = loaded.model, loaded.task
    assert model.rnn.spec.input_size == 3 and model.future == 1  # sales + temp + price; the price over the horizon
    assert model.head.in_features == model.spec.output_size + H
    assert task.stats["ar"][0].label.startswith("ARX") and len(task.stats["ar"][0].beta) == 1
    assert abs(task.stats["ar"][0].beta[0] + 3) < 0.5  # the price's effect, found by the regression
    task.prepare()
    with torch.no_grad():
        before = float(task._loss(task.build_model(), task._train_windows))
        after = float(task._loss(model, task._train_windows))
    assert after < before
    capsys.readouterr()
    assert cli("forecast", run, "--csv", path, "--horizon", str(H), "--holdout", "--json") == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["baselines"]["ar"]["rmse"] < 0.5 * m["baselines"]["naive"]["rmse"]  # the price explains the sales
    assert cli("forecast", run, "--csv", path, "--horizon", str(H), "--json") == 0  # the price rows are there
    out = json.loads(capsys.readouterr().out)
    assert len(out["rows"]) == H and out["after"] == f"{2000 + (n - 1) // 12}-{(n - 1) % 12 + 1:02d}"
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join(path.read_text().splitlines()[: n + 1 + 2]) + "\n")  # the price of 2 steps only
    code = cli("forecast", run, "--csv", cut, "--horizon", str(H))
    err = capsys.readouterr().err
    assert code == 2 and "cut.csv: the known-future covariate(s) 'price'" in err and "2 given" in err, err
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text().replace(f",{price[3]},", ",,", 1))
    code = cli("train", "forecast", *args[:1], f"data.path={bad}", *args[2:], "--out", tmp_path / "b")
    err = capsys.readouterr().err
    assert code == 2 and "bad.csv: line 5, column 'price': covariate 'missing' is not a number" in err, err
