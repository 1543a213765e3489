"""best.pt holds the best validated model whatever stopped the run and however it is resumed.

After every invocation the run directory must satisfy one invariant: best.pt is the model of the best validation
in metrics.jsonl (the first one to reach it: a tie never replaces it), and last.pt records that best and its step.
The runs stop by every kind of limit (--max-steps, --max-time, Ctrl-C, early stopping, epochs) and are resumed;
a resume with nothing left to do trains no step, writes nothing and says so. The CLI runs in this process (no
interpreter start-up per call) except where a signal must reach a real process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY_LM, read_metrics
from rnnkit.cli import main

# validation on 5% of the text (fast), no test evaluation; lr 1 oscillates enough that some validations get worse
LM = [*TINY_LM, "--set", "data.valid=", "--set", "data.valid_fraction=0.05", "--set", "train.eval_test=false"]
# parity: 10 steps an epoch, accuracy (higher is better, with ties)
PARITY = [
    "--set",
    "data.size=600",
    "--set",
    "data.bits=10",
    "--set",
    "train.batch_size=50",
    "--set",
    "train.log_every=2",
    "--set",
    "train.tensorboard=false",
    "--set",
    "train.eval_test=false",
]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys):
    def run(*args: object, expect: int = 0) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert code == expect, err
        return Result(code, out, err)

    return run


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def assert_best_is_the_best(run: Path, metric: str, higher: bool = False) -> float:
    """The invariant; returns the best value."""
    valid = [(r["step"], r[metric]) for r in read_metrics(run) if r.get("split") == "valid"]
    assert valid, "no validation recorded"
    best_value = max(v for _, v in valid) if higher else min(v for _, v in valid)
    best_step = next(s for s, v in valid if v == best_value)
    best = _load(run / "checkpoints" / "best.pt")
    assert (best["loop"]["step"], best["metrics"][metric]) == (best_step, best_value), valid
    last = _load(run / "checkpoints" / "last.pt")
    assert (last["loop"]["best"], last["loop"]["best_step"]) == (best_value, best_step)
    assert last["best"] == {"metric": metric, "value": best_value, "step": best_step, "checkpoint": "best.pt"}
    return best_value


def _snapshot(run: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the run directory, its bytes and when it was last written (the lock file aside: taking the
    lock opens it)."""
    return {
        str(p.relative_to(run)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_resuming_a_max_steps_stop_never_makes_best_worse(tmp_path, data_dir, cli):
    """The report: --max-steps 30, then --resume --max-steps 31 replaced best.pt with a worse model and printed
    it as "valid (best)"; and --max-steps below the run's step trained one more step."""
    run = tmp_path / "run"
    cli(
        "train",
        "ptb-small",
        "--data-dir",
        data_dir,
        "--out",
        run,
        "--max-steps",
        "30",
        *LM,
        "--set",
        "train.eval_test=true",
    )
    # the stop validated before writing last.pt, so the checkpoint knows its best
    assert _load(run / "checkpoints" / "last.pt")["loop"]["best_step"] == 30
    values = [assert_best_is_the_best(run, "ppl")]
    for steps in (31, 32, 33):  # one step at a time: some of these validations are worse than the best
        out = cli("train", "--resume", run, "--max-steps", steps).stdout
        values.append(assert_best_is_the_best(run, "ppl"))
        assert f"step {steps}," in out and f"valid (best): ppl {values[-1]:.4g}" in out
    assert values == sorted(values, reverse=True)  # best.pt only ever improved
    valid = [r["ppl"] for r in read_metrics(run) if r.get("split") == "valid"]
    assert len(valid) == 4 and max(valid[1:]) > min(valid)  # a worse validation did happen and was not kept

    before = _snapshot(run)
    for steps in ("33", "20"):  # at or below the run's step: nothing to train, nothing written
        r = cli("train", "--resume", run, "--max-steps", steps)
        assert f"is at step 33 and train.max_steps (--max-steps) is {steps}: nothing to train" in r.stderr
        assert "(max_steps, step 33" in r.stdout and f"valid (best): ppl {values[-1]:.4g}" in r.stdout
        assert (r.stdout + r.stderr).count("nothing to train") == 1  # one line saying why, not two
        assert _snapshot(run) == before


def test_a_max_time_stop_validates_before_the_last_checkpoint(tmp_path, data_dir, cli):
    run = tmp_path / "run"
    cli("train", "ptb-small", "--data-dir", data_dir, "--out", run, "--max-steps", "5", *LM)
    for _ in range(2):
        out = json.loads(cli("train", "--resume", run, "--max-time", "1", "--max-steps", "100000", "--json").stdout)
        assert out["stopped"] == "max_time" and out["valid"]
        last = _load(run / "checkpoints" / "last.pt")
        assert last["loop"]["step"] == out["step"]
        assert any(r.get("split") == "valid" and r["step"] == out["step"] for r in read_metrics(run))
        assert_best_is_the_best(run, "ppl")


def test_ctrl_c_saves_exits_130_and_the_resume_keeps_the_best(tmp_path, data_dir, cli):
    run = tmp_path / "run"
    cli("train", "ptb-small", "--data-dir", data_dir, "--out", run, "--max-steps", "10", *LM)
    best_before = assert_best_is_the_best(run, "ppl")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "train", "--resume", str(run), "--max-steps", "100000", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            if max((r["step"] for r in read_metrics(run) if "split" not in r), default=0) >= 14:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    summary = json.loads(out)  # the summary is printed as usual
    assert summary["stopped"] == "interrupted" and summary["resume"] == f"rnnkit train --resume {run}"
    assert "Traceback" not in err
    last = _load(run / "checkpoints" / "last.pt")
    assert last["loop"]["step"] == summary["step"] >= 14  # saved where it stopped
    assert (last["loop"]["best"], last["loop"]["best_step"]) == (best_before, 10)  # no validation on Ctrl-C
    assert not (run / ".lock.json").exists()  # the lock was released
    cli("train", "--resume", run, "--max-steps", summary["step"] + 2)
    assert assert_best_is_the_best(run, "ppl") <= best_before


def test_early_stop_and_epochs_stops_resume_without_harm(tmp_path, cli):
    run = tmp_path / "run"
    # early_stop=1: stops at the first epoch that does not improve accuracy (ties included)
    first = json.loads(
        cli(
            "train",
            "parity",
            "--out",
            run,
            "--max-epochs",
            "30",
            "--set",
            "train.early_stop=1",
            "--set",
            "optim.lr=0.003",
            *PARITY,
            "--json",
        ).stdout
    )
    assert first["stopped"] == "early_stop" and first["epoch"] < 30
    best = assert_best_is_the_best(run, "accuracy", higher=True)
    before = _snapshot(run)
    again = cli("train", "--resume", run)  # stopped early: nothing to do until early_stop is raised
    assert "stopped early (1 validation without improvement, train.early_stop = 1): nothing to train" in again.stderr
    assert _snapshot(run) == before
    more = json.loads(
        cli(
            "train", "--resume", run, "--set", "train.early_stop=3", "--max-epochs", first["epoch"] + 2, "--json"
        ).stdout
    )
    assert more["step"] > first["step"]
    assert assert_best_is_the_best(run, "accuracy", higher=True) >= best

    done = tmp_path / "done"
    cli("train", "parity", "--out", done, "--max-epochs", "2", *PARITY)
    before = _snapshot(done)
    r = cli("train", "--resume", done)
    assert "has trained all 2 epochs of train.max_epochs (--max-epochs) = 2: nothing to train" in r.stderr
    assert _snapshot(done) == before
    out = json.loads(cli("train", "--resume", done, "--max-epochs", "4", "--json").stdout)
    assert out["stopped"] == "max_epochs" and out["epoch"] == 4 and out["step"] == 40
    assert_best_is_the_best(done, "accuracy", higher=True)


def test_a_best_pt_newer_than_last_pt_is_the_bar_to_beat(tmp_path, data_dir, cli):
    """A kill between writing best.pt and last.pt: the replayed steps must beat best.pt to replace it."""
    run = tmp_path / "run"
    args = ["--data-dir", data_dir, *LM, "--set", "train.eval_every=4", "--set", "train.checkpoint_every=4"]
    cli("train", "ptb-small", "--out", run, "--max-steps", "8", *args)
    old_last = (run / "checkpoints" / "last.pt").read_bytes()
    cli("train", "--resume", run, "--max-steps", "16")
    assert _load(run / "checkpoints" / "best.pt")["loop"]["step"] > 8  # the first steps of a fresh LM improve
    best_bytes = (run / "checkpoints" / "best.pt").read_bytes()
    (run / "checkpoints" / "last.pt").write_bytes(old_last)  # as if killed before the newer last.pt was saved
    cli("train", "--resume", run, "--max-steps", "16")  # replays steps 9..16 exactly
    assert (run / "checkpoints" / "best.pt").read_bytes() == best_bytes  # an equal model does not replace it
    assert_best_is_the_best(run, "ppl")

    # a last.pt that knows no best at all (written by a version that saved it before validating)
    ckpt = _load(run / "checkpoints" / "last.pt")
    ckpt["loop"]["best"], ckpt["loop"]["best_step"] = None, None
    torch.save(ckpt, run / "checkpoints" / "last.pt")
    best_value = _load(run / "checkpoints" / "best.pt")["metrics"]["ppl"]
    for steps in (17, 18, 19):
        cli("train", "--resume", run, "--max-steps", steps)
        assert _load(run / "checkpoints" / "best.pt")["metrics"]["ppl"] <= best_value
        assert_best_is_the_best(run, "ppl")
