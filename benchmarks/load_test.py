"""A bounded load test of `rnnkit serve` on this machine: N concurrent clients for T seconds against /v1/generate and
/v1/classify, reporting requests/s, p50/p99 latency, errors and the server's resident memory before and after.

    python benchmarks/load_test.py [--models DIR] [--data-dir DIR] [--clients 8] [--seconds 10] [--warmup 3]
        [--max-new-tokens 20] [--server-commit COMMIT | --server-src DIR] [--json-out FILE]
    python benchmarks/load_test.py --lm RUN --classifier RUN ...
    python benchmarks/load_test.py --url http://127.0.0.1:8000 --pid PID --lm-model NAME --classifier-model NAME ...

The first form trains the two models it serves itself, once, into --models (default runs/load-test-models; reused
when they are there; with --server-commit by that commit's code, into --models/COMMIT):
`rnnkit train ptb-small --max-steps 400` (2x200 LSTM, 10k words; PTB ships with rnnkit) and
`rnnkit train sms-spam --max-steps 150` (the SMS collection through rnnkit's data registry), both on one thread
with the recipes' seeds, so anyone can reproduce the serving figures with one command. The second form serves
runs you name. Both start the server (on a free loopback port) and stop it at the end; the third targets a
running server, which must be on a loopback address (this tool never sends traffic elsewhere) and whose PID gives
its memory. A warm-up phase of the same load runs first, so memory is compared at steady state: "before" is read
after the warm-up, "after" at the end, "peak" is the highest reading during the measured phase. Exit status 1 if
any request failed or memory grew by more than --max-growth-mib. Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
# the served models, as `rnnkit train` arguments: small enough to train in minutes on one thread
MODELS = {
    "lm": ["ptb-small", "--max-steps", "400"],
    "classifier": ["sms-spam", "--max-steps", "150"],
}
# an older commit's `rnnkit train --json` printed its summary without writing summary.json: kept here
TRAINED = "load_test_summary.json"
PROMPTS = ["the company said", "the market", "in the first quarter", "mr. smith", "analysts expect", "the bank"]
TEXTS = [
    "Free entry in a weekly competition to win FA Cup final tkts. Text FA to 87121 to receive entry!",
    "Ok lar, see you at home tonight",
    "URGENT! You have won a 1 week FREE membership, call now",
    "I'll be late for dinner, sorry",
    "Congratulations, you have been selected for a cash prize",
    "Did you finish the report for tomorrow?",
]


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"load_test: {url} is not a loopback address; this tool only loads servers on this machine")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(lm: str, classifier: str, port: int, src: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    cmd = [
        sys.executable,
        "-m",
        "rnnkit",
        "serve",
        f"lm={lm}",
        f"classifier={classifier}",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _full_commit(rev: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", rev], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def server_code(src: Path) -> dict[str, Any]:
    """Which code the started server ran: its source tree and that tree's git commit (None outside git)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {"src": str(src.resolve()), "commit": commit, "dirty": dirty}


def train_models(root: Path, data_dir: str | None, src: Path) -> dict[str, dict[str, Any]]:
    """The two served runs under ``root``, trained by the code in ``src`` (the server's own: an older server cannot
    read a newer run's configuration) unless a finished run is there: name -> {run, command}."""
    out = {}
    for name, args in MODELS.items():
        run = root / name
        cmd = [sys.executable, "-m", "rnnkit", "train", *args, "--out", str(run), "--quiet", "--json"]
        cmd += ["--set", "train.threads=1", "--set", "train.tensorboard=false"]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        done = _finished(run)
        if done is None:
            print(f"load_test: training the {name} model: rnnkit train {' '.join(args)}", file=sys.stderr, flush=True)
            path = f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
            env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-3000:])
                raise SystemExit(f"load_test: training the {name} model failed (exit {proc.returncode})")
            done = _finished(run)
            if done is None:  # older code writes no summary.json: keep the summary its --json printed
                (run / TRAINED).write_text(proc.stdout.strip().splitlines()[-1] + "\n")
                done = run / TRAINED
        summary = json.loads(done.read_text())
        out[name] = {"run": str(run), "command": "rnnkit train " + " ".join(args), "step": summary.get("step")}
    return out


