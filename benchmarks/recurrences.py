"""The modern recurrent layers (minGRU, minLSTM, Mamba, mLSTM, sLSTM) against torch.nn.LSTM, and against their
reference packages: forward + backward time, peak memory, and where the time goes.

    python benchmarks/recurrences.py [--cells mingru,minlstm,mamba,mlstm,slstm] [--batch 32] [--seq 1024]
        [--input 32] [--hidden 256] [--layers 2] [--threads 2] [--rounds 3] [--ref-seq 128] [--ref-batch 8]
        [--ref-memory-gb 6] [--no-reference] [--json-out FILE]

1. The headline (issue 21 item 4): each cell's default fast backend and ``nn.LSTM`` of the same sizes, in one
   process, in alternating rounds (one forward + backward of every module per round, after a warm-up round); the
   median ms of each and its speed relative to ``nn.LSTM`` (LSTM ms / cell ms). fp32, ``--threads`` threads.
2. Peak memory: each module runs forward + backward in a fresh child process that reports its peak resident set
   (``ru_maxrss``: the whole process, Python and torch included; the idle baseline is printed beside it).
3. Where the time goes: one profiled forward + backward per cell: the GEMMs' own time (``aten::mm/addmm/bmm/
   baddbmm``: the matmul bound - the cell cannot run faster than its GEMMs at this machine's GEMM speed) against
   the total, and the time inside the scans (the recurrences' autograd Functions, inclusive).
4. The reference packages, when installed (``pip install 'rnnkit[reference]'``), at a REDUCED shape
   (``--ref-seq`` x ``--ref-batch``): at the full shape they need 9-21 GB (mambapy 14.5 GB, xlstm's sLSTM
   20.7 GB) and would take the machine down. They run in a child process under an address-space cap
   (``--ref-memory-gb``) with nn.LSTM and rnnkit's cells at the same reduced shape, alternating, so each ratio
   compares like with like. The packages need input size = hidden size: their stacks get an ``nn.Linear(input,
   hidden)`` in front (a negligible cost, said in the table).

The machine is shared: figures are ratios within one process, with the load average recorded (provenance).

The allocator: glibc hands every freed block over 32 MB back to the kernel, and the next tensor of that size comes
back as fresh pages the kernel must zero - at this shape many of the activations and gradients are such blocks.
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>`` in the environment keeps freed memory in the process (what
jemalloc or tcmalloc preloaded do too): measured beside the default, it says how much of each step is the kernel
zeroing pages, and what it costs in peak memory. The result file records those variables (provenance ``env``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
CELLS = ("mingru", "minlstm", "mamba", "mlstm", "slstm")
GEMMS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
# the recurrences' autograd Functions: rnnkit.cells.scan, slstm, chunkwise
SCANS = ("GatedScan", "LinearScan", "SLSTMScan", "SelectiveScan", "MambaScan", "ChunkwiseMLSTM")
# the issue's table: each reference package's speed relative to nn.LSTM at the full shape, 2-core CPU
ISSUE_REFERENCE = {"mingru": 0.47, "minlstm": 0.43, "mamba": 0.03, "mlstm": 0.05, "slstm": 0.01}
TARGET = {"mingru": 3.0, "minlstm": 2.0, "mamba": 1.0, "mlstm": 1.0, "slstm": 0.5}


# -- modules ------------------------------------------------------------------------------------------------------
def rnnkit_module(cell: str, a: argparse.Namespace) -> nn.Module:
    from rnnkit.cells.base import RecurrentSpec

    spec = RecurrentSpec(cell, a.input, a.hidden, num_layers=a.layers)
    return importlib.import_module(f"rnnkit.cells.{cell}").build(spec, "fast")


class _BatchFirst(nn.Module):
    """A reference package's layers (batch-first, input = hidden) behind rnnkit's (seq, batch, input) call."""

    def __init__(self, layers: list[nn.Module], input_size: int, hidden: int) -> None:
        super().__init__()
        self.inp = nn.Linear(input_size, hidden)
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        y = self.inp(x.transpose(0, 1))
        for layer in self.layers:
            y = layer(y)
        return (y.transpose(0, 1),)


def reference_module(cell: str, a: argparse.Namespace, seq: int) -> nn.Module:
    """The reference package's layer stack (raises ImportError when it is not installed)."""
    h, n = a.hidden, a.layers
    if cell in ("mingru", "minlstm"):
        from minGRU_pytorch.minGRU import minGRU
        from minGRU_pytorch.minLSTM import minLSTM

        layers = [(minGRU if cell == "mingru" else minLSTM)(h) for _ in range(n)]
    elif cell == "mamba":
        from mambapy.mamba import MambaBlock, MambaConfig

        layers = [MambaBlock(MambaConfig(d_model=h, n_layers=1)) for _ in range(n)]
    elif cell == "mlstm":
        from xlstm.blocks.mlstm.layer import mLSTMLayer, mLSTMLayerConfig

        layers = [mLSTMLayer(mLSTMLayerConfig(embedding_dim=h, num_heads=4, context_length=seq)) for _ in range(n)]
    else:
        from xlstm.blocks.slstm.layer import sLSTMLayer, sLSTMLayerConfig

        cfg = sLSTMLayerConfig(embedding_dim=h, num_heads=4, backend="vanilla")
        layers = [sLSTMLayer(cfg) for _ in range(n)]
    return _BatchFirst(layers, a.input, h)


