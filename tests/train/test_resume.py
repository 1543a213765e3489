"""Resume must be exact: the losses after resuming equal an uninterrupted run's, bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch

from conftest import REPO, TINY_LM, run_cli, train_losses

# dropout on so the RNG state matters; carried hidden state so the LM's loop state matters
RESUME_LM = [*TINY_LM, "--set", "model.dropout=0.3", "--set", "train.eval_test=false", "--set", "data.bptt=7"]


def test_resume_after_stop_is_bit_identical(tmp_path, data_dir):
    full, part = tmp_path / "full", tmp_path / "part"
    run_cli("train", "ptb-small", "--data-dir", str(data_dir), "--out", str(full), "--max-steps", "24", *RESUME_LM)
    run_cli("train", "ptb-small", "--data-dir", str(data_dir), "--out", str(part), "--max-steps", "11", *RESUME_LM)
    run_cli("train", "--resume", str(part), "--max-steps", "24")
    a, b = train_losses(full), train_losses(part)
    assert sorted(a) == sorted(b) == list(range(1, 25))
    assert [a[s] for s in range(1, 25)] == [b[s] for s in range(1, 25)]  # exact float equality
    sa = torch.load(full / "checkpoints" / "last.pt", weights_only=True)["model"]
    sb = torch.load(part / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_after_kill_9_is_bit_identical(tmp_path, data_dir):
    """A run killed with SIGKILL mid-epoch, resumed from its last periodic checkpoint, matches a clean run."""
    full, killed = tmp_path / "full", tmp_path / "killed"
    args = ["--data-dir", str(data_dir), *RESUME_LM, "--set", "train.checkpoint_every=5"]
    run_cli("train", "ptb-small", "--out", str(full), "--max-steps", "40", *args)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "train", "ptb-small", "--out", str(killed), "--max-steps", "100000", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            steps = train_losses(killed) if (killed / "metrics.jsonl").is_file() else {}
            if (killed / "checkpoints" / "last.pt").is_file() and max(steps, default=0) >= 17:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    last_ckpt_step = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)["loop"]["step"]
    assert 5 <= last_ckpt_step < 40 and last_ckpt_step % 5 == 0
    run_cli("train", "--resume", str(killed), "--max-steps", "40")
    a, b = train_losses(full), train_losses(killed)
    assert [a[s] for s in range(1, 41)] == [b[s] for s in range(1, 41)]


def test_resume_with_a_different_vocabulary_is_refused(tmp_path, data_dir):
    run = tmp_path / "run"
    run_cli("train", "ptb-small", "--data-dir", str(data_dir), "--out", str(run), "--max-steps", "2", *TINY_LM)
    config = (run / "config.toml").read_text()
    proc = run_cli(
        "train", "--resume", str(run), "--max-steps", "4", "--set", "data.train=ptb/ptb.test.txt", check=False
    )
    assert proc.returncode == 2
    assert "different vocabulary" in proc.stderr and "Traceback" not in proc.stderr
    assert (run / "config.toml").read_text() == config  # a refused resume leaves the run as it was


def test_refuses_to_overwrite_a_run(tmp_path, data_dir):
    run = tmp_path / "run"
    run_cli("train", "ptb-small", "--data-dir", str(data_dir), "--out", str(run), "--max-steps", "2", *TINY_LM)
    proc = run_cli(
        "train", "ptb-small", "--data-dir", str(data_dir), "--out", str(run), "--max-steps", "2", *TINY_LM, check=False
    )
    assert proc.returncode == 2 and "--resume" in proc.stderr
