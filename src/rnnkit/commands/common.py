"""Options several verbs share, declared once so they read the same everywhere."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default=None,
        metavar="auto|cpu|cuda",
        help="where to run (default: the recipe's train.device, normally auto = CUDA if present)",
    )


def add_data_dir(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--data-dir`` and ``--offline``: where data.* paths are read (see rnnkit.datasets.resolve)."""
    p.add_argument(
        "--data-dir",
        default=default,
        metavar="DIR",
        help="read data.* paths relative to DIR (default: rnnkit's data cache, $RNNKIT_DATA, which "
        "fetches a registered data set once; see 'rnnkit data list')",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="never touch the network (same as RNNKIT_OFFLINE=1); the cache and a mirror directory are still used",
    )


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object for scripts")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


class Parser(argparse.ArgumentParser):
    """argparse with rnnkit's error convention: one line on stderr (naming the verb and the option) and exit 2.

    argparse's own ``error`` prints the usage block first, so a mistyped number gave several lines; the usage is
    one ``--help`` away, and scripts read the single line.
    """

    def error(self, message: str) -> NoReturn:
        verb = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        where = f"{verb}: " if verb else ""
        self.exit(2, f"rnnkit: error: {where}{message} (see '{self.prog} --help')\n")


class IntermixedParser(Parser):
    """A verb parser that accepts options after positional TEXT arguments (``classify RUN --json "text"``).

    argparse's default parsing stops collecting a ``nargs="*"`` positional at the first option, so options placed
    after the texts are reported as unrecognised; ``parse_known_intermixed_args`` does not have that problem.
    """

    _inside = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inside:  # parse_known_intermixed_args calls back into parse_known_args
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def allow_intermixed(p: argparse.ArgumentParser) -> None:
    """Switch a sub-parser (created by ``add_parser``) to intermixed parsing."""
    p.__class__ = IntermixedParser


def add_input_limit(p: argparse.ArgumentParser) -> None:
    from rnnkit.predict import MAX_INPUT_LENGTH

    p.add_argument(
        "--max-input-length",
        type=int,
        default=MAX_INPUT_LENGTH,
        metavar="N",
        help="longest input in characters (numeric sequences: values), as 'rnnkit serve' takes (default: %(default)s)",
    )
