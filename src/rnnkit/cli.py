"""The ``rnnkit`` command line: git-style verbs, quiet by default, ``--json`` where scripts read the output.

Exit status: 0 success, 2 a user or data error (one line on stderr), 1 a bug (traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from rnnkit import __version__
from rnnkit.commands import COMMANDS
from rnnkit.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks on PyTorch: train, evaluate, generate, diagnose.",
        epilog="Run 'rnnkit COMMAND --help' for a command's options. Recipes: 'rnnkit recipes'.",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"rnnkit.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "offline", False):  # --offline: for this process and any it starts (torchrun workers)
        os.environ["RNNKIT_OFFLINE"] = "1"
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnnkit ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
