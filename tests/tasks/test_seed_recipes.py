"""The seed-system recipes (imdb, mnist-rows, har on the full UCI layout) end to end on small fixtures written here
in the real file formats: an aclImdb-shaped tar.gz, MNIST IDX files, a UCI-HAR-shaped zip. The loading code that
meets the real downloads is the code tested."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURE_DATA, read_metrics, run_cli
from rnnkit.data.mnist import read_idx
from rnnkit.errors import UserError

QUICK = ["--set", "train.log_every=1", "--set", "train.tensorboard=false", "--json"]
POS = ["great", "wonderful", "loved", "excellent", "best", "fun", "moving", "superb"]
NEG = ["awful", "boring", "worst", "hated", "terrible", "waste", "dull", "poor"]
FILL = ["the", "film", "movie", "plot", "actor", "scene", "story", "it", "was", "and", "a", "of"]


def _review(rng: np.random.Generator, words: list[str]) -> str:
    toks = list(rng.choice(FILL, 30)) + list(rng.choice(words, 6))
    rng.shuffle(toks)
    return " ".join(toks[:18]) + ".<br /><br />" + " ".join(toks[18:]) + "."


def _acl_tar(path: Path, n_train: int = 40, n_test: int = 24) -> None:
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, text: str) -> None:
            data = text.encode()
            info = tarfile.TarInfo(f"aclImdb/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for split, n in (("train", n_train), ("test", n_test)):
            for i in range(n):
                label = "pos" if i % 2 == 0 else "neg"
                words = POS if label == "pos" else NEG
                add(f"{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt", _review(rng, words))
        for i in range(4):
            add(f"train/unsup/{i}_0.txt", _review(rng, FILL))  # unlabelled: ignored
        add("README", "aclImdb-shaped fixture\n")


def _digits28() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits scaled to 28x28 grey levels 0-255 (each pixel x3, 2 pixels of border)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.kron(d.images, np.ones((3, 3)))  # (n, 24, 24), 0-16
    x = np.pad(x, ((0, 0), (2, 2), (2, 2))) * (255 / 16)
    return x.round().astype(np.uint8), d.target.astype(np.uint8)


def _idx(path: Path, a: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}i", *a.shape)
    path.write_bytes(gzip.compress(header + a.astype(np.uint8).tobytes()))


def _har_zip(path: Path) -> tuple[int, int]:
    """The har-subset fixture re-laid as UCI distributes it: "UCI HAR Dataset/{split}/Inertial Signals/..."."""
    counts = {}
    with tarfile.open(FIXTURE_DATA / "har" / "har-subset.tar.gz") as tar, zipfile.ZipFile(path, "w") as z:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            split, name = m.name.split("/")[-2:]
            data = tar.extractfile(m).read()
            inner = "" if name.startswith("y_") else "Inertial Signals/"
            z.writestr(f"UCI HAR Dataset/{split}/{inner}{name}", data)
            z.writestr(f"__MACOSX/UCI HAR Dataset/{split}/{inner}._{name}", b"\x00\x05\x16\x07junk")
            if name.startswith("y_"):
                counts[split] = data.count(b"\n")
        z.writestr("UCI HAR Dataset/README.txt", "fixture\n")
    return counts["train"], counts["test"]


def _train(data_dir: Path, out: Path, recipe: str, *overrides: str) -> dict:
    proc = run_cli("train", recipe, "--data-dir", str(data_dir), "--out", str(out), *QUICK, *overrides)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _loss_falls(run: Path) -> None:
    losses = [r["loss"] for r in read_metrics(run) if "split" not in r]
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses


def test_imdb_reads_the_aclimdb_tar_keeps_its_split_and_truncates_at_the_front(tmp_path):
    (tmp_path / "imdb").mkdir()
    _acl_tar(tmp_path / "imdb" / "aclImdb_v1.tar.gz")
    run = tmp_path / "run"
    summary = _train(
        tmp_path,
        run,
        "imdb",
        "--max-steps",
        "40",
        "--set",
        "train.batch_size=8",
        "--set",
        "model.hidden=16",
        "--set",
        "model.embedding=16",
        "--set",
        "optim.lr=0.01",
        "--set",
        "data.valid_fraction=0.2",
        "--set",
        "data.truncate=20",
    )
    assert summary["test"]["examples"] == 24  # aclImdb's own test split, untouched
    _loss_falls(run)
    from rnnkit.runs import load_run

    loaded = load_run(run, data_dir=tmp_path)
    sizes = loaded.checkpoint["artifacts"]["split_sizes"]
    assert sizes["train"] + sizes["valid"] == 40 and sizes["test"] == 24
    assert loaded.task.vocab is not None and "br" not in loaded.task.vocab  # HTML line breaks are not words
    assert loaded.task._cut(list("abcdefghijklmnopqrstuvwxyz")) == list("ghijklmnopqrstuvwxyz")  # keeps the last 20


def test_mnist_rows_on_idx_files_and_on_the_csv_sample(tmp_path):
    x, y = _digits28()
    (tmp_path / "mnist").mkdir()
    for name, a in (
        ("train-images-idx3-ubyte.gz", x[:300]),
        ("train-labels-idx1-ubyte.gz", y[:300]),
        ("t10k-images-idx3-ubyte.gz", x[300:400]),
        ("t10k-labels-idx1-ubyte.gz", y[300:400]),
    ):
        _idx(tmp_path / "mnist" / name, a)
    assert read_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").shape == (100, 28, 28)
    run = tmp_path / "run"
    summary = _train(
        tmp_path,
        run,
        "mnist-rows",
        "--max-steps",
        "40",
        "--set",
        "train.batch_size=32",
        "--set",
        "model.hidden=32",
        "--set",
        "optim.lr=0.003",
    )
    assert summary["test"]["examples"] == 100  # the t10k files
    _loss_falls(run)
    csv = tmp_path / "mnist" / "sample.csv.gz"
    rows = np.concatenate([x[:200].reshape(200, -1), y[:200, None]], axis=1)
    csv.write_bytes(gzip.compress("\n".join(",".join(map(str, r)) for r in rows).encode()))
    summary = _train(
        tmp_path,
        tmp_path / "run-csv",
        "mnist-rows",
        "--max-steps",
        "5",
        "--set",
        "data.path=mnist/sample.csv.gz",
        "--set",
        "model.hidden=16",
    )
    assert summary["test"]["examples"] == 40  # a fifth held out


def test_har_on_the_uci_zip_layout(tmp_path):
    (tmp_path / "har").mkdir()
    n_train, n_test = _har_zip(tmp_path / "har" / "UCI HAR Dataset.zip")
    run = tmp_path / "run"
    summary = _train(
        tmp_path, run, "har", "--max-steps", "30", "--set", "train.batch_size=32", "--set", "optim.lr=0.01"
    )
    assert summary["test"]["examples"] == n_test and n_train == 120
    _loss_falls(run)


def test_bad_real_format_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3i", 5, 28, 28) + b"\x00" * 100)
    with pytest.raises(UserError, match=r"3920 bytes|100 bytes of data"):
        read_idx(bad)
    (tmp_path / "imdb").mkdir()
    (tmp_path / "imdb" / "aclImdb_v1.tar.gz").write_bytes(b"not a tar")
    proc = run_cli("train", "imdb", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "aclImdb_v1.tar.gz: not a readable aclImdb archive" in proc.stderr
