"""Two worker processes share one study in a real PostgreSQL server: distinct trial numbers, all finished.

The server is a throw-away cluster (initdb in a temporary directory, a free loopback port). The PostgreSQL
binaries come from Debian's `postgresql` package: if `initdb`/`pg_ctl` are not found, the test installs it
with apt-get (CI runs as root on Debian); only if that is impossible does it skip, saying why.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tune_helpers import PARITY, cli_json, write_space

from conftest import REPO


def _pg_bin() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    found = shutil.which("pg_ctl")
    if found:
        candidates.insert(0, str(Path(os.path.realpath(found)).parent))
    for c in candidates:
        if (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    try:
        import psycopg2
    except ImportError:
        pytest.skip("psycopg2 is not installed: pip install 'rnnkit[tune]' (psycopg2-binary)")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found): run scripts/provision.sh")
    # PostgreSQL refuses to run as root: run the server as the package's `postgres` user
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no 'postgres' user to run the server as (it refuses root): run scripts/provision.sh")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="rnnkit-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", _free_port()

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)

    try:
        init = pg(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        assert init.returncode == 0, init.stderr
        start = pg(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        log = (root / "server.log").read_text() if (root / "server.log").is_file() else ""
        assert start.returncode == 0, start.stderr + log
        con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE rnnkit_tune")
        con.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/rnnkit_tune"  # the plain form a user would type
    finally:
        if (data / "postmaster.pid").is_file():
            pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_study(tmp_path, capsys, postgres_url):
    import optuna

    space = write_space(tmp_path / "space.toml")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    outs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rnnkit",
                "tune",
                "parity",
                "--space",
                str(space),
                "--trials",
                "4",
                "--sampler",
                "random",
                "--pruner",
                "none",
                "--storage",
                postgres_url,
                "--study",
                "shared",
                "--out",
                str(out),
                *PARITY,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err

    from rnnkit.tune.study import open_storage

    every = optuna.load_study(study_name="shared", storage=open_storage(postgres_url)).get_trials()
    assert sorted(t.number for t in every) == list(range(len(every)))  # no duplicate trial numbers
    # --trials 4 is the study's total, both workers together; a trial both started at once gives its slot back
    trials = [t for t in every if not t.user_attrs.get("surplus")]
    assert len(trials) == 4 and all(not t.params for t in every if t.user_attrs.get("surplus"))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2  # both workers ran trials
    for t in trials:  # each trial's run directory is on the worker that ran it, under its own number
        run = Path(t.user_attrs["run_dir"])
        assert run.name == f"{t.number:04d}" and run.parent.parent in outs
        assert (run / "checkpoints" / "best.pt").is_file()
    dirs = [p.name for out in outs for p in (out / "trials").iterdir()]
    assert sorted(dirs) == sorted(f"{t.number:04d}" for t in trials)

    rep = cli_json(capsys, "tune", "report", postgres_url, "--study", "shared", "--plots", str(tmp_path / "plots"))
    assert rep["n_trials"] == 4 and rep["n_pruned"] == 0 and rep["best_params"]
    assert (tmp_path / "plots" / "tune-history.png").is_file()
