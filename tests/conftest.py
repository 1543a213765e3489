"""Shared fixtures: the real data sets in ../shared/data, and running the CLI in-process or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("RNNKIT_TEST_DATA", REPO.parent / "shared" / "data"))

# A tiny but real language model: PTB's validation text as training data keeps steps fast.
TINY_LM = ["--set", "model.embedding=32", "--set", "model.hidden=32", "--set", "train.batch_size=8",
           "--set", "data.bptt=10", "--set", "data.train=ptb/ptb.valid.txt", "--set", "train.log_every=1",
           "--set", "train.tensorboard=false"]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (SHARED_DATA / "ptb" / "ptb.train.txt").is_file():
        pytest.fail(f"test data not found at {SHARED_DATA} (set RNNKIT_TEST_DATA)")
    return SHARED_DATA


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess: exit codes and stderr exactly as a user sees them."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"rnnkit {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def train_losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run) if "split" not in r}
