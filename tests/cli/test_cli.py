"""User mistakes get one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import pytest

from conftest import TINY_LM, run_cli


def test_help_and_recipes():
    assert "train" in run_cli("--help").stdout
    for verb in ("train", "eval", "generate", "recipes", "diagnose"):
        assert run_cli(verb, "--help").returncode == 0
    listing = run_cli("recipes").stdout
    assert "ptb-small" in listing and "parity" in listing


def _assert_user_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in proc.stderr, (n, proc.stderr)


@pytest.mark.parametrize(
    "args, needles",
    [
        (["train", "no-such-recipe"], ["unknown recipe 'no-such-recipe'"]),
        (["train", "ptb-small", "--set", "model.hiden=3"], ["unknown field 'hiden'"]),
        (["train", "ptb-small", "--set", "optim.lr=fast"], ["optim.lr must be a number"]),
        (["train", "ptb-small", "--set", "data.train=missing.txt"], ["data.train: file not found: missing.txt"]),
        (["eval", "/nonexistent/run"], ["run directory not found"]),
        (["train", "--resume", "/nonexistent/run"], ["run directory not found"]),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, args, needles):
    if args[0] == "train" and "--resume" not in args:  # a run directory of its own, never ./runs in the clone
        args = [*args, "--out", str(tmp_path / "run")]
    proc = run_cli(*args, check=False)
    _assert_user_error(proc, *needles)


def test_bad_corpora_are_reported_with_line_numbers(tmp_path, data_dir):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("good line\nna\xefve\n".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    common = ["train", "ptb-small", "--data-dir", str(data_dir), "--out", str(tmp_path / "r"), *TINY_LM]
    _assert_user_error(run_cli(*common, "--set", f"data.train={latin}", check=False), "line 2", "not valid UTF-8")
    _assert_user_error(run_cli(*common, "--set", f"data.train={empty}", check=False), "file is empty")
    _assert_user_error(run_cli(*common, "--set", f"data.train={binary}", check=False), "line 3", "binary data")


def test_diagnose_gradients_writes_table_and_plot(tmp_path):
    png = tmp_path / "g.png"
    out = run_cli("diagnose", "gradients", "--steps", "40", "--hidden", "16", "--plot", str(png)).stdout
    assert "lstm" in out and "gru" in out and png.stat().st_size > 1000


@pytest.mark.parametrize(
    "preset, import_torch_first, expected",
    [(None, False, ("1000", "1")), (("50", "0"), False, ("50", "0")), (None, True, (None, None))],
)
def test_cli_sets_the_process_defaults_before_torch_loads_unless_told_otherwise(preset, import_torch_first, expected):
    """The command line sets GOMP_SPINCOUNT=1000 (waiting OpenMP threads spin briefly, then sleep) and
    THP_MEM_ALLOC_ENABLE=1 (large CPU tensors on huge pages) before torch reads them; a value the user set stays,
    and a process that imported torch first (main() called from Python) is left as it is, where they could not
    act."""
    import os
    import subprocess
    import sys

    names = ("GOMP_SPINCOUNT", "THP_MEM_ALLOC_ENABLE")
    code = (
        "import os, sys\n" + ("import torch\n" if import_torch_first else "") + "from rnnkit.cli import main\n"
        "assert main(['recipes']) == 0\n"
        "assert 'torch' in sys.modules\n"
        f"print(' '.join(str(os.environ.get(n)) for n in {names!r}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in names}
    if preset is not None:
        env.update(zip(names, preset))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == " ".join(str(v) for v in expected)
