"""Where recipes and vendored data live, whether rnnkit runs from a clone or from an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent
_REPO = _PKG.parent.parent  # src/rnnkit -> repo root, in a clone or an editable install


def _first_dir(*candidates: Path) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def recipes_dir() -> Path:
    """The shipped recipes: `recipes/` in a clone, `rnnkit/_recipes` inside a wheel."""
    return _first_dir(_PKG / "_recipes", _REPO / "recipes")


def vendor_dir() -> Path:
    """Small corpora shipped with rnnkit (gzipped), used when `--data-dir` lacks a file."""
    return _first_dir(_PKG / "_vendor", _REPO / "vendor")


def resolve_data_file(name: str, data_dir: Path) -> Path | None:
    """Find a corpus file: `data_dir/name`, then `name.gz`, then the vendored copy. None if nowhere.

    Absolute paths and paths relative to the working directory are honoured first, so
    `--set data.train=my.txt` works without a `--data-dir`.
    """
    if not name:
        return None
    p = Path(name).expanduser()
    candidates = [p] if p.is_absolute() else [data_dir / p, p]
    candidates += [c.with_name(c.name + ".gz") for c in candidates]
    if not p.is_absolute():
        candidates += [vendor_dir() / p, vendor_dir() / (str(p) + ".gz")]
    for c in candidates:
        if c.is_file():
            return c
    return None
