"""Options several verbs share, declared once so they read the same everywhere."""

from __future__ import annotations

import argparse
import json
import math
import re
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
    """One JSON object on stdout, strict JSON for any reader: numbers as numbers (numpy scalars and arrays, tensors),
    NaN and infinities as null (``json.dump`` would write NaN, which JSON has not), paths as strings."""
    json.dump(json_value(obj), sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def json_value(obj: Any) -> Any:
    """``obj`` as plain JSON values (see ``print_json``)."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_value(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_value(v) for v in obj]
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return json_value(tolist())
    item = getattr(obj, "item", None)
    if callable(item):
        return json_value(item())
    return str(obj)  # paths, timestamps


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
    from rnnkit.api import MAX_INPUT_LENGTH

    p.add_argument(
        "--max-input-length",
        type=int,
        default=MAX_INPUT_LENGTH,
        metavar="N",
        help="longest input in characters (numeric sequences: values), as 'rnnkit serve' takes (default: %(default)s)",
    )


def add_max_new_tokens(p: argparse.ArgumentParser, what: str, old: str, default: int | None = None) -> None:
    """``--max-new-tokens N``, the one name of the length limit of generated text (generate, translate, chat, the
    server's field); ``old`` is the verb's former name for it, accepted until rnnkit 0.3 with a warning."""
    from rnnkit.api import MAX_NEW_TOKENS, cli_number

    shown = default if default is not None else "the run's"
    p.add_argument(
        "--max-new-tokens",
        type=cli_number(int, "--max-new-tokens", ge=1, le=MAX_NEW_TOKENS),
        default=None,
        metavar="N",
        help=f"{what} (default: {shown}; formerly {old})",
    )
    p.add_argument(
        old, dest="old_max_new_tokens", type=cli_number(int, old, ge=1, le=MAX_NEW_TOKENS), help=argparse.SUPPRESS
    )
    p.set_defaults(old_max_new_tokens_flag=old, max_new_tokens_default=default)


def max_new_tokens(args: argparse.Namespace) -> int | None:
    """The ``--max-new-tokens`` value (or its old name's, with a warning), else the verb's default."""
    import warnings

    from rnnkit.api import RenamedArgumentWarning, UserError

    old = args.old_max_new_tokens
    if old is not None:
        if args.max_new_tokens is not None:
            raise UserError(f"{args.old_max_new_tokens_flag} is the old name of --max-new-tokens; give only one")
        warnings.warn(
            f"{args.old_max_new_tokens_flag} is now --max-new-tokens (the old name is accepted until rnnkit 0.3)",
            RenamedArgumentWarning,
            stacklevel=2,
        )
        return int(old)
    return args.max_new_tokens if args.max_new_tokens is not None else args.max_new_tokens_default


# an argument a message names as Python does (``the limit is 2000 (max_input_length=...)``), not a call's own
# (``train(data_dir=...)``, ``data.horizon=24``); a configuration key set as Python sets it (``KEY``: any key);
# a function of the API a verb calls (``rnnkit.datasets.get("imdb")``, ``rnnkit.datasets.list()``, ``rnnkit.recipes()``)
_ARGUMENT = re.compile(r"(?<![\w.])(?<!\w\()([a-z][a-z0-9]*(?:_[a-z0-9]+)*)=\.\.\.")
_OVERRIDE = re.compile(r'overrides=\{(?:"([a-z_]+\.[a-z0-9_]+)"|(KEY)): ([^{}]*)\}')
_WORD = re.compile(r'"([\w.-]+)"$')  # a string value the command line takes bare: --set data.transform=none
_CALL = re.compile(r'rnnkit\.(datasets\.get|datasets\.list|recipes)\((?:"([\w.-]+)")?\)')


def in_cli_words(text: str, names: dict[str, str]) -> str:
    """A message of the API in the command line's words: an argument it names as ``NAME=...`` is said as its
    option (``data_dir=...``: ``--data-dir``), ``overrides={"data.path": PATH}`` as ``--set data.path=PATH``,
    ``rnnkit.datasets.get("imdb")`` as ``'rnnkit data get imdb'`` - so a message deep inside (a data file not
    found, a series too short) names what the reader can change."""
    text = _OVERRIDE.sub(_as_set, text)
    text = _CALL.sub(_as_verb, text)
    return _ARGUMENT.sub(lambda m: option_name(m.group(1), names), text)


def _as_set(m: re.Match[str]) -> str:
    """``overrides={"data.transform": "none"}`` as the option: ``--set data.transform=none``."""
    value = m.group(3)
    word = _WORD.match(value)
    return f"--set {m.group(1) or m.group(2)}={word.group(1) if word else value}"


def _as_verb(m: re.Match[str]) -> str:
    """``rnnkit.datasets.get("imdb")`` as the verb that calls it: ``'rnnkit data get imdb'``."""
    words = ["rnnkit", m.group(1).replace("datasets.", "data ")] + ([m.group(2)] if m.group(2) else [])
    return f"'{' '.join(words)}'"


def option_name(name: str, names: dict[str, str]) -> str:
    """What the command line calls the API argument ``name``: the verb's own name for it, or ``--name-like-this``."""
    if name in names:
        return names[name]
    if name.startswith("-") or not name.isidentifier() or name.isupper():
        return name
    return "--" + name.replace("_", "-")
