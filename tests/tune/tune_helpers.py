"""Shared by the tune tests: a parity recipe small enough that a trial takes about a second."""

from __future__ import annotations

import json
from pathlib import Path

from rnnkit.cli import main

# 480 training strings of 10 bits, batches of 50: 10 steps, one epoch
PARITY = [
    "--set",
    "data.size=600",
    "--set",
    "data.bits=10",
    "--set",
    "train.max_epochs=1",
    "--set",
    "train.batch_size=50",
    "--set",
    "train.log_every=2",
    "--set",
    "train.tensorboard=false",
]

SPACE = """\
[model.hidden]
type = "int"
low = 4
high = 16
step = 4

[optim.lr]
type = "float"
low = 1e-4
high = 3e-2
log = true
"""


def write_space(path: Path, text: str = SPACE) -> Path:
    path.write_text(text)
    return path


def cli_json(capsys, *args: str) -> dict:
    """Run the CLI in this process (no interpreter start-up) and parse its --json output."""
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)
