"""One decoding step of a stacked recurrent layer: PyTorch's fused kernel (oneDNN on the CPU) against the cell ops
that rnnkit's fused modules use for a one-step inference call (``rnnkit.cells.fused.one_step``).

    python benchmarks/decode_step.py [--cells lstm,gru] [--hiddens 200,650,1500] [--batches 1,4,16] [--layers 2]
                                     [--reps 5] [--calls 200] [--threads 1] [--json-out FILE]

Generation, chat and translation run the recurrence one token at a time; this is that call, (1, batch, hidden)
through ``layers`` layers under ``torch.inference_mode``. The two implementations alternate ``--reps`` times
(``--calls`` calls each, after a warm-up); the median microseconds per call, the speed-up, and the largest
difference between their outputs. The kernel's figure is what rnnkit ran before the one-step path existed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
KERNELS = {"lstm": nn.LSTM, "gru": nn.GRU}


def measure(cell: str, hidden: int, batch: int, a: argparse.Namespace) -> dict:
    from rnnkit.cells import RecurrentSpec, make_recurrent
    from rnnkit.cells.fused import one_step

    m = make_recurrent(RecurrentSpec(cell, hidden, hidden, a.layers), "fused").eval()
    x = torch.randn(1, batch, hidden)
    h = torch.randn(a.layers, batch, hidden)
    state = (h, torch.randn_like(h)) if cell == "lstm" else h
    kernel = KERNELS[cell]

    def run(step: bool) -> float:
        fn = (lambda: one_step(m, x, state)) if step else (lambda: kernel.forward(m, x, state))
        for _ in range(5):
            fn()
        t = time.perf_counter()
        for _ in range(a.calls):
            fn()
        return (time.perf_counter() - t) / a.calls * 1e6

    with torch.inference_mode():
        diff = (one_step(m, x, state)[0] - kernel.forward(m, x, state)[0]).abs().max().item()
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(a.reps):
            for step in (False, True):
                times[step].append(run(step))
    k, s = statistics.median(times[False]), statistics.median(times[True])
    return {"cell": cell, "hidden": hidden, "batch": batch, "layers": a.layers, "kernel_us": round(k, 1),
            "step_us": round(s, 1), "speedup": round(k / s, 2), "max_abs_diff": diff}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--hiddens", default="200,650,1500")
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sys.path.append(str(Path(__file__).resolve().parent))  # last: never shadows an installed module
    from _results import Provenance, write_result  # benchmarks/: the schema every published result file follows

    prov = Provenance.start(threads=a.threads)
    sys.path.insert(0, str(REPO / "src"))
    from lm_speed import cpu_flags

    rows = []
    print(f"{'cell':>5} {'hidden':>6} {'batch':>5} {'kernel us':>10} {'step us':>9} {'speed-up':>8}")
    for cell in a.cells.split(","):
        for hidden in (int(v) for v in a.hiddens.split(",")):
            for batch in (int(v) for v in a.batches.split(",")):
                r = measure(cell, hidden, batch, a)
                rows.append(r)
                print(f"{cell:>5} {hidden:>6} {batch:>5} {r['kernel_us']:>10,.0f} {r['step_us']:>9,.0f} "
                      f"{r['speedup']:>7.2f}x", flush=True)
    out = {"benchmark": "decode_step", "config": vars(a), "cpu": cpu_flags(), "torch": torch.__version__,
           "results": rows}
    if a.json_out:
        write_result(a.json_out, "decode_step", out, prov)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
