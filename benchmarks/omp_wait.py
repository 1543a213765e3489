"""OpenMP's wait policy on a shared CPU: the peer shape's training step with 1 thread, 2 threads as PyTorch starts
them, and 2 threads with ``OMP_WAIT_POLICY=PASSIVE``, each in a fresh process, alternating.

    python benchmarks/omp_wait.py [--rounds 4] [--steps 8] [--json-out FILE]

Why: PyTorch's CPU kernels run on an OpenMP pool whose threads spin while they wait for each other. On a machine
whose cores other processes also want (a shared VM, CI, a laptop running tests), a spinning thread holds a core
the one doing the work needs, and two threads can be slower than one. ``OMP_WAIT_POLICY=PASSIVE`` makes waiting
threads sleep; it must be set before the OpenMP runtime starts (before ``import torch``), hence one process per
measurement. The step: embedding 200 -> 2x256 LSTM -> linear to 10,000 words, cross-entropy, backward, on (20, 60)
random tokens - the peer benchmark's shape (benchmarks/peer_keras.py), without the optimiser. Reported: tokens/s
per round and the median of each setting's per-round ratio to 1 thread, with the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from _results import Provenance, write_result

STEP = """
import time, torch, sys
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
emb = torch.nn.Embedding(10000, 200); lstm = torch.nn.LSTM(200, 256, 2); out = torch.nn.Linear(256, 10000)
x = torch.randint(0, 10000, (20, 60)); y = torch.randint(0, 10000, (20 * 60,))
def step():
    h, _ = lstm(emb(x)); loss = torch.nn.functional.cross_entropy(out(h).view(-1, 10000), y); loss.backward()
for _ in range(2): step()
t = time.perf_counter()
for _ in range(int(sys.argv[2])): step()
print(1200 * int(sys.argv[2]) / (time.perf_counter() - t))
"""
SETTINGS = {"1 thread": ("1", None), "2 threads": ("2", None), "2 threads, OMP_WAIT_POLICY=PASSIVE": ("2", "PASSIVE")}


def measure(threads: str, policy: str | None, steps: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", STEP, threads, str(steps)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"omp_wait: the measuring process failed: {out.stderr[-1000:]}")
    return float(out.stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per measurement (after 2 untimed)")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    prov = Provenance.start(threads=2)
    rates: dict[str, list[float]] = {k: [] for k in SETTINGS}
    loads = []
    for r in range(a.rounds):
        for name, (threads, policy) in SETTINGS.items():
            rates[name].append(measure(threads, policy, a.steps))
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1} {name:<38} {rates[name][-1]:,.0f} tokens/s", file=sys.stderr, flush=True)
    base = rates["1 thread"]
    rows = [
        {
            "setting": name,
            "tokens_per_s": round(statistics.median(v), 1),
            "runs": [round(x, 1) for x in v],
            "vs_1_thread": round(statistics.median(x / b for x, b in zip(v, base)), 3),
        }
        for name, v in rates.items()
    ]
    for row in rows:
        print(f"{row['setting']:<38} {row['tokens_per_s']:>8,.0f} tokens/s  {row['vs_1_thread']:.2f}x 1 thread")
    result = {
        "shape": "embedding 200, 2x256 LSTM, linear 256 -> 10,000, (20, 60) tokens, forward + backward",
        "rounds": a.rounds,
        "steps": a.steps,
        "load_avg": {"min": round(min(loads), 2), "max": round(max(loads), 2)},
        "results": rows,
    }
    if a.json_out:
        write_result(a.json_out, "omp_wait", result, prov)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
