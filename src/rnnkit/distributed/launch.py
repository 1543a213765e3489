"""``rnnkit train ... --nproc N``: start N local worker processes with torchrun, as a user would by hand.

The workers run ``python -m rnnkit train ...`` with the same arguments (minus ``--nproc``), so there is exactly
one code path whether the processes come from here or from a multi-node ``torchrun`` command. torchrun picks a
free port on this machine (``--standalone``) and tears every worker down if one fails.

Why the stderr relay: a user error (bad data, bad --set) happens identically on every rank, and torchrun would
bury the one-line message under its own failure report; the launcher shows the line once and exits 2, as the
single-process CLI does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

ERROR_PREFIX = b"rnnkit: error:"


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "rnnkit",
        *argv,
    ]


def launch_local(nproc: int, argv: list[str]) -> int:
    """Run ``rnnkit <argv>`` in ``nproc`` processes on this machine; returns the exit status."""
    env = dict(os.environ)
    # torchrun would force 1 thread per worker; share the cores out instead (the user's setting wins)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    proc = subprocess.Popen(torchrun_command(nproc, argv), env=env, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    user_errors: list[bytes] = []
    held: list[bytes] = []  # torchrun's report after a user error: shown only if it was not just that
    interrupted: list[bool] = []

    def on_sigint(signum: int, frame: Any) -> None:
        # the terminal's Ctrl-C reached the workers too (same process group): they finish the step and save;
        # keep relaying their output until they have
        interrupted.append(True)

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        for line in iter(proc.stderr.readline, b""):
            if line.startswith(ERROR_PREFIX):
                if line not in user_errors:
                    user_errors.append(line)
                    sys.stderr.buffer.write(line)
                    sys.stderr.flush()
                continue
            if user_errors or interrupted:
                held.append(line)  # after a Ctrl-C: torchrun's report of its own shutdown
                continue
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
        rc = proc.wait()
    finally:
        signal.signal(signal.SIGINT, old)
    if interrupted:  # the caller says so (the CLI: "rnnkit: interrupted", exit 130)
        return 130
    if rc != 0 and user_errors:
        return 2
    if held:
        sys.stderr.buffer.write(b"".join(held))
        sys.stderr.flush()
    return 1 if rc != 0 else 0
