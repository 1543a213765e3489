"""The data cache: fetch a registered data set once (mirror first, then its public sources), verify it, keep it.

This is the only module that touches pooch (download, checksum, retries, progress bar), platformdirs (where the
cache lives) and filelock (one fetch per data set at a time); their errors leave here as one-line UserErrors.

Cache layout (``$RNNKIT_DATA``, default the platform cache directory, e.g. ``~/.cache/rnnkit``)::

    sms-spam/SMSSpamCollection        the files, at the relative paths recipes name (as in the project's data mirror)
    downloads/                        put a public download here by hand; rnnkit checks and unpacks it
    .rnnkit/manifests/NAME.json       written last: a data set is cached only once its manifest exists
    .rnnkit/locks/NAME.lock           held while NAME is fetched (a second process waits, then reuses)
    .rnnkit/tmp/NAME-*/               downloads and unpacking in progress; removed after, stale ones on next fetch

Nothing reaches a layout path before it is complete and verified: files are written under ``.rnnkit/tmp`` and
moved into place with ``os.replace`` (same filesystem), and the manifest that makes them count is written after.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import math
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.parse
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rnnkit.datasets.registry import Dataset, Download, File
from rnnkit.errors import UserError, os_reason

CHUNK = 1 << 20
_TRUE = ("1", "true", "yes", "on")
_progress: bool | None = None  # None: a progress bar when stderr is a terminal


class _SourceFailed(Exception):
    """One source could not deliver the data set; the next one is tried, and all are named if none can."""


# -- settings (environment) -----------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$RNNKIT_DATA``, else the platform's user cache directory for rnnkit (``~/.cache/rnnkit`` on Linux)."""
    env = os.environ.get("RNNKIT_DATA")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("rnnkit")).resolve()


def offline() -> bool:
    """``RNNKIT_OFFLINE=1`` (also set by ``--offline``): no network at all; a mirror directory is still read."""
    return os.environ.get("RNNKIT_OFFLINE", "").strip().lower() in _TRUE


def allow_unverified() -> bool:
    return os.environ.get("RNNKIT_ALLOW_UNVERIFIED", "").strip().lower() in _TRUE


def mirror() -> str | None:
    """``RNNKIT_DATA_MIRROR``: a directory or an http(s) base URL laid out like the cache."""
    m = os.environ.get("RNNKIT_DATA_MIRROR", "").strip()
    return m or None


