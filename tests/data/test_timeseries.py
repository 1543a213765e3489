"""Time-series CSV reading, chronological splits and windows, the scaler (train only) and future time labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data.timeseries import (
    Scaler,
    apply_transform,
    future_times,
    gather_windows,
    read_series_csv,
    split_bounds,
    synthetic_series,
    window_origins,
)
from rnnkit.errors import UserError
from rnnkit.tasks import get_task
from rnnkit.tasks.recipes import load_recipe


def _csv(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reads_the_real_airline_csv(data_dir):
    s = read_series_csv(data_dir / "timeseries" / "airline-passengers.csv")
    assert len(s) == 144 and s.columns == ["Passengers"] and s.time_col == "Month"
    assert s.times[0] == "1949-01" and s.times[-1] == "1960-12"
    assert s.values[0, 0] == 112 and s.values[-1, 0] == 432 and s.values.shape == (144, 1)


def test_column_choice(tmp_path):
    p = _csv(tmp_path, "id,when,a,b,label\n1,2020-01,1.5,10,x\n2,2020-02,2.5,20,y\n3,2020-03,3.5,30,z\n")
    s = read_series_csv(p, time_col="when", target="b, a")
    assert s.columns == ["b", "a"] and s.times == ["2020-01", "2020-02", "2020-03"]
    assert s.values[:, 0].tolist() == [10, 20, 30] and s.values[:, 1].tolist() == [1.5, 2.5, 3.5]
    none = read_series_csv(p, time_col="none", target="a")
    assert none.times == ["0", "1", "2"] and none.time_col == ""
    with pytest.raises(UserError, match=r"data.value_columns='c' is not a column \(columns: id, when, a, b, label\)"):
        read_series_csv(p, target="c")
    with pytest.raises(UserError, match=r"s.csv: line 2, column 'label': not a number: 'x'"):
        read_series_csv(p, time_col="when")  # every other column, the text one included


@pytest.mark.parametrize(
    "body, needle",
    [
        ("t,v\n1,1\n2,\n3,3\n", "s.csv: line 3, column 'v': missing value (empty)"),
        ("t,v\n1,1\n2,2\n3,NA\n", "s.csv: line 4, column 'v': missing value (NA)"),
        ("t,v\n1,1\n2,abc\n", "s.csv: line 3, column 'v': not a number: 'abc'"),
        ("t,v\n1,1\n2,2,2\n", "s.csv: line 3: 3 fields, expected 2"),
        ("t,v\n", "s.csv: no data rows after the header"),
        ("t,v,v\n1,2,3\n", "duplicate column name(s) 'v'"),
    ],
)
def test_bad_csvs_name_file_line_and_column(tmp_path, body, needle):
    with pytest.raises(UserError) as e:
        read_series_csv(_csv(tmp_path, body))
    assert needle in str(e.value)


def test_log_transform_rejects_non_positive_values_by_line(tmp_path):
    s = read_series_csv(_csv(tmp_path, "t,v\n1,3\n2,0\n"))
    with pytest.raises(UserError, match=r"s.csv: line 3, column 'v': value 0 is not positive.*transform=none"):
        apply_transform(s.values, "log", s)


@pytest.mark.parametrize(
    "n, lookback, horizon, vf, tf",
    [(144, 24, 12, 0.15, 0.2), (500, 7, 30, 0.1, 0.1), (60, 1, 1, 0.2, 0.2), (300, 64, 20, 0.15, 0.15)],
)
def test_windows_never_cross_a_split_boundary(n, lookback, horizon, vf, tf):
    bounds = split_bounds(n, vf, tf)
    assert bounds["train"][0] == 0 and bounds["train"][1] == bounds["valid"][0]
    assert bounds["valid"][1] == bounds["test"][0] and bounds["test"][1] == n
    for split, (lo, hi) in bounds.items():
        origins = window_origins((lo, hi), lookback, horizon)
        assert origins.size > 0
        # targets entirely inside the split; inputs only from the past (possibly the previous split)
        assert origins.min() >= lo and origins.max() + horizon <= hi and origins.min() - lookback >= 0
        if split != "train":  # rolling origin: every origin from the split's start to its last whole horizon
            assert origins[0] == max(lo, lookback) and origins[-1] == hi - horizon
    values = np.arange(n, dtype=float)[:, None]
    x, y = gather_windows(values, window_origins(bounds["valid"], lookback, horizon), lookback, horizon)
    assert x.shape[1:] == (lookback, 1) and y.shape[1:] == (horizon, 1)
    assert np.all(x[:, -1, 0] + 1 == y[:, 0, 0])  # targets start right after the inputs


def test_task_windows_stay_in_their_split(data_dir):
    config = load_recipe("airline")
    task = get_task("forecast")(config, data_dir, torch.device("cpu"))
    task.prepare()
    H = config.data.horizon
    for split, (lo, hi) in task.bounds.items():
        o = task.origins[split]
        assert o.min() >= lo and o.max() + H <= hi
    assert task.bounds["test"][1] == 144 and task._train_windows.shape[1:] == (config.data.lookback + H, 1)


def test_scaler_is_fitted_on_the_training_split_only(tmp_path, data_dir):
    src = (data_dir / "timeseries" / "airline-passengers.csv").read_text().splitlines()
    header, rows = src[0], src[1:]

    def artifacts_for(rows: list[str]) -> dict:
        path = tmp_path / "a.csv"
        path.write_text("\n".join([header, *rows]) + "\n")
        config = load_recipe("airline", {"data.path": str(path)})
        task = get_task("forecast")(config, data_dir, torch.device("cpu"))
        task.prepare()
        return task.artifacts()

    base = artifacts_for(rows)
    a = split_bounds(144, 0.15, 0.2)["train"][1]  # the recipe's fractions
    changed_test = [r.split(",")[0] + ",9999" if i >= a else r for i, r in enumerate(rows)]  # valid + test
    assert artifacts_for(changed_test)["scaler"] == base["scaler"]
    assert artifacts_for(changed_test)["mase_scale"] == base["mase_scale"]
    changed_train = [r.split(",")[0] + ",9999" if i == a - 1 else r for i, r in enumerate(rows)]
    assert artifacts_for(changed_train)["scaler"] != base["scaler"]


def test_scaler_round_trip():
    v = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    s = Scaler.fit(v)
    assert np.allclose(s.transform(v)[:, 0], [-1.2247449, 0, 1.2247449]) and np.allclose(s.transform(v)[:, 1], 0)
    assert np.allclose(Scaler.from_dict(s.to_dict()).inverse(s.transform(v)), v)


def test_future_times_continue_the_spacing():
    assert future_times(["1960-11", "1960-12"], 3) == ["1961-01", "1961-02", "1961-03"]
    assert future_times(["1990-12-30", "1990-12-31"], 2) == ["1991-01-01", "1991-01-02"]
    assert future_times(["2014-12-31 22:00:00", "2014-12-31 23:00:00"], 1) == ["2015-01-01 00:00:00"]
    assert future_times(["8", "10"], 2) == ["12", "14"]
    assert future_times(["99.8", "99.9"], 2) == ["100.0", "100.1"]
    assert future_times(["a", "b"], 2) == ["b+1", "b+2"]


def test_synthetic_series_is_the_textbook_formula():
    s = synthetic_series("sine", length=50, step=0.1)
    t = np.arange(50) * 0.1
    assert np.allclose(s.values[:, 0], t * np.sin(t) / 3 + 2 * np.sin(5 * t))
    assert s.times[:3] == ["0.0", "0.1", "0.2"]
    noisy = synthetic_series("sine", length=50, step=0.1, noise=0.5, seed=3)
    assert 0.2 < np.std(noisy.values - s.values) < 1.0
    assert np.array_equal(noisy.values, synthetic_series("sine", length=50, step=0.1, noise=0.5, seed=3).values)


@pytest.mark.parametrize(
    "body, needle",
    [
        (
            "m,v\n1949-01,1\n1949-03,3\n1949-02,2\n",
            "s.csv: line 4, column 'm': time '1949-02' comes before '1949-03' on line 3; "
            "the rows must be in time order "
            "(or set data.sort = true to sort them)",
        ),
        (
            "m,v\n1949-01,1\n1949-02,2\n1949-02,3\n",
            "s.csv: line 4, column 'm': duplicate time '1949-02' (also on line 3)",
        ),
        (
            "m,v\n1949-11,1\n1949-12,2\n1949-13,3\n",
            "s.csv: line 4, column 'm': time '1949-13' is not a valid year-month",
        ),
        (
            "d,v\n1981-02-27,1\n1981-02-28,2\n1981-02-29,3\n",
            "line 4, column 'd': time '1981-02-29' is not a valid date",
        ),
        (
            "d,v\n1981-01-01,1\n1981-01-02,2\nJan 3,3\n",
            "line 4, column 'd': time 'Jan 3' is not a date like '1981-01-01'",
        ),
        ("t,v\n0.5,1\n1.5,2\n1.0,3\n", "line 4, column 't': time '1.0' comes before '1.5' on line 3"),
        ("q,v\nQ1,1\nQ2,2\nQ1,3\n", "line 4, column 'q': duplicate time 'Q1' (also on line 2)"),  # free-form labels
    ],
)
def test_times_out_of_order_repeated_or_impossible_name_the_line(tmp_path, body, needle):
    with pytest.raises(UserError) as e:
        read_series_csv(_csv(tmp_path, body))
    assert needle in str(e.value)


def test_sort_puts_rows_in_time_order_but_never_hides_a_repeat(tmp_path):
    p = _csv(tmp_path, "m,v\n1949-03,3\n1949-01,1\n1949-02,2\n")
    s = read_series_csv(p, sort=True)
    assert s.times == ["1949-01", "1949-02", "1949-03"] and s.values[:, 0].tolist() == [1, 2, 3]
    newest_first = _csv(tmp_path, "d,v\n2020-01-03 00:00,3\n2020-01-02 12:00,2\n2020-01-01 00:00,1\n", "n.csv")
    assert read_series_csv(newest_first, sort=True).values[:, 0].tolist() == [1, 2, 3]
    with pytest.raises(UserError, match="duplicate time '1949-01'"):
        read_series_csv(_csv(tmp_path, "m,v\n1949-02,2\n1949-01,1\n1949-01,1\n", "d.csv"), sort=True)
    free = _csv(tmp_path, "q,v\nQ2,2\nQ1,1\n", "q.csv")  # labels of no known kind keep the file's order
    assert read_series_csv(free, sort=True).times == ["Q2", "Q1"]


def test_every_real_series_is_in_order(data_dir):
    from conftest import mirror

    names = sorted(p.stem for p in (data_dir / "timeseries").glob("*.csv"))
    if mirror():  # the full data set; a bare clone's samples hold some of these series
        assert {
            "airline-passengers",
            "daily-min-temperatures",
            "daily-total-female-births",
            "monthly-shampoo-sales",
            "monthly-sunspots",
        } <= set(names)
    assert names
    for name in names:
        s = read_series_csv(data_dir / "timeseries" / f"{name}.csv")  # no error: ordered, no repeats, valid times
        assert len(s) > 30, name


def test_covariate_columns_and_the_rows_of_the_known_future(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("t,y,promo,temp\n1,5,0,20\n2,6,1,21\n3,,1,\n4,,0,\n")
    s = read_series_csv(p, past="temp", future="promo")
    assert s.columns == ["y"] and s.exog_columns == ["temp", "promo"] and s.past_count == 1
    assert s.values[:, 0].tolist() == [5, 6] and s.future_times == ["3", "4"]
    assert s.exog[:2].tolist() == [[20, 0], [21, 1]] and s.exog[2:, 1].tolist() == [1, 0]
    assert np.isnan(s.exog[2:, 0]).all()  # a past-only covariate is unknown in the future
    p.write_text("t,y,promo,temp\n1,5,0,20\n2,,1,\n3,7,1,22\n")
    with pytest.raises(UserError, match=r"c.csv: line 4: a value after the rows without one \(from line 3\)"):
        read_series_csv(p, past="temp", future="promo")
    with pytest.raises(UserError, match="column 'y' is both a covariate and data.value_columns"):
        read_series_csv(p, target="y", future="y")
