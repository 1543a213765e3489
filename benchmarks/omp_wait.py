"""OpenMP's wait policy, on an idle CPU and a shared one: a training step with 1 thread, 2 threads as PyTorch starts
them, 2 threads with ``OMP_WAIT_POLICY=PASSIVE``, and 2 threads with ``GOMP_SPINCOUNT=1000`` (what the ``rnnkit``
command sets), each in a fresh process, alternating.

    python benchmarks/omp_wait.py [--workload lm|fcn] [--load N] [--rounds 4] [--steps 8] [--json-out FILE]

Why: PyTorch's CPU kernels run on an OpenMP pool (libgomp in the pip wheels) whose threads, between parallel
regions, spin a while (by default ~300,000 iterations) before they sleep. On a machine whose cores other processes
also want (a shared VM, CI, a laptop running tests), a spinning thread holds a core the one doing the work needs,
and two threads can be slower than one; ``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep at once. But a
recurrence of small steps opens a parallel region per time step, microseconds apart, and a thread that sleeps
between them is woken for each: there PASSIVE is several times slower on an idle machine. ``GOMP_SPINCOUNT`` (read
only when no policy is set) spins a short while - long enough to catch the next step's region, short enough to
give the core back. All must be set before the OpenMP runtime starts (before ``import torch``), hence one process
per measurement.

Workloads: ``lm``, the peer benchmark's shape (embedding 200 -> 2x256 LSTM -> linear to 10,000 words,
cross-entropy, backward, on (20, 60) random tokens; benchmarks/peer_keras.py) - large products, few regions; ``fcn``,
the sequence classifier's step on a set of long series (5 LSTM-FCN members of 24-48-24 filters and an 8-unit LSTM
over 1,344 steps of 42 series each, rnnkit.models.lstm_fcn: PLAID's shape under the defaults) - small steps, many
regions. ``--load N`` runs N busy processes (one pure-Python loop each) during the rounds: a shared machine made on
purpose. Reported: the rate per round and the median of each setting's per-round ratio to 1 thread, with the load
average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from _results import Provenance, write_result

LM = """
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
FCN = """
import time, torch, sys
from rnnkit.models.lstm_fcn import LSTMFCN
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
model = LSTMFCN(1, 11, [24, 48, 24], hidden=8, members=5, pool=3)
x = torch.randn(1344, 42, 5, 1); lengths = torch.randint(100, 1345, (42, 5))
def step():
    model.member_logits(x, lengths).logsumexp(-1).sum().backward()
for _ in range(2): step()
t = time.perf_counter()
for _ in range(int(sys.argv[2])): step()
print(42 * 5 * int(sys.argv[2]) / (time.perf_counter() - t))
"""
WORKLOADS = {
    "lm": (LM, "tokens/s", "embedding 200, 2x256 LSTM, linear 256 -> 10,000, (20, 60) tokens, forward + backward"),
    "fcn": (
        FCN,
        "series/s",
        "5 LSTM-FCN members (filters 24-48-24, pool 3, an 8-unit LSTM) over 1,344 steps x 42 series of unequal "
        "lengths, forward + backward",
    ),
}
OMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")
SETTINGS = {
    "1 thread": ("1", {}),
    "2 threads": ("2", {}),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": ("2", {"OMP_WAIT_POLICY": "PASSIVE"}),
    "2 threads, GOMP_SPINCOUNT=1000": ("2", {"GOMP_SPINCOUNT": "1000"}),
}


def measure(code: str, threads: str, extra: dict[str, str], steps: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARIABLES}
    env.update(extra)
    out = subprocess.run([sys.executable, "-c", code, threads, str(steps)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"omp_wait: the measuring process failed: {out.stderr[-1000:]}")
    return float(out.stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per measurement (after 2 untimed)")
    ap.add_argument("--workload", choices=sorted(WORKLOADS), default="lm")
    ap.add_argument("--load", type=int, default=0, help="busy processes to run during the rounds (default 0)")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    code, unit, shape = WORKLOADS[a.workload]
    prov = Provenance.start(threads=2)
    rates: dict[str, list[float]] = {k: [] for k in SETTINGS}
    loads = []
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.load)]
    try:
        for r in range(a.rounds):
            for name, (threads, extra) in SETTINGS.items():
                rates[name].append(measure(code, threads, extra, a.steps))
                loads.append(os.getloadavg()[0])
                print(f"round {r + 1} {name:<38} {rates[name][-1]:,.0f} {unit}", file=sys.stderr, flush=True)
    finally:
        for h in hogs:
            h.kill()
    base = rates["1 thread"]
    rows = [
        {
            "setting": name,
            "rate": round(statistics.median(v), 1),
            "runs": [round(x, 1) for x in v],
            "vs_1_thread": round(statistics.median(x / b for x, b in zip(v, base)), 3),
        }
        for name, v in rates.items()
    ]
    for row in rows:
        print(f"{row['setting']:<38} {row['rate']:>8,.0f} {unit}  {row['vs_1_thread']:.2f}x 1 thread")
    result = {
        "workload": a.workload,
        "unit": unit,
        "busy_processes": a.load,
        "shape": shape,
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