def _finished(run: Path) -> Path | None:
    """The summary of a finished served run (rnnkit's summary.json, or the one this script kept for an older commit
    whose `rnnkit train` wrote none), or None when it must be trained."""
    for name in ("summary.json", TRAINED):
        if (run / name).is_file():
            return run / name
    return None


def checkout_src(commit: str, into: Path) -> Path:
    """The source tree of ``commit`` (git archive of src/ with the recipes/ and vendor/ it reads beside it, no
    worktree left behind): what the server, and the training of its models, run."""
    archive = into / "src.tar"
    with open(archive, "wb") as f:
        proc = subprocess.run(
            ["git", "-C", str(REPO), "archive", commit, "src", "recipes", "vendor"], stdout=f, stderr=subprocess.PIPE
        )
    if proc.returncode != 0:
        raise SystemExit(f"load_test: git archive {commit}: {proc.stderr.decode().strip()}")
    with tarfile.open(archive) as t:
        t.extractall(into, filter="data")
    return into / "src"


async def wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"load_test: the server exited ({proc.returncode}): {proc.stderr.read()[-2000:]}")
            try:
                if (await client.get(f"{url}/healthz", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"load_test: {url}/healthz did not answer 200 within {timeout:.0f} s")


async def load(
    url: str, clients: int, seconds: float, lm: str, classifier: str, max_new_tokens: int, pid: int | None = None
) -> tuple[list[tuple[str, float, int]], float]:
    """Run the clients for ``seconds``: (endpoint, latency s, status or -1 for a failed connection) per request,
    and the highest RSS seen (MiB)."""
    import httpx

    records: list[tuple[str, float, int]] = []
    deadline = time.monotonic() + seconds
    peak = 0.0

    async def client(k: int) -> None:
        n = 0
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while time.monotonic() < deadline:
                n += 1
                if (k + n) % 2:
                    path, body = (
                        "/v1/generate",
                        {
                            "model": lm,
                            "prompt": PROMPTS[(k + n) % len(PROMPTS)],
                            "max_new_tokens": max_new_tokens,
                            "temperature": 0.8,
                            "top_k": 40,
                            "seed": k * 100_000 + n,
                        },
                    )
                else:
                    path, body = "/v1/classify", {"model": classifier, "text": TEXTS[(k + n) % len(TEXTS)]}
                t0 = time.perf_counter()
                try:
                    status = (await http.post(path, json=body)).status_code
                except httpx.HTTPError:
                    status = -1
                records.append((path.rsplit("/", 1)[1], time.perf_counter() - t0, status))

    async def watch() -> None:
        nonlocal peak
        while time.monotonic() < deadline and pid is not None:
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(0.25)

    await asyncio.gather(watch(), *(client(k) for k in range(clients)))
    return records, peak


def summarise(records: list[tuple[str, float, int]], seconds: float) -> dict[str, Any]:
    def stats(rs: list[tuple[str, float, int]]) -> dict[str, Any]:
        lat = np.array([r[1] for r in rs]) * 1000 if rs else np.zeros(1)
        return {
            "requests": len(rs),
            "rps": round(len(rs) / seconds, 2),
            "errors": sum(r[2] != 200 for r in rs),
            "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2),
        }

    out = stats(records)
    out["by_endpoint"] = {e: stats([r for r in records if r[0] == e]) for e in ("generate", "classify")}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lm", help="language-model run to serve (default: the one trained into --models)")
    p.add_argument("--classifier", help="classifier run to serve (default: the one trained into --models)")
    p.add_argument(
        "--models",
        default="runs/load-test-models",
        metavar="DIR",
        help="where the served models are trained (once) when --lm/--classifier are not given (default: %(default)s)",
    )
    p.add_argument("--data-dir", help="a folder laid out like the data cache, for training them (default: registry)")
    p.add_argument("--url", help="a running server on a loopback address instead")
    p.add_argument("--pid", type=int, help="the running server's process id (for its memory)")
    p.add_argument("--lm-model", default="lm", help="model name for /v1/generate (default: %(default)s)")
    p.add_argument(
        "--classifier-model", default="classifier", help="model name for /v1/classify (default: %(default)s)"
    )
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured duration (default: %(default)s)")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up duration before measuring (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=20, help="words per generate request (default: %(default)s)")
    p.add_argument(
        "--max-growth-mib",
        type=float,
        default=20.0,
        help="RSS growth from after warm-up to the end that counts as a leak (default: %(default)s)",
    )
    p.add_argument(
        "--server-src",
        default=str(SRC),
        metavar="DIR",
        help="the rnnkit source tree the started server runs (default: this checkout's src/); another "
        "checkout's, e.g. a `git worktree` of an older commit, measures that code as 'before'",
    )
    p.add_argument(
        "--server-commit",
        metavar="COMMIT",
        help="the server runs this commit's src/ (git archive into a temporary folder): the 'before' of a change",
    )
    p.add_argument("--json-out", help="also write the JSON report here")
    args = p.parse_args(argv)
    sys.path.append(str(Path(__file__).resolve().parent))  # last: never shadows an installed module
    from _results import Provenance, write_result  # benchmarks/: the schema every published result file follows

    prov = Provenance.start(threads=1, argv=[sys.argv[0], *argv] if argv is not None else None)
    if not 0 < args.seconds <= 600 or args.warmup < 0 or not 1 <= args.clients <= 256:
        raise SystemExit("load_test: --seconds must be in (0, 600], --warmup >= 0, --clients in 1..256")
    with tempfile.TemporaryDirectory(prefix="rnnkit-load-test-") as scratch:
        return _measure(args, prov, Path(scratch), write_result)


def _measure(args: argparse.Namespace, prov: Any, scratch: Path, write_result: Any) -> int:
    """Serve, load, report: the server (and an older commit's source tree) live in ``scratch``."""
    proc = None
    models = None
    server_src = Path(args.server_src)
    if args.server_commit:
        server_src = checkout_src(args.server_commit, scratch)
    if args.url:
        url, pid = args.url.rstrip("/"), args.pid
    else:
        if not (args.lm and args.classifier):  # an older server gets models trained by its own code
            where = Path(args.models) / args.server_commit if args.server_commit else Path(args.models)
            models = train_models(where, args.data_dir, server_src)
        lm = args.lm or models["lm"]["run"]
        classifier = args.classifier or models["classifier"]["run"]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(lm, classifier, port, server_src)
        pid = proc.pid
    check_loopback(url)
    try:
        asyncio.run(wait_healthy(url, proc))
        if args.warmup:
            asyncio.run(load(url, args.clients, args.warmup, args.lm_model, args.classifier_model, args.max_new_tokens))
        before = rss_mib(pid) if pid else None
        records, peak = asyncio.run(
            load(url, args.clients, args.seconds, args.lm_model, args.classifier_model, args.max_new_tokens, pid)
        )
        after = rss_mib(pid) if pid else None
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    server = None
    if proc is not None:
        server = (
            {"src": f"git archive {args.server_commit} src", "commit": _full_commit(args.server_commit), "dirty": False}
            if args.server_commit
            else server_code(server_src)
        )
    report = {
        "url": url,
        "server": server,
        "models": models,
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "max_new_tokens": args.max_new_tokens,
        **summarise(records, args.seconds),
    }
    if before is not None and after is not None:
        report["rss_mib"] = {
            "before": round(before, 1),
            "after": round(after, 1),
            "peak": round(max(peak, after), 1),
            "growth": round(after - before, 1),
        }
    grew = report.get("rss_mib", {}).get("growth", 0.0) > args.max_growth_mib
    report["ok"] = report["errors"] == 0 and report["requests"] > 0 and not grew
    print(f"{'endpoint':<10} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for name, st in [("all", report), *report["by_endpoint"].items()]:
        print(f"{name:<10} {st['requests']:>8} {st['rps']:>8} {st['p50_ms']:>8} {st['p99_ms']:>8} {st['errors']:>6}")
    if "rss_mib" in report:
        r = report["rss_mib"]
        print(
            f"server RSS: {r['before']} MiB after warm-up, {r['after']} MiB at the end (peak {r['peak']}, "
            f"growth {r['growth']:+})"
        )
    print(json.dumps(report))
    if args.json_out:
        write_result(args.json_out, "load_test", report, prov)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
