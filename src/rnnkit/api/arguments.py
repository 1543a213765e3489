"""The Python API's arguments checked where they come in, so a mistake is one line naming the call and the argument.

``run.generate(123)`` used to end in a TypeError from deep inside the tokenizer; now it is
``UserTypeError: generate(prompt=...) must be a str, got int`` - a ``rnnkit.errors.UserError`` (the CLI's exit 2, the
server's 422) that is also the ``TypeError`` (or ``ValueError``) a Python user catches for a bad argument. Numbers are
checked with the rules the configuration and the CLI's options use (``rnnkit.config.Key``), so ``max_new_tokens=0``
fails with the same words as ``--max-new-tokens 0``. The front ends say the argument in their own terms
(``ArgumentError`` keeps call, argument and reason apart): the CLI names the option, the server the JSON field.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnkit.config import ConfigError, Key
from rnnkit.errors import PathError, RenamedArgumentWarning, UserTypeError, UserValueError, is_dir, lookup

UNTIL = "0.3"  # the release that drops the old argument names


def _type(value: Any) -> str:
    return type(value).__name__


def _ranged(call: str, name: str, value: Any, rules: Mapping[str, Any]) -> None:
    if rules:
        try:
            Key("", **rules).check(value, name)
        except ConfigError as e:
            raise UserValueError(name, e.reason, call) from None


def text(call: str, name: str, value: Any, *, none: bool = False, **rules: Any) -> Any:
    """A ``str`` (or None where ``none``), within ``rules`` (``pattern=...``)."""
    if value is None and none:
        return None
    if not isinstance(value, str):
        raise UserTypeError(name, f"must be a str, got {_type(value)}", call)
    _ranged(call, name, value, rules)
    return value


def integer(call: str, name: str, value: Any, *, none: bool = False, **rules: Any) -> Any:
    """An ``int`` (numpy integers too; never a bool, a float or a numeric string), within ``rules`` (``ge=1``)."""
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UserTypeError(name, f"must be an int, got {_type(value)}{_shown(value)}", call)
    value = int(value)
    _ranged(call, name, value, rules)
    return value


def number(call: str, name: str, value: Any, *, none: bool = False, **rules: Any) -> Any:
    """A finite real number (an int is one), within ``rules``."""
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserTypeError(name, f"must be a number, got {_type(value)}{_shown(value)}", call)
    value = float(value)
    if not math.isfinite(value):
        raise UserValueError(name, f"must be a finite number, got {value}", call)
    _ranged(call, name, value, rules)
    return value


def flag(call: str, name: str, value: Any) -> bool:
    """True or False (not 0/1, not "yes")."""
    if not isinstance(value, bool):
        raise UserTypeError(name, f"must be True or False, got {_type(value)}{_shown(value)}", call)
    return value


def choice(call: str, name: str, value: Any, choices: Sequence[str], *, none: bool = False) -> Any:
    """One of ``choices``."""
    value = text(call, name, value, none=none)
    if value is not None and value not in choices:
        raise UserValueError(name, f"must be one of {', '.join(map(repr, choices))}, got {value!r}", call)
    return value


def texts(call: str, name: str, value: Any) -> tuple[bool, list[str]]:
    """A text or a list (tuple, ...) of texts: (whether one text was given, the texts)."""
    if isinstance(value, str):
        return True, [value]
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Sequence) and not _iterable_texts(value):
        raise UserTypeError(name, f"must be a str or a list of str, got {_type(value)}", call)
    items = list(value)
    if not items:
        raise UserValueError(name, "is an empty list: nothing to do", call)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise UserTypeError(f"{name}[{i}]", f"must be a str, got {_type(item)}", call)
    return False, items


def _iterable_texts(value: Any) -> bool:
    """A pandas Series or a numpy array of strings counts as a list of texts."""
    return hasattr(value, "__iter__") and hasattr(value, "__len__") and not isinstance(value, Mapping)


def path(call: str, name: str, value: Any, *, none: bool = False, reachable: bool = False) -> Any:
    """A path: a ``str`` or an ``os.PathLike`` (not empty). ``reachable``: also one the system can look up (not a
    name over the file system's limit, a link loop, a directory it may not search), whether or not it exists."""
    if value is None and none:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise UserTypeError(name, f"must be a path (str or pathlib.Path), got {_type(value)}", call)
    if not os.fspath(value):
        raise UserValueError(name, "is an empty path", call)
    if reachable:
        try:
            lookup(value)
        except PathError as e:
            raise UserValueError(name, f"{os.fspath(value)}: {e.reason}", call) from None
    return Path(value)


def directory(call: str, name: str, value: Any, *, none: bool = False) -> Any:
    """A path (see ``path``) to a directory that exists (``data_dir``)."""
    found = path(call, name, value, none=none, reachable=True)
    if found is not None and not is_dir(found):
        raise UserValueError(name, f"{os.fspath(value)}: no such directory", call)
    return found


def function(call: str, name: str, value: Any, *, none: bool = True) -> Any:
    """A callable (or None)."""
    if value is None and none:
        return None
    if not callable(value):
        raise UserTypeError(name, f"must be callable, got {_type(value)}", call)
    return value


def renamed(call: str, new: str, value: Any, old: str, old_value: Any, default: Any = None) -> Any:
    """``value`` of the argument ``new``, or - for one release, with a warning - the same given under its old name
    ``old`` (``generate(words=20)`` is ``generate(max_new_tokens=20)``). Both given is an error."""
    if old_value is None:
        return value
    if value is not None and value != default:
        raise UserValueError(old, f"is the old name of {new}; give only {new}", call)
    warnings.warn(
        f"{call}({old}=...) is now {call}({new}=...); the old name is accepted until rnnkit {UNTIL}",
        RenamedArgumentWarning,
        stacklevel=3,
    )
    return old_value


def _shown(value: Any) -> str:
    """`` ("5")`` after the type of a short scalar, so ``"5"`` for an int reads as what it is."""
    if isinstance(value, (str, bool, int, float)) and len(repr(value)) <= 24:
        return f" ({value!r})"
    return ""
