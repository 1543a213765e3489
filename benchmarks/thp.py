"""Transparent huge pages for PyTorch's CPU tensors (``THP_MEM_ALLOC_ENABLE``): real ``rnnkit train`` commands
with the switch off and on, each in a fresh process, alternating.

    python benchmarks/thp.py [--rounds 3] [--threads 1] [--data-dir DIR] [--json-out FILE]

Why: a training step frees and allocates the same large activations every step. glibc hands a freed block over
32 MB back to the kernel, so the next step touches fresh pages again: one page fault per 4 KB page, each zeroed,
and on a virtual machine each costlier still (most of a convolutional classifier's system time). PyTorch's own
switch ``THP_MEM_ALLOC_ENABLE=1`` aligns its CPU tensors of 2 MB and more to 2 MB and asks the kernel for huge
pages there (``madvise``): one fault per 2 MB. It is read once, when torch loads, hence one process per
measurement; the ``rnnkit`` command sets it unless the environment does (``rnnkit.cli``).

Each workload is a command a user runs, with its data from the registry (``--data-dir``); measured: the median
of the training rates the run logged (tokens/s or series/s, the first record left out as the warm-up), the
command's wall time, and the process's peak resident memory. Reported per workload: the median of the per-round
ratios on / off, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _results import Provenance, write_result

# the child: the switch set (or not) before rnnkit.cli loads torch, then the command as the CLI runs it
CHILD = """
import json, os, resource, sys, time
t = time.perf_counter()
from rnnkit.cli import main
rc = main(sys.argv[1:])
wall = time.perf_counter() - t
print(json.dumps({"rc": rc, "wall_s": wall, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""
QUIET = ["--set", "train.tensorboard=false", "--set", "train.eval_test=false"]
# name -> (what it is, the train command's arguments after the output folder is added)
WORKLOADS: dict[str, tuple[str, list[str]]] = {
    "ptb-small": (
        "Zaremba small LSTM language model, 120 steps",
        ["ptb-small", "--max-steps", "120", "--set", "train.log_every=20", *QUIET],
    ),
    "mnist-pixels": (
        "sequential pixel MNIST, LSTM 128 over 784 steps, batch 100, 40 steps",
        ["mnist-pixels", "--max-steps", "40", "--set", "train.log_every=8", *QUIET],
    ),
}


def rate(run: Path) -> float:
    """The median training rate the run logged, the first record (warm-up) left out."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in records if "split" not in r and "tokens_per_s" in r]
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def measure(args: list[str], thp: str, threads: int, data_dir: str | None, scratch: Path) -> dict[str, float]:
    run = scratch / f"run-{thp}"
    shutil.rmtree(run, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in ("THP_MEM_ALLOC_ENABLE", "OMP_NUM_THREADS")}
    env["THP_MEM_ALLOC_ENABLE"] = thp
    env["OMP_NUM_THREADS"] = str(threads)
    argv = ["train", *args, "--out", str(run), "--set", f"train.threads={threads}"]
    if data_dir:
        argv += ["--data-dir", data_dir]
    out = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env)
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"thp: `rnnkit {' '.join(argv)}` failed: {out.stderr[-1500:]}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if got["rc"] != 0:
        raise SystemExit(f"thp: `rnnkit {' '.join(argv)}` exited {got['rc']}: {out.stderr[-1500:]}")
    return {"rate": rate(run), "wall_s": got["wall_s"], "peak_gb": got["peak_gb"]}


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(m[k] for m in runs), 3) for k in ("rate", "wall_s", "peak_gb")}


def ratio(got: dict[str, list[dict[str, float]]], key: str) -> float:
    """The median of the per-round ratios on / off (rounds alternate, so each pair shares the machine's state)."""
    return round(statistics.median(on[key] / off[key] for off, on in zip(got["0"], got["1"])), 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated, of {', '.join(WORKLOADS)}")
    ap.add_argument("--data-dir", help="the data sets (default: rnnkit's registry and cache)")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    names = [n for n in a.workloads.split(",") if n]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    prov = Provenance.start(threads=a.threads, data_dir=a.data_dir)
    thp_mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    kernel = thp_mode.read_text().strip() if thp_mode.is_file() else None
    rows, loads = [], []
    with tempfile.TemporaryDirectory(prefix="rnnkit-thp-") as tmp:
        for name in names:
            what, args = WORKLOADS[name]
            got: dict[str, list[dict[str, float]]] = {"0": [], "1": []}
            for r in range(a.rounds):
                for thp in ("0", "1"):
                    got[thp].append(measure(args, thp, a.threads, a.data_dir, Path(tmp)))
                    loads.append(os.getloadavg()[0])
                    m = got[thp][-1]
                    print(
                        f"round {r + 1} {name:<18} THP {thp}: {m['rate']:,.0f}/s  {m['wall_s']:.1f} s  "
                        f"{m['peak_gb']:.2f} GB",
                        file=sys.stderr,
                        flush=True,
                    )

            row = {
                "workload": name,
                "what": what,
                "command": "rnnkit train " + " ".join(args),
                "off": medians(got["0"]),
                "on": medians(got["1"]),
                "rates_off": [round(m["rate"], 1) for m in got["0"]],
                "rates_on": [round(m["rate"], 1) for m in got["1"]],
                "speedup": ratio(got, "rate"),
                "wall_ratio": ratio(got, "wall_s"),
            }
            rows.append(row)
            print(
                f"{name:<18} rate {row['off']['rate']:,.0f} -> {row['on']['rate']:,.0f}/s ({row['speedup']:.2f}x), "
                f"wall {row['off']['wall_s']:.1f} -> {row['on']['wall_s']:.1f} s, "
                f"peak {row['off']['peak_gb']:.2f} -> {row['on']['peak_gb']:.2f} GB"
            )
    result = {
        "threads": a.threads,
        "rounds": a.rounds,
        "kernel_thp": kernel,
        "load_avg": {"min": round(min(loads), 2), "max": round(max(loads), 2)},
        "results": rows,
    }
    if a.json_out:
        write_result(a.json_out, "thp", result, prov)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