def _float_env(name: str, default: float, what: str = "a number of seconds", low: float = 0.0) -> float:
    """A number from the environment (``RNNKIT_DATA_TIMEOUT=30``): finite and >= ``low``, else one line naming it."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < low:
        raise UserError(f"{name}: expected {what} >= {low:g}, got {raw!r}")
    return value


def set_progress(enabled: bool | None) -> None:
    """Progress bars for downloads: True/False, or None for "when stderr is a terminal" (the CLI's quiet flags)."""
    global _progress
    _progress = enabled


def _show_progress() -> bool:
    return sys.stderr.isatty() if _progress is None else _progress


def _say(text: str) -> None:
    if _show_progress():
        print(f"rnnkit: {text}", file=sys.stderr, flush=True)


# -- cache state -------------------------------------------------------------------------------------------------
def _state() -> Path:
    return cache_dir() / ".rnnkit"


def _manifest_path(ds: Dataset) -> Path:
    return _state() / "manifests" / f"{ds.name}.json"


def read_manifest(ds: Dataset) -> dict[str, Any] | None:
    try:
        return json.loads(_manifest_path(ds).read_text())
    except (OSError, ValueError):
        return None


def is_cached(ds: Dataset) -> bool:
    """Whether every file of ``ds`` is in the cache as its manifest recorded it (sizes only: cheap enough to ask
    before every run; ``rnnkit data verify`` re-hashes)."""
    man = read_manifest(ds)
    if not man:
        return False
    root = cache_dir()
    recorded = man.get("files", {})
    for f in ds.files:
        rec = recorded.get(f.path)
        p = root / f.path
        if rec is None or not p.is_file() or p.stat().st_size != rec.get("size"):
            return False
    return True


def _write(f: IO[bytes], data: bytes) -> None:
    """Every byte rnnkit puts in the cache goes through here (one place to see, and to test, a full disk)."""
    f.write(data)


class _Sink:
    """A file object for pooch's HTTP downloader that writes through ``_write``."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f

    def write(self, data: bytes) -> int:
        _write(self.f, data)
        return len(data)

    def flush(self) -> None:
        self.f.flush()


def _copy_hashing(src: IO[bytes], dst: Path, compress: bool = False) -> tuple[str, str, int]:
    """Copy a stream to ``dst`` (gzip-compressed if asked); (sha256 of the input, sha256 of the file, size)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    h_in, h_out = hashlib.sha256(), hashlib.sha256()
    with open(dst, "wb") as raw:
        out: Any = (
            gzip.GzipFile(filename="", mode="wb", fileobj=_HashingWriter(raw, h_out), mtime=0)
            if compress
            else _HashingWriter(raw, h_out)
        )
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            h_in.update(chunk)
            out.write(chunk)
        if compress:
            out.close()
        raw.flush()
        os.fsync(raw.fileno())
    return h_in.hexdigest(), h_out.hexdigest(), dst.stat().st_size


class _HashingWriter:
    def __init__(self, f: IO[bytes], h: Any) -> None:
        self.f, self.h = f, h

    def write(self, data: bytes) -> int:
        self.h.update(data)
        _write(self.f, data)
        return len(data)

    def flush(self) -> None:
        self.f.flush()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def content_sha256(path: Path) -> str:
    """sha256 of a .gz file's decompressed bytes."""
    h = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def file_matches(f: File, path: Path) -> bool | None:
    """Whether ``path`` holds our copy of ``f`` (by bytes, or for .gz by decompressed content); None if unknown."""
    if f.sha256 is None:
        return None
    if file_sha256(path) == f.sha256:
        return True
    if f.content_sha256 and path.name.endswith(".gz"):
        try:
            return content_sha256(path) == f.content_sha256
        except (OSError, EOFError, zlib.error):
            return False
    return False


# -- what a fetch produces ----------------------------------------------------------------------------------------
@dataclass
class _Produced:
    files: dict[str, dict[str, Any]]  # layout path -> {"sha256", "size"}
    source: str
    verified_by: list[str]


def _check(f: File, sha_in: str, sha_out: str, compressed: bool, where: str) -> str:
    """Compare a produced file with our copy; return how it was verified ('' when we hold no copy)."""
    if compressed:
        want = f.content_sha256
        got = sha_in
    else:
        want, got = f.sha256, sha_out
    if want is None:
        return ""
    if got != want:
        raise _SourceFailed(
            f"{where}: checksum mismatch for {f.path} (sha256 {got[:12]}..., expected "
            f"{want[:12]}...; the bad file was deleted)"
        )
    return f"{f.path}: sha256 of our copy"


# -- mirror ---------------------------------------------------------------------------------------------------------
def _from_mirror_dir(ds: Dataset, base: Path, tree: Path) -> _Produced:
    files, how = {}, []
    for f in ds.files:
        src = base / f.path
        if not src.is_file():
            raise _SourceFailed(f"mirror {base}: no {f.path}")
        with open(src, "rb") as s:
            _, sha, size = _copy_hashing(s, tree / f.path)
        # a .gz copy compressed another way is the same data set when its decompressed content matches
        if f.sha256 is not None and sha != f.sha256 and not file_matches(f, tree / f.path):
            raise _SourceFailed(
                f"mirror {base}: checksum mismatch for {f.path} (sha256 {sha[:12]}..., expected {f.sha256[:12]}...)"
            )
        files[f.path] = {"sha256": sha, "size": size}
        how.append(f"{f.path}: registry sha256" if f.sha256 else f"{f.path}: mirror copy (no registry checksum)")
    return _Produced(files, f"mirror {base}", how)


def _from_mirror_url(ds: Dataset, base: str, tree: Path, work: Path) -> _Produced:
    if offline():
        raise _SourceFailed(f"mirror {base}: offline (RNNKIT_OFFLINE)")
    files, how = {}, []
    _say(f"downloading {ds.name} from the mirror {base}")
    for f in ds.files:
        url = base.rstrip("/") + "/" + urllib.parse.quote(f.path)
        got = _http_get(url, f"sha256:{f.sha256}" if f.sha256 else None, work / "mirror", Path(f.path).name)
        dst = tree / f.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, dst)
        files[f.path] = {"sha256": file_sha256(dst), "size": dst.stat().st_size}
        how.append(f"{f.path}: registry sha256" if f.sha256 else f"{f.path}: mirror copy (no registry checksum)")
    return _Produced(files, f"mirror {base}", how)


