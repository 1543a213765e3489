"""The ``rnnkit`` command line: git-style verbs, quiet by default, ``--json`` where scripts read the output.

Exit status: 0 success, 2 a user or data error (one line on stderr), 1 a bug (traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import warnings
from typing import Any

from rnnkit.api import ArgumentError, RenamedKeyWarning, UserError, __version__
from rnnkit.commands import COMMANDS
from rnnkit.commands.common import Parser, in_cli_words, option_name


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rnnkit",
        description="Recurrent neural networks on PyTorch: train, evaluate, generate, diagnose.",
        epilog="Run 'rnnkit COMMAND --help' for a command's options. Recipes: 'rnnkit recipes'.",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"rnnkit.commands.{name}").register(sub)
    return parser


def _warn(
    message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None
) -> None:
    print(f"rnnkit: warning: {message}", file=sys.stderr)


def _as_option(e: ArgumentError, names: dict[str, str]) -> str:
    """``generate(max_new_tokens=...) must be >= 1`` as the command line says it: ``--max-new-tokens must be >= 1``.
    A verb maps API argument names that are not its options' (``p.set_defaults(arguments={"inputs": "TEXT"})``);
    a name that is already the command line's (``TEXT 2``, ``--once``) stays."""
    name, bracket, rest = e.argument.partition("[")
    return f"{option_name(name, names)}{bracket}{rest} {in_cli_words(e.reason, names)}"


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """One parser per process: building it (a dozen verbs) costs more than parsing, and tests call main() often."""
    return build_parser()


def _process_defaults() -> None:
    """Two settings for this process and those it starts, each unless the user set it, read once when torch loads
    (once torch is imported - rnnkit.cli.main called from Python - setting them would change nothing, so they are
    left alone):

    - ``GOMP_SPINCOUNT=1000``: PyTorch's OpenMP threads (libgomp) spin while they wait for each other, by default
      ~300,000 iterations before they sleep. On a CPU other processes also want (a shared VM, CI, a laptop running
      tests, a served model beside a trainer) a spinning thread holds the core the working thread needs: the LSTM
      step at the peer benchmark's shape ran at 0.47x its 1-thread speed with 2 threads (omp-wait-cpu.json, load
      ~12). Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``, the setting here until 2026-12-08) fixes that, but a
      recurrence of small steps opens a parallel region per time step and then wakes a sleeping thread for each:
      a sequence classifier over 1,344-step series trained 4-6x slower with it on an idle machine. A short spin
      catches the next step's region and still gives a shared core back (benchmarks/omp_wait.py, both workloads,
      idle and loaded: docs/results.md). An ``OMP_WAIT_POLICY`` the user sets overrides it (libgomp then ignores
      the spin count).
    - ``THP_MEM_ALLOC_ENABLE=1``: PyTorch's own switch that puts its CPU tensors of 2 MB and more on transparent
      huge pages (Linux; where the kernel allows them, ``madvise`` or ``always``). Training frees and allocates
      the same large activations every step; glibc hands blocks over 32 MB back to the kernel, so each step pays
      the page faults again, one per 4 KB page - on a virtual machine most of a step's system time. On huge pages
      that is one fault per 2 MB, at no memory cost (benchmarks/results/thp-cpu.json measures both settings).
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("GOMP_SPINCOUNT", "1000")
        os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def main(argv: list[str] | None = None) -> int:
    _process_defaults()
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version (0) or a usage error (2, one line already printed)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if getattr(args, "offline", False):  # --offline: for this process and any it starts (torchrun workers)
        os.environ["RNNKIT_OFFLINE"] = "1"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", RenamedKeyWarning)  # old config keys: say so, once per source
            warnings.showwarning = _warn
            return int(args.func(args) or 0)
    except ArgumentError as e:  # an API argument: say it as the option (or positional) that set it
        print(f"rnnkit: error: {_as_option(e, getattr(args, 'arguments', {}))}", file=sys.stderr)
        return e.exit_code
    except UserError as e:
        if not getattr(e, "reported", False):  # distributed workers already printed their one line
            print(f"rnnkit: error: {in_cli_words(str(e), getattr(args, 'arguments', {}))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnnkit ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