def build(name: str, a: argparse.Namespace, seq: int) -> nn.Module:
    """``lstm``, a cell name (rnnkit's fast backend), or ``ref:CELL`` (the reference package)."""
    torch.manual_seed(0)
    if name == "lstm":
        return nn.LSTM(a.input, a.hidden, a.layers)
    if name.startswith("ref:"):
        return reference_module(name[4:], a, seq)
    return rnnkit_module(name, a)


def step(module: nn.Module, x: torch.Tensor) -> float:
    """One forward + backward; seconds."""
    t0 = time.perf_counter()
    y = module(x)[0]
    y.sum().backward()
    return time.perf_counter() - t0


def alternate(names: list[str], a: argparse.Namespace, seq: int, batch: int, rounds: int) -> dict[str, float]:
    """Median ms of each module over ``rounds`` alternating rounds after one warm-up round."""
    x = torch.randn(seq, batch, a.input, requires_grad=True)
    modules = {n: build(n, a, seq) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds + 1):
        for n, m in modules.items():
            m.zero_grad(set_to_none=True)
            t = step(m, x)
            if r:
                times[n].append(t)
        print(f"  round {r}/{rounds}: " + ", ".join(f"{n} {times[n][-1] * 1e3:.0f} ms" for n in names if r), flush=True)
    return {n: statistics.median(v) * 1e3 for n, v in times.items()}


def profile(cell: str, a: argparse.Namespace) -> dict[str, float]:
    """GEMM self time, scan time (inclusive) and the total of one forward + backward, in ms."""
    from torch.profiler import profile as torch_profile

    module = build(cell, a, a.seq)
    x = torch.randn(a.seq, a.batch, a.input, requires_grad=True)
    step(module, x)  # warm-up: first-call costs (allocations, the compiled scan's build) are not the cell's
    t0 = time.perf_counter()
    with torch_profile() as prof:
        step(module, x)
    total = (time.perf_counter() - t0) * 1e3
    gemm = scan = 0.0
    for ev in prof.key_averages():
        if ev.key in GEMMS:
            gemm += ev.self_cpu_time_total / 1e3
        elif ev.key in SCANS or ev.key in (s + "Backward" for s in SCANS):
            scan += ev.cpu_time_total / 1e3
    return {"profiled_ms": round(total, 1), "gemm_ms": round(gemm, 1), "scan_ms": round(scan, 1)}


# -- child processes ------------------------------------------------------------------------------------------------
def child(args: list[str], memory_gb: float | None = None) -> dict:
    """Run this script with ``args`` in a fresh process (optionally under an address-space cap); its JSON line."""
    env = dict(os.environ)
    if memory_gb:
        env["RNNKIT_BENCH_AS_GB"] = str(memory_gb)
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {tail[0][:200]}"}
    return json.loads(lines[-1])


