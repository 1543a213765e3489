"""A study whose process is killed (SIGKILL) mid-trial continues with the same command and loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
from tune_helpers import PARITY, write_space

from conftest import REPO, run_cli
from rnnkit.cli import main


def _states(db) -> dict[int, str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return dict(con.execute("SELECT number, state FROM trials").fetchall())
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return {}


def test_killed_study_resumes_without_losing_a_trial(tmp_path, capsys):
    space = write_space(tmp_path / "space.toml")
    out = tmp_path / "study"
    # three epochs a trial, so that the kill lands inside one
    cmd = ["tune", "parity", "--space", str(space), "--trials", "3", "--sampler", "random", "--pruner", "none",
           "--out", str(out), *PARITY, "--set", "train.max_epochs=3"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", *cmd], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    killed = None
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            states = _states(out / "study.db")
            running = [n for n, s in states.items() if s == "RUNNING"]
            done = [n for n, s in states.items() if s == "COMPLETE"]
            metrics = out / "trials" / f"{running[0]:04d}" / "metrics.jsonl" if running else None
            if done and running and metrics.is_file() and metrics.read_text().count("\n") >= 2:
                killed = running[0]
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert killed is not None, "the study finished or failed before it could be killed mid-trial"
    storage = f"sqlite:///{out / 'study.db'}"
    before = {t.number: t for t in optuna.load_study(study_name="parity", storage=storage).get_trials()}
    assert before[killed].state == optuna.trial.TrialState.RUNNING  # left behind by the dead worker
    complete = {n: (t.params, t.value) for n, t in before.items() if t.state == optuna.trial.TrialState.COMPLETE}

    proc = run_cli(*cmd)  # the same command again
    assert f"trial(s) {killed} of a worker that died" in proc.stderr
    after = {t.number: t for t in optuna.load_study(study_name="parity", storage=storage).get_trials()}
    assert sorted(after) == list(range(len(after)))  # unique, contiguous trial numbers
    assert {n: (after[n].params, after[n].value) for n in complete} == complete  # no finished trial lost
    assert after[killed].state == optuna.trial.TrialState.FAIL
    retry = [t for t in after.values() if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].params == before[killed].params  # the interrupted configuration reruns
    assert retry[0].state == optuna.trial.TrialState.COMPLETE
    n_complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in after.values())
    assert n_complete == len(complete) + 3
    capsys.readouterr()
    assert main(["tune", "report", str(out), "--json", "--no-plots"]) == 0
    assert f'"n_trials": {n_complete}' in capsys.readouterr().out
