"""Readers for classification data: labelled text lines, UCI HAR archives, digit CSVs; stratified splits."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from rnnkit.data.digits import read_digits_csv
from rnnkit.data.har import CHANNELS, read_har
from rnnkit.data.labelled_text import read_labelled, tokenize
from rnnkit.data.splits import stratified_split
from rnnkit.errors import UserError


def test_label_first_and_label_last(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("ham\tOk lar... Joking wif u oni...\n\nspam\tFree\tentry!\n", encoding="utf-8")
    ex = read_labelled(p, 0)
    assert [(e.label, e.text) for e in ex] == [("ham", "Ok lar... Joking wif u oni..."), ("spam", "Free\tentry!")]
    q = tmp_path / "b.txt"
    q.write_text('A "quoted"\tsentence with a tab.  \t0\nGood case, Excellent value.\t1\n', encoding="utf-8")
    ex = read_labelled(q, 1)  # split on the last tab: the text keeps its own tabs and quotes
    assert [(e.label, e.text) for e in ex] == [
        ("0", 'A "quoted"\tsentence with a tab.'),
        ("1", "Good case, Excellent value."),
    ]
    assert ex[1].source.endswith("b.txt:2")


def test_reader_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("ham\thi\nno tab here\n")
    with pytest.raises(UserError, match=r"bad.txt: line 2: no tab; expected label<TAB>text"):
        read_labelled(p, 0)
    p.write_text("ham\thi\n\tno label\n")
    with pytest.raises(UserError, match=r"bad.txt: line 2: empty label"):
        read_labelled(p, 0)
    p.write_text("ham\t  \n")
    with pytest.raises(UserError, match=r"bad.txt: line 1: empty text"):
        read_labelled(p, 0)
    p.write_text("".join(f"ham\tmessage number {i}\n" for i in range(30)))
    with pytest.raises(UserError, match=r"line 1: the label column \(data.label_column=1\) holds 30 distinct"):
        read_labelled(p, 1)
    with pytest.raises(UserError, match="data.label_column: expected 0"):
        read_labelled(p, 2)


def test_tokenize():
    assert tokenize("Free entry! Call 08452810075 now.") == ["free", "entry", "!", "call", "08452810075", "now", "."]
    assert tokenize("Call 0845 or 0909", digits=True) == ["call", "0000", "or", "0000"]
    assert tokenize("Don't", lowercase=False) == ["Don't"]


def _har_archive(path, n_train=6, n_test=4, bad_line=False):
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", n_train), ("test", n_test)):
            rng = np.random.default_rng(0)
            for c in CHANNELS:
                rows = [" ".join(f"{v:.4g}" for v in rng.normal(size=128)) for _ in range(n)]
                if bad_line and split == "train" and c == "body_gyro_y":
                    rows[2] = " ".join(["1"] * 127)
                data = ("\n".join(rows) + "\n").encode()
                info = tarfile.TarInfo(f"{split}/{c}_{split}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            data = "".join(f"{i % 6 + 1}\n" for i in range(n)).encode()
            info = tarfile.TarInfo(f"{split}/y_{split}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_har_reader(tmp_path):
    path = tmp_path / "har.tar.gz"
    _har_archive(path)
    data = read_har(path)
    x, y = data["train"]
    assert x.shape == (6, 128, 9) and x.dtype == np.float32 and y.tolist() == [0, 1, 2, 3, 4, 5]
    assert data["test"][0].shape == (4, 128, 9)
    _har_archive(path, bad_line=True)
    with pytest.raises(UserError, match=r"body_gyro_y_train.txt: line 3: 127 values, expected 128"):
        read_har(path, ("train",))
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(UserError, match="not a readable tar archive"):
        read_har(tmp_path / "junk.tar.gz")


def test_digits_csv(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(",".join(["0"] * 64 + ["7"]) + "\n" + ",".join(["16"] * 64 + ["3"]) + "\n")
    x, y = read_digits_csv(p)
    assert x.shape == (2, 8, 8) and y.tolist() == [7, 3]
    p.write_text(",".join(["0"] * 63 + ["7"]) + "\n")
    with pytest.raises(UserError, match="d.csv: line 1: 64 fields"):
        read_digits_csv(p)


def test_stratified_split_is_pure_disjoint_and_groups_duplicates():
    rng = np.random.default_rng(0)
    y = (rng.random(900) < 0.15).astype(int)[np.arange(1000) % 900]
    groups = [f"text{i % 900}" for i in range(1000)]  # 100 duplicates, labelled alike
    a = stratified_split(y, {"valid": 0.1, "test": 0.1}, seed=3, groups=groups)
    b = stratified_split(y, {"valid": 0.1, "test": 0.1}, seed=3, groups=groups)
    assert all((a[s] == b[s]).all() for s in a)
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(1000))
    where = {}
    for s, idx in a.items():
        for i in idx:
            assert where.setdefault(groups[i], s) == s  # a text and its duplicates share one split
    assert y[a["test"]].mean() == pytest.approx(y.mean(), abs=0.02)
    c = stratified_split(y, {"valid": 0.1, "test": 0.1}, seed=4, groups=groups)
    assert set(c["test"]) != set(a["test"])
    tiny = stratified_split([0, 0, 0, 1], {"test": 0.4}, seed=0)  # a lone class stays in train
    assert 3 in tiny["train"]
