"""Benchmark result files (schema ``rnnkit-result/1``): what was measured, and by what, where, when and how.

A figure is only worth publishing if someone can re-measure it, so every benchmark writes its figures together
with the command, git commit, machine (CPU model and the flags that decide its speed, threads), software versions,
seeds and dates. The schema is described in /work/notes/results-schema.md and in docs/results.md's last section;
benchmarks/results_tables.py renders the published files into docs/results.md.

    prov = Provenance.start(seeds=[1234], data_dir=args.data_dir, threads=1)
    ...  # the measured work
    write_result(path, "classify", payload, prov)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "rnnkit-result/1"
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

# CPU features that change which kernels run (and so the speed): AVX-512 and AMX decide whether bf16 is native
SPEED_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
# environment variables that change the figures themselves, and so are shown in the command line (beside the
# thread counts): a forced recurrence, a capped instruction set, and glibc's allocator (whether freed tensors go
# back to the kernel and come back as fresh zeroed pages)
ALLOCATOR_ENV = (
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_ARENA_MAX",
    "LD_PRELOAD",
)
FIGURE_ENV = ("RNNKIT_RECURRENCE", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", *ALLOCATOR_ENV)
# environment variables that change threads, devices or rnnkit's behaviour
ENV_KEYS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "PYTORCH_ENABLE_MPS_FALLBACK",
    *FIGURE_ENV,
)
PROVENANCE_KEYS = (
    "command",
    "argv",
    "env",
    "git",
    "machine",
    "software",
    "seeds",
    "data_dir",
    "started",
    "finished",
    "wall_s",
    "reconstructed",
)
MACHINE_KEYS = ("cpu", "cpu_flags", "cpu_capability", "cpus", "threads", "memory_gib", "gpu", "os", "load_avg")


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _cpuinfo() -> tuple[str, list[str]]:
    """(model name, speed-relevant flags) from /proc/cpuinfo; elsewhere the platform's processor string."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model or platform.machine(), [f for f in SPEED_FLAGS if f in flags]


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def measured(path: str) -> bool:
    """Whether a changed file can change what a benchmark measures: not the results, docs, tests or prose, nor the
    scripts that only render and compare result files."""
    if not path or path.startswith(("benchmarks/results/", "docs/", "tests/")) or path.endswith(".md"):
        return False
    return path not in ("benchmarks/results_tables.py", "benchmarks/_figures.py")


def _git() -> dict[str, Any]:
    """Commit, branch, and whether the code measured differs from it (results and docs do not count)."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None, "dirty_files": []}
    branch = (git("rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None
    status = git("status", "--porcelain", "--untracked-files=no") or ""
    changed = sorted(
        line[3:].strip()
        for line in status.splitlines()
        if line[3:].strip() and not line[3:].startswith(("benchmarks/results/", "docs/"))
    )
    dirty = any(measured(f) for f in changed)  # every changed file is listed; only code counts as dirty
    return {"commit": commit.strip(), "branch": branch, "dirty": dirty, "dirty_files": changed}


def _software() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "rnnkit", "numpy"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                out[name] = None
                continue
        out[name] = getattr(module, "__version__", None)
    return out


def _gpu() -> str | None:
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:
            return None
    try:
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except RuntimeError:
        return None


def command_line(argv: list[str], env: dict[str, str]) -> str:
    """The command as someone would type it from the repository root: env prefix + python + the script's argv."""
    args = list(argv)
    if args and Path(args[0]).is_absolute():
        with contextlib.suppress(ValueError):  # a script outside the repository keeps its absolute path
            args[0] = str(Path(args[0]).resolve().relative_to(REPO))
    # threads, a forced recurrence, a capped instruction set and the allocator change the figures; the
    # mirror/offline settings only where data comes from
    prefix = [f"{k}={shlex.quote(v)}" for k, v in env.items() if k.endswith("_THREADS") or k in FIGURE_ENV]
    return " ".join([*prefix, "python", *(shlex.quote(a) for a in args)])


