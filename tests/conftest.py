"""Shared fixtures: the real data sets in ../shared/data, and running the CLI in-process or as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
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


def apt_install(*packages: str, timeout: int = 900) -> str:
    """apt-get install Debian ``packages`` for a test's outside program (CI starts from a fresh machine, as root);
    returns why not, or '' on success. An index update is tried only when the first install fails."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"cannot apt-get install {' '.join(packages)} here (not root, or not Debian)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=timeout).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=900)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            return f"apt-get install {' '.join(packages)} failed: {proc.stderr.strip().splitlines()[-1:]}"
    return ""


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


# One tiny run per servable kind, trained in-process once per session (about 10 s for all five on one core):
# the serving and export tests load them. Each recipe is the real one on its real data, shrunk.
_QUICK = ["--set", "train.log_every=1", "--set", "train.tensorboard=false", "--set", "train.eval_test=false", "-q"]
TINY_RUNS: dict[str, list[str]] = {
    "lm": ["ptb-small", "--max-steps", "20", *TINY_LM, "--set", "optim.lr=1.0", "--set", "data.valid=",
           "--set", "data.valid_fraction=0.05"],
    "text-classify": ["sms-spam", "--max-steps", "20", "--set", "model.embedding=16", "--set", "model.hidden=16",
                      "--set", "train.batch_size=32", "--set", "optim.lr=0.01"],
    "sequence-classify": ["digits-rows", "--max-steps", "10", "--set", "model.hidden=16", "--set", "model.layers=1"],
    "forecast": ["airline", "--max-steps", "20", "--set", "model.hidden=16"],
    "translate": ["spa-eng-small", "--max-steps", "20", "--set", "data.max_pairs=2000", "--set", "model.hidden=32",
                  "--set", "model.embedding=16", "--set", "train.batch_size=32",
                  "--set", "data.valid_bleu_sentences=50", "--set", "model.beam=2"],
    "chat": ["chatbot", "--max-steps", "20", "--set", "model.hidden=32", "--set", "model.embedding=16",
             "--set", "model.layers=1", "--set", "train.batch_size=32", "--set", "data.max_length=12",
             "--set", "model.beam=2"],
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, data_dir):
    """``tiny_run(kind)`` -> a trained run directory (kinds: the keys of TINY_RUNS), trained on first use."""
    from rnnkit.cli import main

    made: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in made:
            out = tmp_path_factory.mktemp(f"tiny-{kind}") / "run"
            recipe, *rest = TINY_RUNS[kind]
            assert main(["train", recipe, "--data-dir", str(data_dir), "--out", str(out), *rest, *_QUICK]) == 0
            made[kind] = out
        return made[kind]

    return make
