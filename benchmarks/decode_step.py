"""One decoding step of a stacked recurrent layer: PyTorch's LSTM kernel (oneDNN on the CPU) against the cell ops
that rnnkit's kernel modules use for a one-step inference call (``rnnkit.cells.kernel.one_step``).

    python benchmarks/decode_step.py [--cells lstm,gru] [--hiddens 200,650,1500] [--batches 1,4,16] [--layers 2]
                                     [--reps 5] [--calls 200] [--budget 0.5] [--threads 1] [--json-out FILE]

Generation, chat and translation run the recurrence one token at a time; this is that call, (1, batch, hidden)
through ``layers`` layers under ``torch.inference_mode``. The two implementations alternate ``--reps`` times
(``--calls`` calls each, or as many as ``--budget`` seconds allow, after a warm-up); the median microseconds
per call, the speed-up, and the largest difference between their outputs. GRU is the control: PyTorch's CPU GRU
already runs as cell ops (no oneDNN), so rnnkit keeps its kernel; its rows time ``torch.gru_cell`` per layer.
The LSTM kernel's figure is what rnnkit ran before the one-step path existed.
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


def gru_step(m: nn.GRU, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The GRU control: one step as ``torch.gru_cell`` per layer."""
    inp, hs = x[0], []
    for k in range(m.num_layers):
        w = [getattr(m, f"{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        inp = torch.gru_cell(inp, state[k], *w)
        hs.append(inp)
    return inp.unsqueeze(0), torch.stack(hs)


def measure(cell: str, hidden: int, batch: int, a: argparse.Namespace) -> dict:
    from rnnkit.cells import RecurrentSpec, make_recurrent
    from rnnkit.cells.kernel import one_step

    m = make_recurrent(RecurrentSpec(cell, hidden, hidden, a.layers), "fast").eval()
    x = torch.randn(1, batch, hidden)
    h = torch.randn(a.layers, batch, hidden)
    state = (h, torch.randn_like(h)) if cell == "lstm" else h
    kernel = KERNELS[cell]
    step_fn = one_step if cell == "lstm" else gru_step

    def run(step: bool) -> float:
        fn = (lambda: step_fn(m, x, state)) if step else (lambda: kernel.forward(m, x, state))
        for _ in range(3):
            fn()
        n, t = 0, time.perf_counter()
        while n < a.calls and (n < 3 or time.perf_counter() - t < a.budget):
            fn()
            n += 1
        return (time.perf_counter() - t) / n * 1e6

    with torch.inference_mode():
        diff = (step_fn(m, x, state)[0] - kernel.forward(m, x, state)[0]).abs().max().item()
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(a.reps):
            for step in (False, True):
                times[step].append(run(step))
    k, s = statistics.median(times[False]), statistics.median(times[True])
    return {
        "cell": cell,
        "hidden": hidden,
        "batch": batch,
        "layers": a.layers,
        "kernel_us": round(k, 1),
        "step_us": round(s, 1),
        "speedup": round(k / s, 2),
        "max_abs_diff": diff,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--hiddens", default="200,650,1500")
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200, help="calls per timing (fewer where --budget runs out)")
    ap.add_argument("--budget", type=float, default=0.5, help="seconds per timing, at least 3 calls")
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
                print(
                    f"{cell:>5} {hidden:>6} {batch:>5} {r['kernel_us']:>10,.0f} {r['step_us']:>9,.0f} "
                    f"{r['speedup']:>7.2f}x",
                    flush=True,
                )
    out = {
        "benchmark": "decode_step",
        "config": vars(a),
        "cpu": cpu_flags(),
        "torch": torch.__version__,
        "results": rows,
    }
    if a.json_out:
        write_result(a.json_out, "decode_step", out, prov)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