@dataclass
class Provenance:
    """Everything but the figures; started before the measured work (load and start time), finished at write."""

    argv: list[str]
    env: dict[str, str]
    git: dict[str, Any]
    machine: dict[str, Any]
    software: dict[str, str | None]
    seeds: list[int]
    data_dir: str | None
    started: float
    reconstructed: str | None = None  # set only for figures measured before this schema existed

    @classmethod
    def start(
        cls,
        seeds: list[int] | tuple[int, ...] = (),
        data_dir: str | os.PathLike | None = None,
        threads: int | None = None,
        argv: list[str] | None = None,
    ) -> Provenance:
        """Capture the provenance of a measurement about to start.

        ``threads``: the threads the measured work runs with, when it runs in a child process (``train.threads``,
        OMP_NUM_THREADS); by default OMP_NUM_THREADS, else torch's own count in this process.
        """
        env = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}
        env.update({k: v for k, v in os.environ.items() if k.startswith("RNNKIT_") and "TOKEN" not in k})
        if threads is None:
            threads = int(env["OMP_NUM_THREADS"]) if env.get("OMP_NUM_THREADS", "").isdigit() else None
        if threads is None:
            try:
                import torch

                threads = torch.get_num_threads()
            except ImportError:
                threads = os.cpu_count()
        cpu, flags = _cpuinfo()
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:
            cpus = os.cpu_count() or 0
        try:
            import torch

            capability = torch.backends.cpu.get_cpu_capability()
        except (ImportError, AttributeError):
            capability = None
        machine = {
            "cpu": cpu,
            "cpu_flags": flags,
            "cpu_capability": capability,
            "cpus": cpus,
            "threads": threads,
            "memory_gib": _memory_gib(),
            "gpu": _gpu(),
            "os": platform.platform(),
            "load_avg": {"start": _load(), "end": None},
        }
        return cls(
            argv=list(sys.argv if argv is None else argv),
            env=env,
            git=_git(),
            machine=machine,
            software=_software(),
            seeds=[int(s) for s in seeds],
            data_dir=str(Path(data_dir).resolve()) if data_dir else None,
            started=time.time(),
        )

    def finish(self) -> dict[str, Any]:
        """The provenance object of the file, stamped now (finish time, wall time, load at the end)."""
        now = time.time()
        machine = dict(self.machine, load_avg=dict(self.machine["load_avg"], end=_load()))
        return {
            "command": command_line(self.argv, self.env),
            "argv": self.argv,
            "env": self.env,
            "git": self.git,
            "machine": machine,
            "software": self.software,
            "seeds": self.seeds,
            "data_dir": self.data_dir,
            "started": _utc(self.started),
            "finished": _utc(now),
            "wall_s": round(now - self.started, 1),
            "reconstructed": self.reconstructed,
        }


def _plain(x: Any) -> Any:
    """JSON without NaN/inf (they are not JSON): non-finite floats become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def write_result(path: str | os.PathLike, benchmark: str, result: dict[str, Any], prov: Provenance) -> Path:
    """Write ``{"schema", "benchmark", "provenance", "result"}`` to ``path`` atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"schema": SCHEMA, "benchmark": benchmark, "provenance": prov.finish(), "result": _plain(result)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


class ResultError(ValueError):
    """A result file that does not follow the schema (named in the message)."""


def check_result(doc: Any, source: str = "result") -> dict[str, Any]:
    """Raise ResultError naming the first missing or malformed field; return ``doc``."""
    if not isinstance(doc, dict):
        raise ResultError(f"{source}: not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise ResultError(f"{source}: schema {doc.get('schema')!r}, expected {SCHEMA!r}")
    for key, kind in (("benchmark", str), ("provenance", dict), ("result", dict)):
        if not isinstance(doc.get(key), kind):
            raise ResultError(f"{source}: {key!r} missing or not a {kind.__name__}")
    prov = doc["provenance"]
    for key in PROVENANCE_KEYS:
        if key not in prov:
            raise ResultError(f"{source}: provenance.{key} missing")
    if not isinstance(prov["command"], str) or not prov["command"]:
        raise ResultError(f"{source}: provenance.command is empty")
    for key in MACHINE_KEYS:
        if key not in prov["machine"]:
            raise ResultError(f"{source}: provenance.machine.{key} missing")
    if not isinstance(prov["seeds"], list) or not all(isinstance(s, int) for s in prov["seeds"]):
        raise ResultError(f"{source}: provenance.seeds must be a list of integers")
    commit = prov["git"].get("commit") if isinstance(prov["git"], dict) else None
    if commit is not None and (len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit)):
        raise ResultError(f"{source}: provenance.git.commit {commit!r} is not a 40-hex commit id")
    for key in ("started", "finished"):
        if prov[key] is None and prov["reconstructed"]:  # measured before this schema: the time may be unknown
            continue
        try:
            dt.datetime.strptime(prov[key], "%Y-%m-%dT%H:%M:%SZ")
        except (TypeError, ValueError):
            raise ResultError(f"{source}: provenance.{key} {prov[key]!r} is not YYYY-MM-DDTHH:MM:SSZ") from None
    return doc


def read_result(path: str | os.PathLike) -> dict[str, Any]:
    """Load a result file and check it against the schema."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ResultError(f"{path}: {e}") from None
    return check_result(doc, str(path))
