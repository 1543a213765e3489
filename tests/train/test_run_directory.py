"""A run directory under faults: one trainer at a time, leftovers of a kill cleaned, a full disk or a read-only file
system reported in one line with the previous checkpoints intact, damaged or foreign checkpoints refused by name.

The disk faults are real where the machine allows it: a small tmpfs that fills up, and read-only mounts, made inside
a private mount namespace (``unshare -m``, as root) so the host's mounts never change. Elsewhere those tests skip,
and the injected versions below (an ENOSPC / EROFS raised where the OS would raise it) still run.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY_LM, read_metrics, train_losses
from rnnkit.cli import main

LM = [*TINY_LM, "--set", "data.valid=", "--set", "data.valid_fraction=0.05", "--set", "train.eval_test=false"]
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
ENV = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")


def cli(capsys, *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *needles: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def digest(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (run / "checkpoints").iterdir()}


def spawn(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rnnkit", *map(str, args)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def steps_logged(run: Path) -> int:
    try:
        return max((r["step"] for r in read_metrics(run) if "split" not in r), default=0)
    except (OSError, ValueError):
        return 0


@pytest.fixture
def lm_run(tmp_path, data_dir, capsys) -> Path:
    run = tmp_path / "lm"
    code, _, err = cli(capsys, "train", "ptb-small", "--data-dir", data_dir, "--out", run, "--max-steps", "10", *LM)
    assert code == 0, err
    return run


# -- one trainer per run ---------------------------------------------------------------------------------------
def test_two_trainers_started_together_one_trains_one_exits_2(lm_run):
    procs = [spawn("train", "--resume", lm_run, "--max-steps", "80", "-q") for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], results
    winner = procs[codes.index(0)]
    line = one_line(
        results[codes.index(2)][1],
        f"rnnkit: error: {lm_run}: another trainer is writing this run (pid {winner.pid} on {socket.gethostname()}",
        "rnnkit train --resume",
        "wait for it to finish",
    )
    assert line.endswith("or stop it")
    records = read_metrics(lm_run)  # consistent: every step once, in order, one validation at the stop
    train_steps = [r["step"] for r in records if "split" not in r]
    assert train_steps == list(range(1, 81))
    assert [r["step"] for r in records if r.get("split") == "valid"] == [10, 80]
    assert torch.load(lm_run / "checkpoints" / "last.pt", weights_only=True)["loop"]["step"] == 80
    assert not (lm_run / ".lock.json").exists()


def test_a_killed_trainers_lock_and_temp_files_are_taken_over(lm_run, capsys):
    proc = spawn("train", "--resume", lm_run, "--max-steps", "100000", "-q")
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and steps_logged(lm_run) < 12:
            time.sleep(0.05)
        holder = json.loads((lm_run / ".lock.json").read_text())
        assert holder["pid"] == proc.pid and holder["host"] == socket.gethostname()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    # what a kill -9 in the middle of atomic writes leaves behind
    left = [lm_run / "checkpoints" / ".last.pt.k2j4h1x9.tmp", lm_run / ".config.toml.a8b7c6d5.tmp"]
    for p in left:
        p.write_bytes(b"\0" * 1000)
    code, out, err = cli(capsys, "train", "--resume", lm_run, "--max-steps", "12", "-q")
    assert code == 0, err
    assert f"took over the lock of pid {proc.pid} on {socket.gethostname()} (no longer running)" in err
    assert not any(p.exists() for p in left)
    assert sorted(p.name for p in (lm_run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert sorted(train_losses(lm_run)) == list(range(1, 13))


def test_out_naming_a_file_or_inside_one(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    code, _, err = cli(capsys, "train", "parity", "--out", f, *PARITY, "--max-steps", "2")
    assert code == 2
    one_line(err, f"{f}: exists and is not a directory; choose another run directory")
    code, _, err = cli(capsys, "train", "parity", "--out", f / "run", *PARITY, "--max-steps", "2")
    assert code == 2
    one_line(err, f"{f / 'run'}: cannot create the run directory: a part of the path is not a directory")
    assert f.read_text() == "mine\n"


# -- damaged and foreign checkpoints ---------------------------------------------------------------------------
def test_damaged_checkpoints_are_one_line_errors(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(capsys, "train", "parity", "--out", run, *PARITY, "--max-steps", "3")[0] == 0
    last, best = run / "checkpoints" / "last.pt", run / "checkpoints" / "best.pt"
    good_last, good_best = last.read_bytes(), best.read_bytes()

    last.write_bytes(b"")
    code, _, err = cli(capsys, "train", "--resume", run, "--max-steps", "5")
    assert code == 2
    one_line(err, f"{last}: empty file (0 bytes), not a loadable rnnkit checkpoint")
    last.write_bytes(os.urandom(4096))
    code, _, err = cli(capsys, "train", "--resume", run, "--max-steps", "5")
    assert code == 2
    one_line(err, f"{last}: not a loadable rnnkit checkpoint")
    assert "weights_only" not in err
    last.write_bytes(good_last[: len(good_last) // 2])  # cut short
    code, _, err = cli(capsys, "train", "--resume", run, "--max-steps", "5")
    assert code == 2
    one_line(err, f"{last}: not a loadable rnnkit checkpoint")

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    torch.save({"format": "rnnkit-checkpoint/1", "x": Evil()}, last)
    code, _, err = cli(capsys, "train", "--resume", run, "--max-steps", "5")
    assert code == 2
    one_line(err, "it holds a Python object", "never run code")
    assert "weights_only" not in err and not Path("pwned").exists()

    last.write_bytes(good_last)
    best.write_bytes(b"")
    for args in (["eval", run], ["classify", run, "1 0 1"]):
        code, _, err = cli(capsys, *args)
        assert code == 2
        one_line(err, f"{best}: empty file (0 bytes)")
    code, _, err = cli(capsys, "train", "--resume", run, "--max-steps", "5")
    assert code == 2
    one_line(err, f"{best}: empty file (0 bytes)", "move it away to resume")
    best.write_bytes(good_best)
    assert cli(capsys, "train", "--resume", run, "--max-steps", "5")[0] == 0


def test_another_tasks_checkpoint_is_named_as_such(tmp_path, capsys):
    parity, sine = tmp_path / "parity", tmp_path / "sine"
    assert cli(capsys, "train", "parity", "--out", parity, *PARITY, "--max-steps", "2")[0] == 0
    assert (
        cli(
            capsys,
            "train",
            "sine-series",
            "--out",
            sine,
            "--max-steps",
            "2",
            "--set",
            "train.tensorboard=false",
            "--set",
            "train.eval_test=false",
        )[0]
        == 0
    )
    for name in ("last.pt", "best.pt"):
        shutil.copy(sine / "checkpoints" / name, parity / "checkpoints" / name)
    files = {p.name: p.read_bytes() for p in parity.iterdir() if p.is_file()}
    code, _, err = cli(capsys, "train", "--resume", parity, "--max-steps", "4")
    assert {p.name: p.read_bytes() for p in parity.iterdir() if p.is_file()} == files  # nothing written
    assert code == 2
    one_line(
        err,
        f"{parity / 'checkpoints' / 'last.pt'}: this checkpoint belongs to another task ('forecast', "
        f"recipe 'sine-series'); this run trains task 'parity'",
    )
    assert "vocabular" not in err
    code, _, err = cli(capsys, "eval", parity)
    assert code == 2
    one_line(err, "best.pt: this checkpoint belongs to another task ('forecast'")


# -- full disk and read-only file systems: injected (always) ----------------------------------------------------------
def test_injected_enospc_while_saving_last_pt(lm_run, capsys, monkeypatch):
    from rnnkit.train import checkpoint

    before = digest(lm_run)
    real_save = torch.save

    def full(obj, f, *a, **k):
        f.write(b"\0" * 4096)
        raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from OSError(
            errno.ENOSPC, "No space left on device"
        )

    monkeypatch.setattr(checkpoint.torch, "save", full)
    code, _, err = cli(capsys, "train", "--resume", lm_run, "--max-steps", "14", "--set", "train.checkpoint_every=2")
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    assert code == 2
    last = lm_run / "checkpoints" / "last.pt"
    one_line(err, f"rnnkit: error: {last}: cannot write: no space left on device; the previous checkpoint is kept")
    assert digest(lm_run) == before  # and no temporary file left
    assert not (lm_run / ".lock.json").exists()


def test_injected_erofs_and_enospc_at_the_start(tmp_path, capsys, monkeypatch):
    from rnnkit.train import rundir

    def read_only(self, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as m:
        m.setattr(Path, "mkdir", read_only)
        code, _, err = cli(capsys, "train", "parity", "--out", tmp_path / "ro" / "run", *PARITY)
    assert code == 2
    one_line(err, f"{tmp_path / 'ro' / 'run'}: cannot create the run directory: read-only file system")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(rundir.tempfile, "mkstemp", full)
        code, _, err = cli(capsys, "train", "parity", "--out", tmp_path / "full", *PARITY)
    assert code == 2
    one_line(err, f"{tmp_path / 'full'}", "cannot write: no space left on device")
    assert not (tmp_path / "full").exists()  # nothing left behind by a run that could not start


# -- full disk and read-only file systems: real ----------------------------------------------------------------------
def _namespace_why_not() -> str:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare for a private mount namespace"
    probe = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d && rmdir $d",
        ],
        capture_output=True,
        text=True,
    )
    return "" if probe.returncode == 0 else f"cannot mount a tmpfs in a private namespace: {probe.stderr.strip()}"


@pytest.fixture(scope="module")
def namespace():
    """``namespace(script, **vars)``: run a shell script in a private mount namespace (its mounts vanish with it)."""
    why = _namespace_why_not()
    if why:
        pytest.skip(why)

    def run(script: str, **variables: object) -> subprocess.CompletedProcess:
        env = dict(ENV, PY=sys.executable, **{k: str(v) for k, v in variables.items()})
        return subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run


def _result(out: Path, name: str) -> tuple[int, str, str]:
    return (int((out / f"{name}.rc").read_text()), (out / f"{name}.out").read_text(), (out / f"{name}.err").read_text())


RNNKIT = '"$PY" -m rnnkit'


def test_a_disk_that_fills_while_saving_last_pt(lm_run, tmp_path, namespace):
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    before = digest(lm_run)
    proc = namespace(
        f"""
        set -e
        mount -t tmpfs -o size=8m tmpfs "$MNT"
        cp -a "$RUN" "$MNT/run"
        avail=$(df --output=avail -B1 "$MNT" | tail -1)
        head -c $((avail - 400000)) /dev/zero > "$MNT/filler"   # room for the small files, not for a checkpoint
        set +e
        {RNNKIT} train --resume "$MNT/run" --max-steps 14 --set train.checkpoint_every=2 -q >"$OUT/full.out" \
            2>"$OUT/full.err"; echo $? >"$OUT/full.rc"
        cp -a "$MNT/run" "$OUT/after-full"
        rm "$MNT/filler"   # space freed: the same command continues from the last good checkpoint
        {RNNKIT} train --resume "$MNT/run" --max-steps 14 --set train.checkpoint_every=2 -q >"$OUT/freed.out" \
            2>"$OUT/freed.err"; echo $? >"$OUT/freed.rc"
        cp -a "$MNT/run" "$OUT/after-freed"
        """,
        MNT=mnt,
        RUN=lm_run,
        OUT=out,
    )
    assert proc.returncode == 0, proc.stderr
    code, _, err = _result(out, "full")
    assert code == 2
    one_line(
        err,
        f"rnnkit: error: {mnt}/run/checkpoints/last.pt: cannot write: no space left on device; the "
        f"previous checkpoint is kept",
    )
    assert digest(out / "after-full") == before  # last.pt and best.pt as they were, no temporary file
    assert not (out / "after-full" / ".lock.json").exists()
    code, _, err = _result(out, "freed")
    assert code == 0, err
    assert sorted(train_losses(out / "after-freed")) == list(range(1, 15))
    assert not list(mnt.iterdir())  # the host never saw the tmpfs


def test_a_full_disk_at_the_start_of_a_run(lm_run, tmp_path, namespace):
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    before = digest(lm_run)
    proc = namespace(
        f"""
        set -e
        mount -t tmpfs -o size=8m tmpfs "$MNT"
        cp -a "$RUN" "$MNT/run"
        head -c 20000000 /dev/zero > "$MNT/filler" 2>/dev/null || true   # full
        set +e
        {RNNKIT} train parity --out "$MNT/new" {" ".join(PARITY)} >"$OUT/new.out" 2>"$OUT/new.err"
        echo $? >"$OUT/new.rc"
        {RNNKIT} train --resume "$MNT/run" --max-steps 14 >"$OUT/resume.out" 2>"$OUT/resume.err"
        echo $? >"$OUT/resume.rc"
        ls -A "$MNT" >"$OUT/listing"
        cp -a "$MNT/run" "$OUT/after"
        """,
        MNT=mnt,
        RUN=lm_run,
        OUT=out,
    )
    assert proc.returncode == 0, proc.stderr
    code, _, err = _result(out, "new")
    assert code == 2
    one_line(err, f"{mnt}/new", "no space left on device")
    assert (out / "listing").read_text().split() == ["filler", "run"]  # no half-made run left behind
    code, _, err = _result(out, "resume")
    assert code == 2
    one_line(err, f"{mnt}/run/", "no space left on device")
    assert digest(out / "after") == before
    assert read_metrics(out / "after") == read_metrics(lm_run)


def test_read_only_locations(lm_run, tmp_path, namespace):
    mnt, ro, out = tmp_path / "mnt", tmp_path / "ro", tmp_path / "out"
    for d in (mnt, ro, out):
        d.mkdir()
    before = digest(lm_run)
    proc = namespace(
        f"""
        set -e
        mount -t tmpfs -o size=1m,ro tmpfs "$MNT"
        mount --bind "$RUN" "$RO" && mount -o remount,bind,ro "$RO"
        set +e
        {RNNKIT} train parity --out "$MNT/run" {" ".join(PARITY)} >"$OUT/new.out" 2>"$OUT/new.err"
        echo $? >"$OUT/new.rc"
        {RNNKIT} train --resume "$RO" --max-steps 14 >"$OUT/resume.out" 2>"$OUT/resume.err"
        echo $? >"$OUT/resume.rc"
        {RNNKIT} eval "$RO" --json >"$OUT/eval.out" 2>"$OUT/eval.err"
        echo $? >"$OUT/eval.rc"
        """,
        MNT=mnt,
        RO=ro,
        RUN=lm_run,
        OUT=out,
    )
    assert proc.returncode == 0, proc.stderr
    code, _, err = _result(out, "new")
    assert code == 2
    one_line(err, f"rnnkit: error: {mnt}/run: cannot create the run directory: read-only file system")
    code, _, err = _result(out, "resume")
    assert code == 2
    one_line(err, f"rnnkit: error: {ro}/.lock: cannot lock: read-only file system")
    code, stdout, err = _result(out, "eval")  # a finished run on read-only media can still be used
    assert code == 0, err
    assert "ppl" in json.loads(stdout)["valid"]
    assert digest(lm_run) == before
