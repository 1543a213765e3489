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
    """Small corpora shipped with rnnkit (gzipped): PTB, served without a download (see rnnkit.datasets.resolve)."""
    return _first_dir(_PKG / "_vendor", _REPO / "vendor")
