"""Reading labelled series as people keep them (long CSV, wide CSV/TSV, npz), and every mistake as one line
naming the file, the line and what to change."""

import gzip

import numpy as np
import pytest

from rnnkit.data.series_sets import check_layout, check_lengths, read_series, series_inputs
from rnnkit.errors import UserError


def _long_csv(path, series, labels, shuffle=True):
    rows = [
        f"{i},{lab},{t}," + ",".join(repr(float(v)) for v in step)
        for i, (x, lab) in enumerate(zip(series, labels))
        for t, step in enumerate(x)
    ]
    if shuffle:
        rows = [rows[j] for j in np.random.default_rng(0).permutation(len(rows))]
    ch = ",".join(f"c{j}" for j in range(series[0].shape[1]))
    path.write_text(f"id,label,step,{ch}\n" + "\n".join(rows) + "\n")


def test_long_csv_round_trip_unequal_lengths_any_row_order(tmp_path):
    rng = np.random.default_rng(1)
    series = [rng.normal(size=(n, 3)) for n in (5, 9, 2, 7)]
    labels = ["a", "b", "a", "10"]
    _long_csv(tmp_path / "s.csv", series, labels)
    got = read_series(tmp_path / "s.csv")
    order = [int(i) for i in got.ids]  # series come in order of first appearance
    assert got.labels == [labels[i] for i in order] and got.channels == ["c0", "c1", "c2"]
    for a, i in zip(got.x, order):
        np.testing.assert_array_equal(a, series[i])  # repr() round-trips floats exactly
    assert list(got.lengths) == [len(series[i]) for i in order]
    with gzip.open(tmp_path / "s.csv.gz", "wt") as f:  # gzipped CSV: the same
        f.write((tmp_path / "s.csv").read_text())
    assert read_series(tmp_path / "s.csv.gz").labels == got.labels


def test_wide_csv_and_tsv_with_and_without_header(tmp_path):
    (tmp_path / "w.csv").write_text("class,t0,t1,t2\nup,1,2,3\ndown,4,5,\n")  # a shorter series: empty tail
    got = read_series(tmp_path / "w.csv")
    assert got.labels == ["up", "down"] and [a.ravel().tolist() for a in got.x] == [[1, 2, 3], [4, 5]]
    (tmp_path / "u.tsv").write_text("1\t0.5\t0.25\n2\t-1\t3e2\n")  # the UCR archive's layout: no header
    got = read_series(tmp_path / "u.tsv")
    assert got.labels == ["1", "2"] and got.x[1].ravel().tolist() == [-1.0, 300.0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("id,label,step,c0,c1\n0,a,0,1,2\n0,a,1,3\n", "s.csv: line 3: 4 fields, expected 5 (id, label, step, c0, c1)"),
        ("id,label,step,v\n0,a,0,1\n1,,0,2\n", "s.csv: line 3, column label: the label is empty"),
        ("id,label,step,v\n0,a,0,1\n0,a,1,x1\n", "s.csv: line 3, column v: not a number: 'x1'"),
        ("id,label,step,v\n0,a,0,1\n0,a,1,nan\n", "s.csv: line 3, column v: nan (missing or infinite)"),
        ("id,label,step,v\n0,a,0,1\n0,b,1,2\n", "s.csv: line 3: series '0' has label 'b' here but 'a' at line 2"),
        ("id,label,step,v\n0,a,0,1\n0,a,0,2\n", "s.csv: lines 2 and 3: series '0' has step 0 twice"),
        ("label,t0,t1\nup,1,2\n,3,4\n", "s.csv: line 3: the label is empty (column 1)"),
        ("label,t0,t1,t2\nup,1,,3\n", "s.csv: line 2, column 3: empty value"),
    ],
)
def test_mistakes_name_the_file_line_and_column(tmp_path, text, message):
    (tmp_path / "s.csv").write_text(text)
    with pytest.raises(UserError) as e:
        read_series(tmp_path / "s.csv", shown="s.csv")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_series_too_short_is_named(tmp_path):
    (tmp_path / "s.csv").write_text("id,label,step,v\n0,a,0,1\n0,a,1,2\nx,b,0,5\n")
    s = read_series(tmp_path / "s.csv", shown="s.csv")
    with pytest.raises(UserError, match=r"s.csv: series 'x' \(line 4\): 1 step\(s\); a series needs at least 2"):
        check_lengths(s)


def test_npz_layouts(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 20, 3))
    np.savez(tmp_path / "ok.npz", x=x, y=np.array(list("ababab")))
    np.testing.assert_array_equal(read_series(tmp_path / "ok.npz").x[0], x[0])
    np.savez(tmp_path / "cf.npz", x=x.transpose(0, 2, 1), y=np.array(list("ababab")))  # (examples, channels, steps)
    with pytest.raises(UserError, match=r"looks like \(examples, channels, steps\).*data.layout = \"channels_first\""):
        read_series(tmp_path / "cf.npz")
    np.testing.assert_array_equal(read_series(tmp_path / "cf.npz", layout="channels_first").x[0], x[0])
    assert not check_layout((5, 8, 8), "auto", "X") and check_layout((5, 3, 40), "channels_first", "X")


def test_inputs_users_hand_to_classify():
    import pandas as pd

    one, xs = series_inputs(np.zeros((7, 2)), 2)
    assert one and xs[0].shape == (7, 2)
    one, xs = series_inputs([np.zeros((3, 2)), np.ones((5, 2))], 2)  # unequal lengths
    assert not one and [a.shape for a in xs] == [(3, 2), (5, 2)]
    long = pd.DataFrame({"id": [1, 1, 1, 2, 2], "step": [2, 0, 1, 0, 1], "v": [3.0, 1.0, 2.0, 4.0, 5.0]})
    _, xs = series_inputs(long, 1)
    assert [a.ravel().tolist() for a in xs] == [[1, 2, 3], [4, 5]]
    with pytest.raises(UserError, match=r"inputs\[1\]: a series of 3 channel\(s\); the run was trained on 2"):
        series_inputs([np.zeros((3, 2)), np.ones((5, 3))], 2)
    wide = pd.DataFrame({"label": ["a", "b"], "t0": [1.0, 2.0], "t1": [3.0, np.nan]})
    _, xs = series_inputs(wide, 1)
    assert [a.ravel().tolist() for a in xs] == [[1, 3], [2]]