def peak_child(name: str, a: argparse.Namespace) -> None:
    """(In a child) one module's forward + backward at the full shape; print the peak RSS."""
    if name != "none":
        module = build(name, a, a.seq)
        x = torch.randn(a.seq, a.batch, a.input, requires_grad=True)
        step(module, x)
    print(json.dumps({"peak_gb": round(_peak_rss_kib() / 2**20, 3)}))


def _peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that over fork and exec, so a child
    would report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reference_child(a: argparse.Namespace) -> None:
    """(In a child, memory-capped) nn.LSTM, rnnkit's cells and the installed reference packages at the reduced
    shape, alternating; print their median ms."""
    names = ["lstm"]
    missing = {}
    for cell in a.cells.split(","):
        names.append(cell)
        try:
            reference_module(cell, a, a.ref_seq)
            names.append(f"ref:{cell}")
        except ImportError as e:
            missing[cell] = f"not installed ({e.name})"
    ms = alternate(names, a, a.ref_seq, a.ref_batch, a.rounds)
    print(json.dumps({"ms": ms, "missing": missing}))


# -- main ----------------------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--input", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ref-seq", type=int, default=128)
    ap.add_argument("--ref-batch", type=int, default=8)
    ap.add_argument("--ref-memory-gb", type=float, default=6.0)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--json-out")
    ap.add_argument("--peak", help=argparse.SUPPRESS)  # child mode: peak memory of one module
    ap.add_argument("--references", action="store_true", help=argparse.SUPPRESS)  # child mode: reference timings
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sys.path.insert(0, str(REPO / "src"))
    cap = os.environ.get("RNNKIT_BENCH_AS_GB")
    if cap:
        limit = int(float(cap) * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if a.peak:
        peak_child(a.peak, a)
        return 0
    if a.references:
        reference_child(a)
        return 0

    sys.path.append(str(Path(__file__).resolve().parent))  # last: never shadows an installed module
    from _results import Provenance, write_result

    prov = Provenance.start(threads=a.threads)
    from lm_speed import cpu_flags

    cpu = cpu_flags()
    cells = a.cells.split(",")
    shape = f"batch {a.batch}, T={a.seq}, input {a.input}, {a.layers} layers, width {a.hidden}, fp32"
    print(f"{cpu['model']} ({' '.join(cpu['flags'])}), {a.threads} threads, load {os.getloadavg()[0]:.1f}")
    print(f"forward + backward, {shape}; {a.rounds} alternating rounds after a warm-up", flush=True)
    from rnnkit.cells import native

    native_scan = native.library() is not None
    ms = alternate(["lstm", *cells], a, a.seq, a.batch, a.rounds)
    baseline = child(["--peak", "none", *_shape_args(a)])
    peaks = {n: child(["--peak", n, *_shape_args(a)]) for n in ["lstm", *cells]}
    prof = {} if a.no_profile else {c: profile(c, a) for c in cells}
    rows = []
    for name in ["lstm", *cells]:
        row = {"cell": name, "ms": round(ms[name], 1), "speed_vs_lstm": round(ms["lstm"] / ms[name], 3)}
        row["peak_gb"] = peaks[name].get("peak_gb")
        if name in prof:
            p = prof[name]
            row.update(p)
            row["gemm_share"] = round(p["gemm_ms"] / p["profiled_ms"], 3) if p["profiled_ms"] else None
            row["x_matmul_bound"] = round(p["profiled_ms"] / p["gemm_ms"], 2) if p["gemm_ms"] else None
        if name in TARGET:
            row["target"] = TARGET[name]
            row["meets_target"] = row["speed_vs_lstm"] >= TARGET[name] and (row["peak_gb"] or 99) <= 3.0
        rows.append(row)

    print(
        f"\n{'cell':>8} {'ms':>9} {'vs LSTM':>8} {'target':>7} {'peak GB':>8} {'GEMM ms':>8} {'scan ms':>8} "
        f"{'x bound':>8}"
    )
    for r in rows:
        print(
            f"{r['cell']:>8} {r['ms']:>9.0f} {r['speed_vs_lstm']:>7.2f}x {r.get('target', '-'):>7} "
            f"{r['peak_gb'] or float('nan'):>8.2f} {r.get('gemm_ms', float('nan')):>8.0f} "
            f"{r.get('scan_ms', float('nan')):>8.0f} {r.get('x_matmul_bound') or float('nan'):>8.2f}"
        )
    print(
        f"(peak GB is the whole process; an idle one with torch loaded: {baseline.get('peak_gb')} GB. "
        f"'x bound': total time / the GEMMs' own time. Mamba's compiled scan: {'on' if native_scan else 'off'})"
    )

    reference: dict = {"skipped": "--no-reference"} if a.no_reference else {}
    if not a.no_reference:
        print(
            f"\nreference packages at {'the same' if (a.ref_seq, a.ref_batch) == (a.seq, a.batch) else 'a reduced'} "
            f"shape (T={a.ref_seq}, batch {a.ref_batch}; capped at "
            f"{a.ref_memory_gb} GB of address space): each in front of an nn.Linear(input, hidden)",
            flush=True,
        )
        args = ["--references", *_shape_args(a), "--ref-seq", str(a.ref_seq), "--ref-batch", str(a.ref_batch)]
        reference = child(args, memory_gb=a.ref_memory_gb)
        if "ms" in reference:
            r_ms = reference["ms"]
            print(
                f"{'cell':>8} {'rnnkit vs LSTM':>15} {'ref vs LSTM':>12} {'rnnkit vs ref':>14} "
                f"{'issue: ref vs LSTM':>19}"
            )
            for c in cells:
                row = {"cell": c, "rnnkit_ms": round(r_ms[c], 1), "rnnkit_vs_lstm": round(r_ms["lstm"] / r_ms[c], 3)}
                if f"ref:{c}" in r_ms:
                    row["ref_ms"] = round(r_ms[f"ref:{c}"], 1)
                    row["ref_vs_lstm"] = round(r_ms["lstm"] / r_ms[f"ref:{c}"], 3)
                    row["rnnkit_vs_ref"] = round(r_ms[f"ref:{c}"] / r_ms[c], 2)
                else:
                    row["ref"] = reference.get("missing", {}).get(c, "not run")
                reference.setdefault("rows", []).append(row)
                print(
                    f"{c:>8} {row['rnnkit_vs_lstm']:>14.2f}x {row.get('ref_vs_lstm', float('nan')):>11.2f}x "
                    f"{row.get('rnnkit_vs_ref', float('nan')):>13.2f}x {ISSUE_REFERENCE[c]:>18.2f}x"
                )
            reference["lstm_ms"] = round(r_ms["lstm"], 1)
        else:
            print(f"  not measured: {reference.get('error')}")
        reference["shape"] = {"seq": a.ref_seq, "batch": a.ref_batch, "memory_cap_gb": a.ref_memory_gb}

    out = {
        "benchmark": "recurrences",
        "config": {k: v for k, v in vars(a).items() if k not in ("peak", "references")},
        "cpu": cpu,
        "torch": torch.__version__,
        "native_scan": native_scan,
        "idle_process_peak_gb": baseline.get("peak_gb"),
        "rows": rows,
        "reference": reference,
        "issue_reference_vs_lstm": ISSUE_REFERENCE,
    }
    if a.json_out:
        write_result(a.json_out, "recurrences", out, prov)
        print(f"\nwrote {a.json_out}")
    return 0


def _shape_args(a: argparse.Namespace) -> list[str]:
    return [
        "--batch", str(a.batch), "--seq", str(a.seq), "--input", str(a.input), "--hidden", str(a.hidden),
        "--layers", str(a.layers), "--threads", str(a.threads), "--rounds", str(a.rounds), "--cells", a.cells,
    ]  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
