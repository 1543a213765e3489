"""Running `rnnkit train ... --json` from a benchmark: the one place that times it and reads its summary."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any


def data_flag(data_dir: str | None) -> list[str]:
    """``--data-dir DIR`` for a training command when the benchmark was given one; none: rnnkit's registry."""
    return ["--data-dir", data_dir] if data_dir else []


def train_summary(cmd: list[str], label: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """Run a training command; return its JSON summary (the last stdout line) and the wall time in seconds.

    A failed run ends the benchmark with the trainer's own stderr, so its one-line error reaches the user.
    """
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{label}: training failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall
