"""Checks a front end runs on its inputs before any model is loaded, in the words of the API and the server.

The command line calls them on its options and texts (``check_text(text, "--once", "answer")``), so a mistake costs
nothing and reads like the server's answer to the same request: an empty text, one over the input limit, a plot
into a directory that does not exist.
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnkit.config import MAX_SIZE

MAX_NEW_TOKENS = MAX_SIZE  # the most tokens one call may ask for (a server's own limit: --max-new-tokens)
MAX_INPUT_LENGTH = 2000  # characters of a text, values of a numeric sequence: the CLI's and the server's default


def check_text(
    text: str, what: str = "text", service: str = "classify", limit: int | None = None, flag: str = "--max-input-length"
) -> None:
    """Refuse an empty or whitespace-only text, or one over ``limit`` characters (default: the server's), before
    any model is loaded - the check every prediction makes (``rnnkit.predict``)."""
    from rnnkit import predict

    predict.check_text(text, what, service, MAX_INPUT_LENGTH if limit is None else limit, flag)


def check_length(text: str, what: str = "text", limit: int | None = None, flag: str = "--max-input-length") -> None:
    """Refuse a text over ``limit`` characters (default: the server's)."""
    from rnnkit import predict

    predict.check_length(text, what, MAX_INPUT_LENGTH if limit is None else limit, flag)


def check_output(path: str | os.PathLike[str], flag: str) -> Path:
    """A file about to be written (``--plot``, ``--show-attention``): its directory must exist (a typo is reported,
    never created) and it must not be a directory; a path the system cannot look up is one line too."""
    from rnnkit.figures import output_file

    return output_file(path, flag)


def parse_fractions(text: str) -> list[float]:
    """``--data-sizes 0.25,0.5,1.0``: sorted distinct fractions in (0, 1]."""
    from rnnkit.diagnose.run import parse_fractions as parse

    return parse(text)
