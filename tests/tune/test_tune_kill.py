"""A study whose process is killed (SIGKILL) mid-trial is finished by the same command: only the missing trials
run, the cut one first, and the report counts it as rerun, not failed."""

from __future__ import annotations

import json
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
    cmd = [
        "tune",
        "parity",
        "--space",
        str(space),
        "--trials",
        "3",
        "--sampler",
        "random",
        "--pruner",
        "none",
        "--out",
        str(out),
        *PARITY,
        "--set",
        "train.max_epochs=3",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", *cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
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
    assert (
        f"continuing study 'parity': {len(complete)} of 3 trial(s) done or running, {3 - len(complete)} to run"
        in proc.stderr
    )
    after = {t.number: t for t in optuna.load_study(study_name="parity", storage=storage).get_trials()}
    assert sorted(after) == list(range(len(after)))  # unique, contiguous trial numbers
    assert {n: (after[n].params, after[n].value) for n in complete} == complete  # no finished trial lost
    assert after[killed].state == optuna.trial.TrialState.FAIL
    retry = [t for t in after.values() if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].params == before[killed].params  # the interrupted configuration reruns
    assert retry[0].state == optuna.trial.TrialState.COMPLETE
    n_complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in after.values())
    assert n_complete == 3  # --trials 3 is the study's total: the command finished it, no more
    assert len(after) == 4  # the 3 trials and the one the kill cut
    capsys.readouterr()
    assert main(["tune", "report", str(out), "--json", "--no-plots"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert (rep["n_trials"], rep["n_failed"], rep["n_retried"], rep["n_total"]) == (3, 0, 1, 4)
    row = next(r for r in rep["trials"] if r["number"] == killed)
    assert row["state"] == "fail" and row["retried_as"] == retry[0].number
    assert main(["tune", "report", str(out), "--no-plots"]) == 0
    assert "3 complete, 0 pruned, 0 failed, 1 cut short and rerun" in capsys.readouterr().out

    again = run_cli(*cmd)  # and once more: the study is complete, nothing runs
    assert "3 of 3 trial(s) done or running; nothing to run" in again.stderr
    assert len(optuna.load_study(study_name="parity", storage=storage).get_trials()) == 4