# -- public downloads -------------------------------------------------------------------------------------------------
def _http_get(url: str, known_hash: str | None, work: Path, fname: str) -> Path:
    """Download ``url`` into ``work/fname`` through pooch (temp file, checksum, retries); _SourceFailed if not."""
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")
    retries = _float_env("RNNKIT_DATA_RETRIES", 2, "a whole number of retries")
    if not retries.is_integer():
        raise UserError(f"RNNKIT_DATA_RETRIES: expected a whole number of retries >= 0, got {retries:g}")
    retries = int(retries)
    timeout = _float_env("RNNKIT_DATA_TIMEOUT", 60)
    http = pooch.HTTPDownloader(progressbar=_show_progress(), timeout=timeout)

    def download(u: str, output_file: str, p: Any) -> None:
        with open(output_file, "w+b") as f:
            http(u, _Sink(f), p)

    work.mkdir(parents=True, exist_ok=True)
    fetcher = pooch.create(
        path=work, base_url="", registry={fname: known_hash}, urls={fname: url}, retry_if_failed=retries
    )
    try:
        return Path(fetcher.fetch(fname, downloader=download))
    except requests.exceptions.HTTPError as e:
        code = e.response.status_code if e.response is not None else "?"
        reason = e.response.reason if e.response is not None else ""
        raise _SourceFailed(f"{url}: HTTP {code} {reason}".rstrip()) from None
    except requests.exceptions.ChunkedEncodingError:
        raise _SourceFailed(f"{url}: connection broken (interrupted download)") from None
    except requests.exceptions.Timeout:
        raise _SourceFailed(f"{url}: timed out after {timeout:g} s (RNNKIT_DATA_TIMEOUT)") from None
    except requests.exceptions.ConnectionError as e:
        text = str(e)
        why = (
            "connection refused"
            if "refused" in text.lower()
            else "connection broken (interrupted download)"
            if "broken" in text.lower() or "incomplete" in text.lower()
            else "cannot connect"
        )
        raise _SourceFailed(f"{url}: {why}") from None
    except requests.exceptions.RequestException as e:
        raise _SourceFailed(f"{url}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    except ValueError as e:  # pooch: the checksum does not match (the temp file is already deleted)
        if "hash" not in str(e).lower():
            raise
        raise _SourceFailed(f"{url}: checksum mismatch ({known_hash} expected; the bad file was deleted)") from None


def _by_hand(dl: Download) -> Path | None:
    p = cache_dir() / "downloads" / dl.filename
    return p if p.is_file() else None


def _verify_download(path: Path, dl: Download, where: str) -> None:
    if dl.hash is None:
        return
    import pooch

    if not pooch.file_hash(str(path), alg=dl.hash.split(":", 1)[0]) == dl.hash.split(":", 1)[1]:
        raise _SourceFailed(f"{where}: checksum mismatch (expected {dl.hash})")


def _unverified(ds: Dataset, dl: Download) -> bool:
    """A download nothing can check: no pinned hash, and some member is not compared with a copy we hold."""
    if dl.hash is not None:
        return False
    files = {f.path: f for f in ds.files}
    return not all(m.check and files[m.path].sha256 is not None for m in dl.members)


@contextlib.contextmanager
def _open_member(archive: Path, kind: str, name: str, where: str) -> Iterator[IO[bytes]]:
    """A member of a zip or tar archive (or the file itself) as a binary stream; corrupt archives fail cleanly."""
    try:
        if kind == "file":
            with open(archive, "rb") as f:
                yield f
        elif kind == "zip":
            with zipfile.ZipFile(archive) as z:
                try:
                    info = z.getinfo(name)
                except KeyError:
                    raise _SourceFailed(f"{where}: no member {name!r} in the archive") from None
                with z.open(info) as f:
                    yield f
        else:
            with tarfile.open(archive, "r:*") as t:
                try:
                    info = t.getmember(name)
                except KeyError:
                    raise _SourceFailed(f"{where}: no member {name!r} in the archive") from None
                f = t.extractfile(info)
                if f is None:
                    raise _SourceFailed(f"{where}: member {name!r} is not a file")
                with f:
                    yield f
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _SourceFailed(f"{where}: corrupt archive ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def _from_public(ds: Dataset, tree: Path, work: Path) -> _Produced:
    if not ds.downloads:
        raise _SourceFailed(
            "no public download (a re-packaging of ours: use RNNKIT_DATA_MIRROR or put the files in place by hand)"
        )
    files_by_path = {f.path: f for f in ds.files}
    files, how, sources = {}, [], []
    for i, dl in enumerate(ds.downloads):
        local = _by_hand(dl)  # a person's deliberate choice: used even when nothing can verify it
        if local is None and _unverified(ds, dl) and not allow_unverified():
            raise _SourceFailed(
                f"{dl.urls[0]}: {dl.hash_from} for this download, so rnnkit will not use it "
                f"unless RNNKIT_ALLOW_UNVERIFIED=1"
            )
        if local is not None:
            _verify_download(local, dl, str(local))
            where = str(local)
        else:
            if offline():
                raise _SourceFailed(f"{dl.urls[0]}: offline (RNNKIT_OFFLINE)")
            errors = []
            for url in dl.urls:
                try:
                    _say(f"downloading {ds.name}: {url}" + (f" ({dl.size / 1e6:.1f} MB)" if dl.size else ""))
                    local = _http_get(url, dl.hash, work / f"dl{i}", dl.filename)
                    where = url
                    break
                except _SourceFailed as e:
                    errors.append(str(e))
            if local is None:
                raise _SourceFailed("; ".join(errors))
        if dl.hash:
            how.append(f"{dl.filename}: {dl.hash.split(':')[0]} pinned by {dl.hash_from}")
        elif _unverified(ds, dl):
            why = "placed by hand" if local.parent == cache_dir() / "downloads" else "RNNKIT_ALLOW_UNVERIFIED"
            how.append(f"{dl.filename}: UNVERIFIED ({why}), sha256 {file_sha256(local)}")
        sources.append(where)
        for m in dl.members:
            f = files_by_path[m.path]
            with _open_member(local, dl.archive, m.name, where) as src:
                sha_in, sha_out, size = _copy_hashing(src, tree / m.path, compress=m.gzip)
            if m.check:
                note = _check(f, sha_in, sha_out, m.gzip, where)
                if note:
                    how.append(note)
            files[m.path] = {"sha256": sha_out, "size": size}
        if local.parent != cache_dir() / "downloads":
            local.unlink(missing_ok=True)  # unpacked: the archive itself is not kept (unless put there by hand)
    missing = [p for p in files_by_path if p not in files]
    if missing:  # a registry mistake, not a user's
        raise RuntimeError(f"data set {ds.name}: downloads do not produce {missing}")
    return _Produced(files, "; ".join(sources), how)


def _from_by_hand_layout(ds: Dataset) -> _Produced | None:
    """Files a person put at their layout paths (no manifest): adopted when every one matches our copy."""
    root = cache_dir()
    if not all((root / f.path).is_file() for f in ds.files) or any(f.sha256 is None for f in ds.files):
        return None
    if not all(file_matches(f, root / f.path) for f in ds.files):
        return None
    files = {f.path: {"sha256": file_sha256(root / f.path), "size": (root / f.path).stat().st_size} for f in ds.files}
    return _Produced(files, f"placed by hand in {root}", [f"{f.path}: registry sha256" for f in ds.files])


# -- the fetch ------------------------------------------------------------------------------------------------------
def _hint(ds: Dataset) -> str:
    root = cache_dir()
    if ds.downloads:
        names = ", ".join(dict.fromkeys(d.filename for d in ds.downloads))
        where = f"put {names} into {root / 'downloads'}"
        if all(f.sha256 for f in ds.files):
            where += f" (or the files under {root})"
    else:
        where = "put " + ", ".join(f.path for f in ds.files) + f" under {root}"
    return f"{where}, or set RNNKIT_DATA_MIRROR to a copy laid out like the cache (DATASET/FILE paths)"


@contextlib.contextmanager
def _locked(ds: Dataset) -> Iterator[None]:
    import filelock

    lock_dir = _state() / "locks"
    lock = filelock.FileLock(str(lock_dir / f"{ds.name}.lock"))

    def read_only(e: OSError) -> UserError:  # a shared copy, a read-only mount: nothing can be fetched into it
        return UserError(
            f"data set '{ds.name}' is not in the data cache {cache_dir()}, and rnnkit cannot fetch it there "
            f"({os_reason(e) or e}: {lock.lock_file}); point RNNKIT_DATA at a writable directory, or fetch it "
            f'(rnnkit.datasets.get("{ds.name}")) where the cache is writable'
        )

    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=1)
    except filelock.Timeout:  # (an OSError too: caught first) another process holds it
        _say(f"waiting for another rnnkit process that is fetching {ds.name}")
        try:
            lock.acquire(timeout=_float_env("RNNKIT_DATA_LOCK_TIMEOUT", 3600))
        except filelock.Timeout:
            raise UserError(
                f"data set '{ds.name}': another process has been fetching it for too long (lock "
                f"{lock.lock_file}); try again, or remove the lock if no rnnkit process runs"
            ) from None
        except OSError as e:
            raise read_only(e) from None
    except OSError as e:
        raise read_only(e) from None
    try:
        yield
    finally:
        lock.release()


def _write_manifest(ds: Dataset, produced: _Produced) -> None:
    man = {
        "name": ds.name,
        "files": produced.files,
        "source": produced.source,
        "verified_by": produced.verified_by,
        "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = _manifest_path(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(man, indent=1) + "\n")
    os.replace(tmp, path)


def _install(tree: Path, produced: _Produced) -> None:
    root = cache_dir()
    for rel in produced.files:
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tree / rel, dst)


def ensure(ds: Dataset, force: bool = False) -> None:
    """Make ``ds`` cached: mirror (directory or URL), then its public downloads; UserError naming every failure."""
    if not force and is_cached(ds):
        return
    try:
        _state().mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"data cache {cache_dir()}: cannot create it ({e.strerror}); set RNNKIT_DATA") from None
    with _locked(ds):
        if not force and is_cached(ds):  # another process fetched it while we waited
            return
        tmp_root = _state() / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        for stale in tmp_root.glob(f"{ds.name}-*"):  # left by a killed process: we hold the lock, nobody uses it
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f"{ds.name}-", dir=tmp_root))
        try:
            produced = None if force else _from_by_hand_layout(ds)
            if produced is not None:
                _write_manifest(ds, produced)
                return
            errors = []
            sources = []
            m = mirror()
            if m:
                sources.append(("mirror", m))
            sources.append(("public", ""))
            for i, (kind, base) in enumerate(sources):
                tree = work / f"tree{i}"
                try:
                    if kind == "mirror" and not base.startswith(("http://", "https://")):
                        if not Path(base).expanduser().is_dir():
                            raise _SourceFailed(f"mirror {base}: no such directory (RNNKIT_DATA_MIRROR)")
                        _say(f"copying {ds.name} from the mirror {base}")
                        produced = _from_mirror_dir(ds, Path(base).expanduser(), tree)
                    elif kind == "mirror":
                        produced = _from_mirror_url(ds, base, tree, work)
                    else:
                        produced = _from_public(ds, tree, work)
                    break
                except _SourceFailed as e:
                    errors.append(str(e))
                    shutil.rmtree(tree, ignore_errors=True)
            if produced is None:
                raise UserError(f"data set '{ds.name}' could not be fetched ({'; '.join(errors)}); {_hint(ds)}")
            _install(tree, produced)
            _write_manifest(ds, produced)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise UserError(
                    f"data set '{ds.name}': no space left on device in {cache_dir()} (nothing was "
                    f"kept); free some space or point RNNKIT_DATA at another disk"
                ) from None
            raise UserError(
                f"data set '{ds.name}': {e.strerror or e} ({e.filename or cache_dir()}); {_hint(ds)}"
            ) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)


def remove(ds: Dataset) -> None:
    """Forget a cached data set: manifest first (so a half-removed set never counts as cached), then its files."""
    _manifest_path(ds).unlink(missing_ok=True)
    for f in ds.files:
        (cache_dir() / f.path).unlink(missing_ok=True)
