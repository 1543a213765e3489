"""The registry itself: every data set a recipe names is in it, entries are consistent, and the checksums match
our mirror (the shared data directory, when RNNKIT_DATA_MIRROR names it) and the vendored PTB."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from conftest import run_cli
from rnnkit import datasets
from rnnkit.datasets.registry import DATASETS, OUR_COPY, UNVERIFIED
from rnnkit.paths import vendor_dir
from rnnkit.tasks.recipes import list_recipes, load_recipe

HASH = re.compile(r"^(sha256:[0-9a-f]{64}|md5:[0-9a-f]{32})$")
# sets the shared data directory (our mirror) holds in full (the others are public downloads only)
MIRRORED = (
    "ptb",
    "tinyshakespeare",
    "spa-eng",
    "sms-spam",
    "sst2",
    "sentiment-sentences",
    "review-polarity",
    "har-subset",
    "mnist",
    "mnist-5k",
    "cornell-sample",
    "dialogs",
    "ucr-uea",
    "timeseries",
)


def _recipe_paths() -> dict[str, list[str]]:
    out = {}
    for name, _ in list_recipes():
        d = load_recipe(name).data
        paths = []
        for field in ("train", "valid", "test", "path", "pairs"):
            v = getattr(d, field, None)
            paths += [p for p in (v if isinstance(v, list) else [v]) if isinstance(p, str) and p]
        out[name] = paths
    return out


def test_every_file_a_recipe_names_is_registered_and_listed():
    listed = {r["name"]: r for r in json.loads(run_cli("data", "list", "--json").stdout)}
    for recipe, paths in _recipe_paths().items():
        for p in paths:
            hit = datasets.registered(p)
            assert hit is not None, f"recipe {recipe}: {p} is in no registered data set"
            assert recipe in hit[0].recipes, f"data set {hit[0].name} does not list recipe {recipe}"
            assert hit[0].name in listed
    assert set(listed) == {d.name for d in DATASETS}


def test_entries_are_consistent():
    names = [d.name for d in DATASETS]
    assert len(names) == len(set(names))
    paths = [f.path for d in DATASETS for f in d.files]
    assert len(paths) == len(set(paths)), "a file belongs to one data set"
    for d in DATASETS:
        files = {f.path: f for f in d.files}
        assert d.license and d.title
        for f in d.files:
            assert f.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", f.sha256)
            assert f.content_sha256 is None or f.path.endswith(".gz")
        produced = [m.path for dl in d.downloads for m in dl.members]
        assert all(p in files for p in produced), d.name
        if d.downloads:
            assert set(produced) == set(files), f"{d.name}: its downloads must produce every file"
        else:
            assert d.sample or d.name == "dialogs", f"{d.name}: only our re-packagings lack a public download"
            assert all(f.sha256 for f in d.files)
        for dl in d.downloads:
            assert dl.urls and all(u.startswith(("http://", "https://")) for u in dl.urls)
            assert dl.archive in ("file", "zip", "tar")
            if dl.hash is not None:
                assert HASH.match(dl.hash) and dl.hash_from not in (UNVERIFIED, OUR_COPY)
            else:  # nothing pinned: verified by our copies of its members, or marked unverified
                assert dl.hash_from.startswith((UNVERIFIED, OUR_COPY))
            for m in dl.members:
                assert m.gzip is False or m.path.endswith(".gz")


def test_vendored_ptb_is_the_registered_ptb():
    ptb = datasets.info("ptb")
    for f in ptb.files[:3]:
        raw = gzip.decompress((vendor_dir() / (f.path + ".gz")).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == f.sha256 and len(raw) == f.size


@pytest.mark.needs_data(*MIRRORED)
def test_the_mirror_matches_the_registry():
    mirror = Path(os.environ["RNNKIT_DATA_MIRROR"])
    results = {r["name"]: r for r in datasets.verify(root=mirror)}
    assert [r for r in results.values() if r["status"] == "failed"] == []
    for name in MIRRORED:
        assert results[name]["status"] == "ok", results[name]
    proc = run_cli("data", "verify", "--dir", str(mirror), "--json")
    assert json.loads(proc.stdout)["ok"] is True
