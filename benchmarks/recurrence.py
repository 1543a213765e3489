"""The LSTM recurrence alone, per shape: PyTorch's fused kernel (oneDNN / cuDNN) against rnnkit's projected layer.

    python benchmarks/recurrence.py [--hiddens 200,650,1500] [--batches 20,64] [--bptt 35] [--layers 2]
                                    [--precisions fp32,bf16] [--reps 5] [--threads 2] [--device cpu|cuda]
                                    [--json-out FILE]

Forward + backward of a ``layers``-deep LSTM over (bptt, batch, hidden) inputs, under autocast for bf16 (what
training runs), the two implementations alternating ``--reps`` times after a warm-up; the median ms of each and
their ratio. This is the measurement ``rnnkit.cells.select`` makes once per shape at the start of training (with
fewer reps) to choose the implementation; the table shows what it would choose. bf16 on a CPU without bf16 units
(no ``avx512_bf16`` / ``amx_bf16``) is not measured: oneDNN cannot run its bf16 LSTM there and every bf16 matmul is
emulated, so the rows say so instead of giving meaningless figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def measure(hidden: int, batch: int, a: argparse.Namespace, precision: str) -> dict:
    from rnnkit.cells.projected import lstm_stack

    device = torch.device(a.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    lstm = torch.nn.LSTM(hidden, hidden, a.layers).to(device)
    x = torch.randn(a.bptt, batch, hidden, device=device, requires_grad=True)
    params = list(lstm.parameters())
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def run(projected: bool) -> float:
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            y = lstm_stack(lstm, x, None, dtype)[0] if projected else lstm(x)[0]
        torch.autograd.grad(y.float().sum(), [x, *params])
        sync()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"fused": [], "projected": []}
    for rep in range(a.reps + 1):
        for name in times:
            t = run(name == "projected")
            if rep:
                times[name].append(t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {
        "fused_ms": round(med["fused"], 2),
        "projected_ms": round(med["projected"], 2),
        "projected_speedup": round(med["fused"] / med["projected"], 3),
        "faster": "projected" if med["projected"] < med["fused"] else "fused",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hiddens", default="200,650,1500")
    ap.add_argument("--batches", default="20,64")
    ap.add_argument("--bptt", type=int, default=35)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sys.path.append(str(Path(__file__).resolve().parent))  # last: never shadows an installed module
    from _results import Provenance, write_result  # benchmarks/: the schema every published result file follows

    prov = Provenance.start(threads=a.threads)
    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from lm_speed import cpu_flags
    from rnnkit.train.precision import cpu_has_native_bf16

    cpu = cpu_flags()
    native = a.device.startswith("cuda") and torch.cuda.is_bf16_supported() or cpu_has_native_bf16()
    print(
        f"{cpu['model']} ({' '.join(cpu['flags'])}){' / ' + cpu['gpu'] if 'gpu' in cpu else ''}, {a.threads} "
        f"threads, {a.layers} layers, bptt {a.bptt}, forward + backward"
    )
    print(f"{'precision':>9} {'hidden':>6} {'batch':>5} {'fused ms':>9} {'projected ms':>12} {'speed-up':>8} faster")
    rows = []
    for precision in a.precisions.split(","):
        for hidden in map(int, a.hiddens.split(",")):
            for batch in map(int, a.batches.split(",")):
                row = {"precision": precision, "hidden": hidden, "batch": batch}
                if precision == "bf16" and not native:
                    row["note"] = "not measurable on this machine (no bf16 units: emulated)"
                    print(f"{precision:>9} {hidden:>6} {batch:>5}   {row['note']}", flush=True)
                else:
                    row.update(measure(hidden, batch, a, precision))
                    print(
                        f"{precision:>9} {hidden:>6} {batch:>5} {row['fused_ms']:>9.1f} {row['projected_ms']:>12.1f} "
                        f"{row['projected_speedup']:>7.2f}x {row['faster']}",
                        flush=True,
                    )
                rows.append(row)
    out = {"benchmark": "recurrence", "config": vars(a), "cpu": cpu, "torch": torch.__version__, "rows": rows}
    if a.json_out:
        write_result(a.json_out, "recurrence", out, prov)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
