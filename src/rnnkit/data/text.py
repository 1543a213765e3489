"""Reading user-supplied text with errors a person can act on (file, line, what is wrong)."""

from __future__ import annotations

import gzip
from pathlib import Path

from rnnkit.errors import UserError


def find_data_file(name: str, data_dir: Path | None, field: str, allow_dir: bool = False) -> Path:
    """Resolve a config path like ``data.train`` or fail naming the field (see ``rnnkit.datasets.resolve``: the
    user's own files first, then the data cache, fetching a registered data set once). ``data_dir`` is the
    explicit ``--data-dir`` or None."""
    from rnnkit.datasets.resolve import resolve

    return resolve(name, None if data_dir is None else Path(data_dir), field, allow_dir)


def read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read: {e}") from None


def read_text(path: Path) -> str:
    """Whole file as text; binary or non-UTF-8 content is reported with its line number."""
    raw = read_bytes(path)
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise UserError(f"{path}: line {line}: binary data (NUL byte); expected a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise UserError(
            f"{path}: line {line}, column {col}: not valid UTF-8 (byte 0x{raw[e.start]:02x}); convert the file to UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    return text


def split_lines(text: str) -> list[str]:
    """Lines split on ``\n`` only (a trailing ``\r`` dropped), so line numbers agree with editors and ``wc -l``.

    ``str.splitlines`` also breaks on U+0085, U+2028, form feeds and other separators that occur inside real
    sentences (the Tatoeba and PTB-style corpora have some), which would shift every later line number and cut
    one sentence into two training examples.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def is_number(field: str) -> bool:
    """Whether a CSV field parses as a float: used to name the first bad field in a row of numbers."""
    try:
        float(field)
        return True
    except ValueError:
        return False


def read_lines(path: Path) -> list[str]:
    return split_lines(read_text(path))
