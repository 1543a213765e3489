"""Where a data file named by a config field comes from: the one place that decides, for every task.

Order (the first that applies wins):

1. What the user names: an existing absolute path, a path under an explicit ``--data-dir``, or a path relative to
   the working directory (each also as ``NAME.gz``). Never downloaded over. A directory where a file is expected,
   or an explicit ``--data-dir`` that does not exist, is an error naming it.
2. With an explicit ``--data-dir`` that lacks the file: rnnkit's vendored copy (PTB), as before the registry;
   otherwise an error saying which data set the path belongs to (drop ``--data-dir`` to have rnnkit fetch it).
3. Without ``--data-dir``: a relative path the registry knows is served from the cache, or from the vendored copy,
   or fetched into the cache once (mirror first, then public sources; never when offline).

Messages name the Python arguments and functions (``data_dir=...``, ``overrides={"data.path": PATH}``,
``rnnkit.datasets.get("imdb")``); the command line says them as its options and verbs (``--data-dir``,
``--set data.path=PATH``, ``'rnnkit data get imdb'``: ``rnnkit.cli``).

Every resolution is recorded (``drain_log``) so ``run.json`` can say where each file came from; tasks resolve
lazily inside ``prepare()``, after the run directory exists, hence a log rather than a return value.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from rnnkit.datasets import store
from rnnkit.datasets.registry import BY_PATH, Dataset
from rnnkit.errors import UserError, is_dir, lookup
from rnnkit.paths import vendor_dir

_LOG: dict[str, dict[str, Any]] = {}


def drain_log() -> dict[str, dict[str, Any]]:
    """field -> {"path", "from", "dataset"} for every file resolved since the last call."""
    out = dict(_LOG)
    _LOG.clear()
    return out


def _record(field: str, path: Path, origin: str, ds: Dataset | None = None) -> Path:
    _LOG[field] = {"path": str(path.resolve()), "from": origin, "dataset": ds.name if ds else None}
    if origin == "cache" and ds is not None:  # where the cached copy was fetched from, and when
        man = store.read_manifest(ds) or {}
        _LOG[field].update({"source": man.get("source"), "fetched": man.get("fetched")})
    return path


def data_dir_option(value: str | Path | None, recorded: bool = False) -> Path | None:
    """``--data-dir`` as given (None: none given). ``recorded``: the value comes from a run's run.json, where a
    directory that no longer exists (or the old default "data" that never did) means "no explicit directory"."""
    if value in (None, ""):
        return None
    p = Path(value).expanduser()
    try:
        found = is_dir(p, "data_dir=...")
    except UserError:
        if recorded:
            return None
        raise
    if not found:
        if recorded:
            return None
        raise UserError(f"data_dir=... {value}: no such directory")
    return p


def registered(name: str) -> tuple[Dataset, str] | None:
    """The data set a relative path belongs to, and its registry path (``X`` and ``X.gz`` are the same file)."""
    key = PurePosixPath(Path(name).as_posix()).as_posix()
    key = key[2:] if key.startswith("./") else key
    for k in (key, key + ".gz", key[:-3] if key.endswith(".gz") else None):
        if k and k in BY_PATH:
            return BY_PATH[k], k
    return None


def _vendored(p: Path) -> Path | None:
    for c in (vendor_dir() / p, vendor_dir() / (str(p) + ".gz")):
        if c.is_file():
            return c
    return None


def _first_existing(candidates: list[Path], field: str) -> Path | None:
    for c in candidates:
        for v in (c, c.with_name(c.name + ".gz")):
            if lookup(v, field) is not None:
                return v
    return None


def resolve(name: str, data_dir: Path | None, field: str, allow_dir: bool = False) -> Path:
    """The file (or, with ``allow_dir``, directory) a config field names; UserError naming the field if none."""
    if not name:
        raise UserError(f'{field} is not set; point it at a file (overrides={{"{field}": PATH}})')
    if data_dir is not None and not data_dir.is_dir():
        raise UserError(f"data_dir=... {data_dir}: no such directory")
    p = Path(name).expanduser()
    candidates = [p] if p.is_absolute() else ([data_dir / p] if data_dir is not None else []) + [p]
    found = _first_existing(candidates, field)
    if found is not None:
        if found.is_dir() and not allow_dir:
            raise UserError(f"{field}: {found} is a directory; expected a file")
        origin = "data-dir" if data_dir is not None and found.is_relative_to(data_dir) else "path"
        return _record(field, found, origin)
    if p.is_absolute():
        raise UserError(f"{field}: file not found: {name}")
    hit = registered(name)
    if data_dir is not None:
        v = _vendored(p)
        if v is not None:
            return _record(field, v, "vendored", hit[0] if hit else None)
        hint = (
            (
                f"; it belongs to data set '{hit[0].name}': leave out data_dir=... to fetch it into the cache "
                f'(or rnnkit.datasets.get("{hit[0].name}"))'
            )
            if hit
            else f'; pass another data_dir=... or overrides={{"{field}": PATH}}'
        )
        raise UserError(f"{field}: file not found: {name} (looked in data_dir=... {data_dir}){hint}")
    if hit is None:
        v = _vendored(p)
        if v is not None:
            return _record(field, v, "vendored")
        raise UserError(
            f"{field}: file not found: {name} (not a file here, and not part of a data set rnnkit knows: "
            f'see rnnkit.datasets.list()); pass data_dir=... or overrides={{"{field}": PATH}}'
        )
    ds, key = hit
    cached = store.cache_dir() / key
    if store.is_cached(ds):
        return _record(field, cached, "cache", ds)
    if ds.vendored:
        v = _vendored(PurePosixPath(key))  # type: ignore[arg-type]
        if v is not None:
            return _record(field, v, "vendored", ds)
    store.ensure(ds)
    return _record(field, cached, "cache", ds)
