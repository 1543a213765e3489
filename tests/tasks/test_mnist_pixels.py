"""Sequential and permuted pixel MNIST (recipes mnist-pixels, mnist-pixels-permuted): 784 steps of one pixel, a
fixed permutation drawn from data.permute_seed, saved with the run and applied at prediction. On MNIST-shaped IDX
files written here (scikit-learn's digits scaled to 28 x 28), and on full MNIST when the mirror has it."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from conftest import read_metrics
from rnnkit.runs import load_run

QUICK = {"train.log_every": 1, "train.tensorboard": False}
SMALL = {"model.hidden": 16, "train.batch_size": 32, "optim.lr": 0.01}


def _idx(path: Path, a: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}i", *a.shape)
    path.write_bytes(gzip.compress(header + a.astype(np.uint8).tobytes()))


@pytest.fixture(scope="module")
def digits_idx(tmp_path_factory) -> Path:
    """MNIST's four IDX files holding scikit-learn's 8x8 digits scaled to 28x28 (300 train, 100 test)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.pad(np.kron(d.images, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2))) * (255 / 16)
    x, y = x.round().astype(np.uint8), d.target.astype(np.uint8)
    root = tmp_path_factory.mktemp("data")
    (root / "mnist").mkdir()
    for name, a in (
        ("train-images-idx3-ubyte.gz", x[:300]),
        ("train-labels-idx1-ubyte.gz", y[:300]),
        ("t10k-images-idx3-ubyte.gz", x[300:400]),
        ("t10k-labels-idx1-ubyte.gz", y[300:400]),
    ):
        _idx(root / "mnist" / name, a)
    return root


def _train(data_dir: Path | None, out: Path, recipe: str, steps: int, seed: int = 1, **overrides: object) -> dict:
    run = rnnkit.train(
        recipe,
        data_dir=data_dir,
        out=out,
        overrides={**QUICK, **SMALL, **overrides},
        max_steps=steps,
        seed=seed,
        progress=False,
    )
    return run.summary


def _losses(run: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run) if "split" not in r]


def test_mnist_pixels_reads_784_steps_of_one_pixel_and_learns(digits_idx, tmp_path):
    run = tmp_path / "run"
    summary = _train(digits_idx, run, "mnist-pixels", 3)
    assert summary["test"]["examples"] == 100  # MNIST's own test files
    assert all(np.isfinite(_losses(run)))
    # 784 steps of one pixel leave the loss at ln 10 for hundreds of steps (why the task is a benchmark); read
    # 28 pixels a step (data.chunk) the same reader learns within a few dozen
    chunked = tmp_path / "chunked"
    _train(digits_idx, chunked, "mnist-pixels", 40, **{"data.chunk": 28, "train.eval_test": False})
    losses = _losses(chunked)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses
    loaded = load_run(run, data_dir=digits_idx)
    art = loaded.checkpoint["artifacts"]
    assert (art["steps"], art["channels"], art["permutation"]) == (784, 1, None)
    x, lengths = loaded.task.encode_inputs([np.arange(784.0)])
    assert tuple(x.shape) == (784, 1, 1) and lengths is None  # (steps, batch, features): one pixel a step
    expected = (np.arange(784.0) - art["mean"][0]) / art["std"][0]
    np.testing.assert_allclose(x[:, 0, 0].numpy(), expected, rtol=1e-6)


def test_the_permutation_is_seeded_saved_and_applied_at_prediction(digits_idx, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for i, run in enumerate(runs):  # another train.seed: the model differs, the permutation does not
        _train(digits_idx, run, "mnist-pixels-permuted", 2, seed=i + 1)
    perms = [load_run(r, data_dir=digits_idx).checkpoint["artifacts"]["permutation"] for r in runs]
    assert perms[0] == perms[1] == np.random.default_rng(1).permutation(784).tolist()
    assert perms[0] != list(range(784))
    loaded = load_run(runs[0], data_dir=digits_idx)
    art, perm = loaded.checkpoint["artifacts"], np.array(perms[0])
    pixels = np.arange(784.0)  # an input is given in its own order; the run permutes it as in training
    x, _ = loaded.task.encode_inputs([pixels])
    np.testing.assert_allclose(x[:, 0, 0].numpy(), (pixels[perm] - art["mean"][0]) / art["std"][0], rtol=1e-6)
    other = tmp_path / "c"
    _train(digits_idx, other, "mnist-pixels-permuted", 1, **{"data.permute_seed": 7})
    assert load_run(other, data_dir=digits_idx).checkpoint["artifacts"]["permutation"] == (
        np.random.default_rng(7).permutation(784).tolist()
    )


def test_pixels_is_for_images_only(capsys):
    from rnnkit.cli import main

    code = main(["train", "har", "--check", "--set", "data.pixels=true"])
    err = capsys.readouterr().err
    assert code == 2 and "data.pixels" in err and "mnist" in err and len(err.strip().splitlines()) == 1


@pytest.mark.needs_data("mnist")
def test_permuted_pixel_mnist_learns_on_full_mnist(tmp_path):
    run = tmp_path / "run"
    overrides = {"data.valid_fraction": 0.01, "train.eval_test": False, "data.chunk": 28}  # 28 permuted pixels a step
    _train(None, run, "mnist-pixels-permuted", 25, **overrides)
    losses = _losses(run)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses
    assert load_run(run).checkpoint["artifacts"]["permutation"] == np.random.default_rng(1).permutation(784).tolist()


def test_check_counts_the_models_parameters_without_data():
    h = 128  # LSTM 128 over one pixel a step (PyTorch's two bias vectors), then Linear(128 -> 10)
    assert rnnkit.check("mnist-pixels")["parameters"] == 4 * h * (1 + h) + 2 * 4 * h + h * 10 + 10
    assert rnnkit.check("mnist-pixels", overrides={"data.pixels": False})["parameters"] == (
        4 * h * (28 + h) + 2 * 4 * h + h * 10 + 10
    )


@pytest.mark.parametrize("recipe", ["mnist-pixels", "mnist-pixels-permuted"])
def test_every_registered_cell_builds_on_the_pixel_recipes(recipe):
    from rnnkit.cells import registry

    fast = registry.with_backend("fast")
    for cell in registry.names():  # a cell with no fast form only in its scratch form, as it says
        backend = {} if cell in fast else {"model.backend": "scratch"}
        checked = rnnkit.check(recipe, overrides={"model.cell": cell, **backend})
        assert checked["model"] == "SequenceClassifier" and checked["parameters"] > 0, cell
