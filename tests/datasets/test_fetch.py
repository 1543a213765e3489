"""Fetching through rnnkit.datasets against a loopback HTTP server (127.0.0.1, started and stopped here): the
happy path, the mirror and offline paths, and every failure the cache must survive cleanly (exit status 2, one
line naming the data set, the URL and where to put the file by hand, nothing partial or unverified left)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import multiprocessing
import os
import signal
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rnnkit import datasets
from rnnkit.cli import main
from rnnkit.datasets import registry, store
from rnnkit.datasets.registry import Dataset, Download, File, Member

TEXT = b"".join(f"ham\tmessage number {i}\n".encode() for i in range(2000))
SHA = hashlib.sha256(TEXT).hexdigest()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


ARCHIVE = _zip({"toy/data.txt": TEXT, "toy/README": b"toy\n"})
ARCHIVE_SHA = hashlib.sha256(ARCHIVE).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        srv: _Server = self.server  # type: ignore[assignment]
        path = self.path.split("?")[0]
        srv.hits.append(path)
        route = srv.routes.get(path)
        if route is None:
            self.send_error(404)
            return
        mode = route.get("mode", "ok")
        if mode == "fail_once" and not route.get("failed"):
            route["failed"] = True
            self.send_error(500)
            return
        if isinstance(mode, int):
            self.send_error(mode)
            return
        if mode == "stall":
            time.sleep(route.get("delay", 3))
        body = route["body"]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode in ("truncate", "half_then_stall"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if mode == "half_then_stall":
                time.sleep(30)
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, dict]
    hits: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes, srv.hits = {}, []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("RNNKIT_DATA", str(root))
    for var in ("RNNKIT_DATA_MIRROR", "RNNKIT_OFFLINE", "RNNKIT_ALLOW_UNVERIFIED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RNNKIT_DATA_RETRIES", "0")
    monkeypatch.setenv("RNNKIT_DATA_TIMEOUT", "5")
    return root


def _register(monkeypatch, ds: Dataset) -> Dataset:
    monkeypatch.setitem(registry.BY_NAME, ds.name, ds)
    for f in ds.files:
        monkeypatch.setitem(registry.BY_PATH, f.path, ds)
    return ds


def toy(
    monkeypatch, server, hash_: str | None = "pinned", check: bool = True, archive: str = "zip", path: str = "/toy.zip"
) -> Dataset:
    """A registered data set served by ``server``: one zip whose member toy/data.txt lands at toy/data.txt."""
    server.routes.setdefault(path, {"body": ARCHIVE})
    h = f"sha256:{ARCHIVE_SHA}" if hash_ == "pinned" else hash_
    return _register(
        monkeypatch,
        Dataset(
            "toy",
            "a toy data set",
            (File("toy/data.txt", SHA, len(TEXT)),),
            (
                Download(
                    (server.url + path,),
                    (Member("toy/data.txt", "toy/data.txt", check=check),),
                    h,
                    "this test" if h else registry.UNVERIFIED,
                    archive=archive,
                ),
            ),
        ),
    )


def _clean(cache: Path, ds: Dataset) -> None:
    """Nothing of ``ds`` in the cache: no layout file, no manifest, no temp file."""
    assert not any((cache / f.path).exists() for f in ds.files)
    assert not (cache / ".rnnkit" / "manifests" / f"{ds.name}.json").exists()
    tmp = cache / ".rnnkit" / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), list(tmp.iterdir())


def _fails(capsys, *args: str) -> str:
    code = main(["data", "get", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- the happy paths -----------------------------------------------------------------------------------------------
def test_download_verifies_unpacks_and_is_reused(cache, server, monkeypatch, capsys):
    toy(monkeypatch, server)
    assert main(["data", "get", "toy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"toy": str(cache / "toy")}
    assert (cache / "toy" / "data.txt").read_bytes() == TEXT
    man = json.loads((cache / ".rnnkit" / "manifests" / "toy.json").read_text())
    assert man["files"]["toy/data.txt"]["sha256"] == SHA and "this test" in man["verified_by"][0]
    assert not any((cache / ".rnnkit" / "tmp").iterdir())
    assert not (cache / "downloads").exists()  # the archive is not kept once unpacked
    assert server.hits == ["/toy.zip"]
    assert datasets.get("toy") == cache / "toy" and server.hits == ["/toy.zip"]  # cached: no second download
    assert datasets.verify(("toy",))[0]["status"] == "ok"
    (cache / "toy" / "data.txt").write_bytes(TEXT[:-1] + b"X")
    assert main(["data", "verify", "toy"]) == 2
    assert "toy: failed" in capsys.readouterr().out


def test_a_retry_survives_one_server_error(cache, server, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA_RETRIES", "1")
    server.routes["/toy.zip"] = {"body": ARCHIVE, "mode": "fail_once"}
    toy(monkeypatch, server)
    datasets.get("toy")
    assert server.hits == ["/toy.zip", "/toy.zip"]
    assert (cache / "toy" / "data.txt").read_bytes() == TEXT


def test_mirror_directory_comes_first_and_works_offline(cache, server, monkeypatch, tmp_path):
    ds = toy(monkeypatch, server)
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "data.txt").write_bytes(TEXT)
    monkeypatch.setenv("RNNKIT_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("RNNKIT_OFFLINE", "1")
    assert datasets.get(ds.name) == cache / "toy"
    assert server.hits == []
    assert "mirror" in store.read_manifest(ds)["source"]


def test_http_mirror_and_a_bad_mirror_falls_back_to_the_public_source(cache, server, monkeypatch):
    ds = toy(monkeypatch, server)
    server.routes["/m/toy/data.txt"] = {"body": TEXT}
    monkeypatch.setenv("RNNKIT_DATA_MIRROR", server.url + "/m")
    datasets.get(ds.name)
    assert server.hits == ["/m/toy/data.txt"]
    store.remove(ds)
    server.routes["/m/toy/data.txt"] = {"body": TEXT + b"tampered"}
    datasets.get(ds.name)  # the mirror's copy fails its checksum; the public zip is used instead
    assert server.hits[-1] == "/toy.zip"
    assert (cache / "toy" / "data.txt").read_bytes() == TEXT


def test_a_download_placed_by_hand_is_checked_and_used_offline(cache, server, monkeypatch):
    ds = toy(monkeypatch, server)
    (cache / "downloads").mkdir(parents=True)
    (cache / "downloads" / "toy.zip").write_bytes(ARCHIVE)
    monkeypatch.setenv("RNNKIT_OFFLINE", "1")
    datasets.get(ds.name)
    assert server.hits == [] and (cache / "toy" / "data.txt").read_bytes() == TEXT


# -- failures ---------------------------------------------------------------------------------------------------------
def test_offline_never_touches_the_network(cache, server, monkeypatch, capsys):
    ds = toy(monkeypatch, server)
    line = _fails(capsys, "toy", "--offline")
    assert "data set 'toy'" in line and "offline" in line and f"{server.url}/toy.zip" in line
    assert str(cache / "downloads") in line  # where to put the file by hand
    assert server.hits == []
    _clean(cache, ds)


def test_connection_refused(cache, server, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    ds = _register(
        monkeypatch,
        Dataset(
            "toy",
            "toy",
            (File("toy/data.txt", SHA),),
            (
                Download(
                    (f"http://127.0.0.1:{port}/toy.zip",),
                    (Member("toy/data.txt", "toy/data.txt"),),
                    f"sha256:{ARCHIVE_SHA}",
                    "this test",
                    archive="zip",
                ),
            ),
        ),
    )
    line = _fails(capsys, "toy")
    assert f"http://127.0.0.1:{port}/toy.zip: connection refused" in line and "downloads" in line
    _clean(cache, ds)


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors(cache, server, monkeypatch, capsys, status):
    server.routes["/toy.zip"] = {"body": ARCHIVE, "mode": status}
    ds = toy(monkeypatch, server)
    line = _fails(capsys, "toy")
    assert f"{server.url}/toy.zip: HTTP {status}" in line
    _clean(cache, ds)


def test_timeout(cache, server, monkeypatch, capsys):
    monkeypatch.setenv("RNNKIT_DATA_TIMEOUT", "0.5")
    server.routes["/toy.zip"] = {"body": ARCHIVE, "mode": "stall", "delay": 3}
    ds = toy(monkeypatch, server)
    line = _fails(capsys, "toy")
    assert "timed out" in line and "toy.zip" in line
    _clean(cache, ds)


def test_checksum_mismatch_deletes_the_download(cache, server, monkeypatch, capsys):
    server.routes["/toy.zip"] = {"body": _zip({"toy/data.txt": b"something else\n"})}
    ds = toy(monkeypatch, server)
    line = _fails(capsys, "toy")
    assert "checksum mismatch" in line and "toy.zip" in line
    _clean(cache, ds)


def test_member_checked_against_our_copy_when_nothing_pins_the_archive(cache, server, monkeypatch, capsys):
    server.routes["/toy.zip"] = {"body": _zip({"toy/data.txt": b"ham\tsomething else\n"})}
    ds = toy(monkeypatch, server, hash_=None)
    line = _fails(capsys, "toy")
    assert "checksum mismatch for toy/data.txt" in line
    _clean(cache, ds)


def test_interrupted_download_then_the_next_call_restarts_it(cache, server, monkeypatch, capsys):
    server.routes["/toy.zip"] = {"body": ARCHIVE, "mode": "truncate"}
    ds = toy(monkeypatch, server)
    line = _fails(capsys, "toy")
    assert "interrupted download" in line or "connection broken" in line
    _clean(cache, ds)
    server.routes["/toy.zip"] = {"body": ARCHIVE}
    datasets.get("toy")
    assert (cache / "toy" / "data.txt").read_bytes() == TEXT


def _fetch_in_child(name: str) -> None:
    store.set_progress(False)
    datasets.get(name)


def test_killed_mid_download_leaves_nothing_and_the_next_fetch_cleans_up(cache, server, monkeypatch):
    server.routes["/toy.zip"] = {"body": ARCHIVE, "mode": "half_then_stall"}
    ds = toy(monkeypatch, server)
    child = multiprocessing.get_context("fork").Process(target=_fetch_in_child, args=("toy",))
    child.start()
    deadline = time.time() + 20
    while not server.hits and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # half the body is on its way to a temp file
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert not (cache / "toy" / "data.txt").exists() and store.read_manifest(ds) is None
    assert any((cache / ".rnnkit" / "tmp").iterdir())  # the dead process's temp dir, outside the layout
    server.routes["/toy.zip"] = {"body": ARCHIVE}
    datasets.get("toy")
    assert (cache / "toy" / "data.txt").read_bytes() == TEXT
    assert not any((cache / ".rnnkit" / "tmp").iterdir())


def test_corrupt_archive(cache, server, monkeypatch, capsys):
    server.routes["/toy.zip"] = {"body": ARCHIVE[: len(ARCHIVE) // 2]}  # a broken zip that no checksum pins
    ds = toy(monkeypatch, server, hash_=None)
    line = _fails(capsys, "toy")
    assert "corrupt archive" in line and "toy.zip" in line
    _clean(cache, ds)


def test_full_disk(cache, server, monkeypatch, capsys):
    ds = toy(monkeypatch, server)
    written = []

    def full(f, data):  # the disk fills up after the first 4 kB
        if sum(written) > 4096:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(data))
        f.write(data)

    monkeypatch.setattr(store, "_write", full)
    line = _fails(capsys, "toy")
    assert "no space left on device" in line and "data set 'toy'" in line
    _clean(cache, ds)


def test_unverified_download_is_refused_unless_allowed(cache, server, monkeypatch, capsys):
    ds = toy(monkeypatch, server, hash_=None, check=False)
    line = _fails(capsys, "toy")
    assert "unverified: no pinned checksum found" in line and "RNNKIT_ALLOW_UNVERIFIED=1" in line
    assert server.hits == []
    _clean(cache, ds)
    monkeypatch.setenv("RNNKIT_ALLOW_UNVERIFIED", "1")
    datasets.get("toy")
    assert "UNVERIFIED (RNNKIT_ALLOW_UNVERIFIED)" in " ".join(store.read_manifest(ds)["verified_by"])
    store.remove(ds)
    monkeypatch.delenv("RNNKIT_ALLOW_UNVERIFIED")
    monkeypatch.setenv("RNNKIT_OFFLINE", "1")
    (cache / "downloads").mkdir()
    (cache / "downloads" / "toy.zip").write_bytes(ARCHIVE)  # put there by hand, as the error line says: used
    datasets.get("toy")
    assert "UNVERIFIED (placed by hand)" in " ".join(store.read_manifest(ds)["verified_by"])


def test_two_processes_fetch_once(cache, server, monkeypatch):
    server.routes["/toy.zip"] = {"body": ARCHIVE, "mode": "stall", "delay": 1.5}
    ds = toy(monkeypatch, server)
    ctx = multiprocessing.get_context("fork")
    kids = [ctx.Process(target=_fetch_in_child, args=("toy",)) for _ in range(2)]
    for k in kids:
        k.start()
    for k in kids:
        k.join(60)
    assert [k.exitcode for k in kids] == [0, 0]
    assert server.hits == ["/toy.zip"]  # the second waited for the lock, then reused the first one's files
    assert (cache / "toy" / "data.txt").read_bytes() == TEXT and store.is_cached(ds)


def test_a_mirror_gz_compressed_another_way_is_accepted_by_its_content(cache, monkeypatch, tmp_path):
    """MNIST's case: our mirror gzipped the canonical files afresh, so only the decompressed bytes match."""
    import gzip

    ours = gzip.compress(TEXT, compresslevel=1, mtime=0)
    ds = _register(
        monkeypatch,
        Dataset(
            "toygz",
            "a gzipped toy data set",
            (File("toygz/data.txt.gz", hashlib.sha256(ours).hexdigest(), len(ours), content_sha256=SHA),),
        ),
    )
    mirror = tmp_path / "mirror"
    (mirror / "toygz").mkdir(parents=True)
    other = gzip.compress(TEXT, compresslevel=9, mtime=12345)
    assert other != ours
    (mirror / "toygz" / "data.txt.gz").write_bytes(other)
    monkeypatch.setenv("RNNKIT_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("RNNKIT_OFFLINE", "1")
    datasets.get(ds.name)
    assert gzip.decompress((cache / "toygz" / "data.txt.gz").read_bytes()) == TEXT
    store.remove(ds)
    (mirror / "toygz" / "data.txt.gz").write_bytes(gzip.compress(TEXT + b"tampered"))
    with pytest.raises(Exception, match="checksum mismatch"):
        datasets.get(ds.name)
    _clean(cache, ds)
