"""Data sets rnnkit fetches, verifies and caches itself: ``rnnkit.datasets.get("imdb")`` returns a local path.

The registry (``registry.py``) lists every data set a recipe names, with its files, public sources and checksums;
``store.py`` fetches and caches (the only code that uses pooch, platformdirs and filelock); ``resolve.py`` decides
where the file a config field names comes from. Environment:

* ``RNNKIT_DATA``: the cache directory (default: the platform cache directory, e.g. ``~/.cache/rnnkit``).
* ``RNNKIT_DATA_MIRROR``: a directory or http(s) base URL laid out like the cache, tried before public sources.
* ``RNNKIT_OFFLINE=1`` (or ``--offline``): never touch the network (a mirror directory is still read).
* ``RNNKIT_ALLOW_UNVERIFIED=1``: accept a public download nothing pins a checksum for (its sha256 is recorded).
* ``RNNKIT_DATA_TIMEOUT`` / ``RNNKIT_DATA_RETRIES`` / ``RNNKIT_DATA_LOCK_TIMEOUT``: seconds, retries, seconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rnnkit.datasets import store
from rnnkit.datasets.registry import BY_NAME, DATASETS, Dataset, Download, File, Member
from rnnkit.datasets.resolve import data_dir_option, drain_log, registered, resolve
from rnnkit.datasets.store import cache_dir, set_progress
from rnnkit.errors import UserError

__all__ = [
    "DATASETS",
    "Dataset",
    "Download",
    "File",
    "Member",
    "cache_dir",
    "data_dir_option",
    "drain_log",
    "files",
    "get",
    "info",
    "list",
    "path",
    "registered",
    "resolve",
    "set_progress",
    "verify",
]


def info(name: str) -> Dataset:
    """The registry entry of a data set; UserError listing the names if there is none."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UserError(f"unknown data set {name!r}; known: {', '.join(BY_NAME)}") from None


def path(name: str) -> Path:
    """Where the data set lives in the cache (the folder holding its files), fetched or not."""
    ds = info(name)
    parents = [str(Path(f.path).parent) for f in ds.files]
    return cache_dir() / os.path.commonpath(parents)


def get(name: str, force: bool = False) -> Path:
    """Fetch (once), verify and cache a data set; its folder in the cache (see ``path``)."""
    store.ensure(info(name), force=force)
    return path(name)


def files(name: str, fetch: bool = True) -> dict[str, Path]:
    """relative path -> local file of every file of the data set."""
    ds = info(name)
    if fetch:
        store.ensure(ds)
    return {f.path: cache_dir() / f.path for f in ds.files}


def list() -> list[dict[str, Any]]:  # noqa: A001 - the public name the CLI verb mirrors
    """One row per data set: name, title, size, cached, recipes, license, sample, sources."""
    rows = []
    for ds in DATASETS:
        rows.append(
            {
                "name": ds.name,
                "title": ds.title,
                "size": ds.size,
                "cached": store.is_cached(ds),
                "recipes": [*ds.recipes],
                "license": ds.license,
                "sample": ds.sample,
                "sample_of": ds.sample_of or None,
                "vendored": ds.vendored,
                "files": [f.path for f in ds.files],
                "downloads": [{"urls": [*d.urls], "hash": d.hash, "hash_from": d.hash_from} for d in ds.downloads],
                "path": str(path(ds.name)),
            }
        )
    return rows


def verify(names: tuple[str, ...] | None = None, root: Path | None = None) -> list[dict[str, Any]]:
    """Re-hash data sets. Without ``root``: what is cached, against the checksums recorded when it was fetched
    (themselves checked against the registry then). With ``root`` (a mirror laid out like the cache): the
    files there against the registry's checksums. One result per data set: {"name", "status", "problems"} with
    status ok | failed | not cached | absent (root only) | no checksums."""
    sets = [info(n) for n in names] if names else [*DATASETS]
    out = []
    for ds in sets:
        problems: list[str] = []
        if root is None:
            man = store.read_manifest(ds)
            if man is None:
                out.append({"name": ds.name, "status": "not cached", "problems": []})
                continue
            for f in ds.files:
                p = cache_dir() / f.path
                rec = man.get("files", {}).get(f.path, {})
                if not p.is_file():
                    problems.append(f"{f.path}: missing")
                elif store.file_sha256(p) != rec.get("sha256"):
                    problems.append(f"{f.path}: sha256 differs from the one recorded when it was fetched")
            status = "failed" if problems else "ok"
        else:
            present = [f for f in ds.files if (root / f.path).is_file()]
            if not present:
                out.append({"name": ds.name, "status": "absent", "problems": []})
                continue
            checked = 0
            for f in ds.files:
                p = root / f.path
                if not p.is_file():
                    problems.append(f"{f.path}: missing")
                    continue
                ok = store.file_matches(f, p)
                if ok is False:
                    problems.append(f"{f.path}: sha256 differs from the registry's")
                checked += ok is not None
            status = "failed" if problems else "ok" if checked else "no checksums"
        out.append({"name": ds.name, "status": status, "problems": problems})
    return out
