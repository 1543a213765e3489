"""Options several verbs share, declared once so they read the same everywhere."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, metavar="auto|cpu|cuda",
                   help="where to run (default: the recipe's train.device, normally auto = CUDA if present)")


def add_data_dir(p: argparse.ArgumentParser, default: str | None = "data") -> None:
    p.add_argument("--data-dir", default=default, metavar="DIR",
                   help="directory that data.* paths are relative to (default: %(default)s)")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object for scripts")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()
