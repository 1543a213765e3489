"""Training speed of rnnkit's language model against a plain PyTorch loop, in the same process.

    python benchmarks/lm_speed.py [--hidden 200] [--layers 2] [--bptt 20] [--batch 20] [--dropout 0]
                                  [--steps 200] [--rounds 3] [--threads 2] [--precision fp32|bf16|auto]
                                  [--data-dir DIR] [--json-out FILE]
    python benchmarks/lm_speed.py --scaling [--hiddens 200,650,1500] [--batches 20,64] [--bptts 35,70]
                                  [--backends fast,scratch] [--precisions fp32,bf16] [--procs 1,2]
                                  [--grid main|full] [--steps 50] [--threads 2] [--json-out FILE]

The plain loop is written the way the pytorch/examples word language model writes it (embedding -> nn.LSTM ->
nn.Linear, repackage_hidden, model.zero_grad(), clip_grad_norm_, manual SGD update). rnnkit runs through its
real training path (task + Trainer, run directory and all), once with the fast backend (PyTorch's LSTM kernel)
and once with the scratch cells. Runs alternate for `--rounds` rounds so machine noise hits every variant alike;
the median tokens/s is reported, with the ratios as the median of per-round ratios, plus the fraction of the
machine's measured matmul throughput that training achieves.
``--precision`` applies to rnnkit's runs only: the plain loop is the fp32 reference. A variant may name its own
precision, ``fast:bf16`` or ``scratch:fp32``, so one run can pair fp32 and bf16 rounds (``fused``, the old name of
``fast``, is accepted).

Equal quality: every variant trains the same number of steps (``--steps`` timed + 10 warm-up) from the same seed,
and then its validation perplexity on PTB's valid split is measured the same way (``rnnkit``'s LM evaluation, in
fp32) and reported next to its tokens/s, so a speed-up that costs quality shows. ``--no-ppl`` skips it. With
``--steps 990 --rounds 1 --variants fast:fp32,fast:bf16`` this is the 1,000-step bf16-vs-fp32 comparison; on a
CPU without bf16 units add ``--bf16-gemm-via-fp32`` (bf16 numerics, matrix products computed as bf16 units compute
them, at fp32 speed: quality figures only).
The CPU's model and SIMD flags (``avx2``, ``avx512_bf16``, ``amx_bf16``...) are printed and written to the JSON
with every figure, and for bf16 variants the recurrence chosen per shape (``train.recurrence``, rnnkit.cells.select)
and its timings.

``--interleave`` pairs at the finest grain, for a loaded machine where whole runs drift by 2x between rounds:
one process, the plain loop's step and rnnkit's step (the Trainer's own pieces, as benchmarks/lm_profile.py drives
them: ``task.train_step`` under ``precision.autocast()``, ``precision.backward``, ``precision.step``) alternating
step by step, each step timed in CPU time (``time.process_time``: what other processes on the machine cannot
inflate, at 1 thread) and in wall time; the ratio is the median of the per-step ratios. The Trainer's bookkeeping
every ``train.log_every`` steps (a metrics line) is left out.

``--scaling`` measures rnnkit alone over a grid and prints one table: tokens/s by hidden size, batch size and
sequence length, fast vs scratch backend, fp32 vs bf16, 1 vs 2 processes (``--nproc 2``: DDP over gloo, each
process with threads / 2 threads), each with the fraction of the matmul peak of its precision, both peaks
measured in the same run. ``--grid main`` (default) crosses hidden x backend x precision x processes at the
first batch size and bptt, then sweeps the other batch sizes and bptts at the middle hidden size (fast, 1
process, each precision); ``--grid full`` crosses everything. Precisions the device cannot run (bf16 on a CPU
without AVX512/AMX) are listed as unsupported rather than measured.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from _results import Provenance, write_result

REPO = Path(__file__).resolve().parent.parent


def data_dir(a: argparse.Namespace) -> Path | None:
    """``--data-dir`` as a Path, or None: rnnkit's registry and cache (vendored PTB on a bare machine)."""
    return Path(a.data_dir) if a.data_dir else None


def matmul_peak_gflops(n: int = 2048, dtype: torch.dtype = torch.float32, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def adaptive_peak_gflops(dtype: torch.dtype, device: str = "cpu", budget_s: float = 1.0, max_n: int = 4096) -> float:
    """Matmul GFLOP/s for ``dtype``, sized so that an emulated dtype (bf16 without hardware: ~100x slower than
    fp32) still finishes in about ``budget_s`` instead of minutes."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    n = 256
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    sync()
    t = time.perf_counter()
    torch.mm(a, b)
    sync()
    rate = 2 * n**3 / max(time.perf_counter() - t, 1e-9)  # flop/s, rough
    while n < max_n and 2 * (2 * n) ** 3 / rate < budget_s / 10:
        n *= 2
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    sync()
    reps, t = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - t < budget_s / 2:
        torch.mm(a, b)
        sync()
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def train_flops_per_token(vocab: int, emb: int, hidden: int, layers: int) -> float:
    """Multiply-adds x 2 for forward, x 3 for forward + backward (the usual 1:2 forward:backward ratio)."""
    lstm = sum(4 * hidden * ((emb if i == 0 else hidden) + hidden) for i in range(layers))
    return 3 * 2 * (lstm + hidden * vocab)


class PlainRNNModel(nn.Module):
    """pytorch/examples word_language_model/model.py RNNModel, LSTM branch."""

    def __init__(self, ntoken: int, ninp: int, nhid: int, nlayers: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor] | None = None):
        emb = self.drop(self.encoder(x))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        return self.decoder(output), hidden


def cpu_flags() -> dict:
    """The CPU's model and the SIMD flags that decide fp32 / bf16 speed: written beside every figure."""
    model, flags = "", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")
    out = {
        "model": model,
        "flags": [f for f in wanted if f in flags],
        "threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name()
    return out


class Bf16GemmViaFp32(TorchDispatchMode):
    """bf16 matrix products computed as a CPU with bf16 units computes them, on a CPU without: the bf16 operands
    widened to fp32 (exactly), multiplied and accumulated in fp32, the result rounded to bf16 - what oneDNN's
    AMX/AVX512-BF16 GEMMs do, up to the order of the fp32 accumulation. Without bf16 units PyTorch falls back to a
    reference kernel ~100x slower, which makes a 1,000-step bf16 run take hours; under this mode it takes minutes
    and trains with bf16's numerics everywhere else (casts, activations, bf16 elementwise ops, the optimizer on fp32
    masters). For ``--bf16-gemm-via-fp32``: quality figures only, its tokens/s mean nothing.
    """

    OPS = {
        torch.ops.aten.mm.default,
        torch.ops.aten.addmm.default,
        torch.ops.aten.bmm.default,
        torch.ops.aten.baddbmm.default,
        torch.ops.aten.mv.default,
        torch.ops.aten.addmv.default,
    }

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0  # products it widened (a run that never hits one measured nothing)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        kwargs = kwargs or {}
        if func in self.OPS and any(isinstance(x, torch.Tensor) and x.dtype == torch.bfloat16 for x in args):
            self.calls += 1
            wide = [x.float() if isinstance(x, torch.Tensor) and x.dtype == torch.bfloat16 else x for x in args]
            return func(*wide, **kwargs).to(torch.bfloat16)
        return func(*args, **kwargs)


def valid_ppl(model: nn.Module, a: argparse.Namespace) -> float:
    """Validation perplexity of ``model`` as rnnkit evaluates (PTB valid, eval batch 10, bptt chunks, fp32)."""
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe

    task = get_task("lm")(load_recipe("ptb-small", {"data.bptt": a.bptt}), data_dir(a), torch.device(a.device))
    task.prepare(("train", "valid"))
    return task.evaluate(model, "valid")["ppl"]


def plain_loop(train: torch.Tensor, ntokens: int, a: argparse.Namespace) -> tuple[float, float | None]:
    """tokens/s of the pytorch/examples training loop (after a warm-up of 10 batches), and its validation
    perplexity after those steps (None with --no-ppl)."""
    torch.manual_seed(0 if a.seed is None else a.seed)
    device = torch.device(a.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model = PlainRNNModel(ntokens, a.hidden, a.hidden, a.layers, a.dropout).to(device)
    criterion = nn.CrossEntropyLoss()
    nbatch = train.size(0) // a.batch
    data = train[: nbatch * a.batch].view(a.batch, -1).t().contiguous().to(device)
    zeros = torch.zeros(a.layers, a.batch, a.hidden, device=device)
    hidden = (zeros, zeros)
    model.train()
    # lr x bptt: SGD on the mean loss at lr = bptt is rnnkit's ptb-small update (lr 1 on the loss summed over the
    # bptt steps), so both reach comparable validation perplexities (and 20 is pytorch/examples' default lr). The
    # summed loss's gradient is bptt x the mean's, so rnnkit's clip at 5 is a clip at 5 / bptt here (0.25 at bptt
    # 20, pytorch/examples' default clip too); clipping the mean's gradient at 5 let early steps 20x too large
    # through and the plain loop diverged (validation perplexity ~1e42 after 110 steps)
    lr, t0, tokens = float(a.bptt), 0.0, 0
    for step, i in enumerate(range(0, (a.steps + 10) * a.bptt, a.bptt)):
        if step == 10:
            sync()
            t0, tokens = time.perf_counter(), 0
        x, y = data[i : i + a.bptt], data[i + 1 : i + 1 + a.bptt].reshape(-1)
        hidden = tuple(h.detach() for h in hidden)
        model.zero_grad()
        output, hidden = model(x, hidden)
        loss = criterion(output.view(-1, ntokens), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0 / a.bptt)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        tokens += y.numel()
    sync()
    rate = tokens / (time.perf_counter() - t0)
    return rate, (None if a.no_ppl else valid_ppl(model, a))


def rnnkit_loop(variant: str, a: argparse.Namespace) -> tuple[float, float | None]:
    """tokens/s of `rnnkit train ptb-small` with the same shape, read from its metrics.jsonl, and the validation
    perplexity the Trainer measures when it stops (None with --no-ppl). ``variant``: backend[:precision]."""
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe
    from rnnkit.train.loop import Trainer
    from rnnkit.train.rundir import RunDir

    backend, _, precision = variant.partition(":")
    backend = {"fused": "fast"}.get(backend, backend)
    log_every = 10
    overrides = {
        "model.hidden": a.hidden,
        "model.embedding": a.hidden,
        "model.layers": a.layers,
        "model.dropout": a.dropout,
        "model.backend": backend,
        "data.bptt": a.bptt,
        "train.batch_size": a.batch,
        "train.max_steps": a.steps + log_every,
        "train.log_every": log_every,
        "train.eval_test": False,
        "train.tensorboard": False,
        "train.precision": precision or a.precision,
    }
    if a.seed is not None:
        overrides["train.seed"] = a.seed
    if a.no_ppl:  # a tiny stand-in validation split, not reported
        overrides.update({"data.valid": "", "data.valid_fraction": 0.002})
    config = load_recipe("ptb-small", overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.write_config(config)
        task = get_task("lm")(config, data_dir(a), torch.device(a.device))
        trainer = Trainer(task, config, run, torch.device(a.device), echo=False)
        trainer.setup(resume=False)
        if a.bf16_gemm_via_fp32 and config.train.precision == "bf16":
            mode = Bf16GemmViaFp32()
            with mode:
                summary = trainer.fit()
            if not mode.calls:
                raise SystemExit(f"lm_speed: {variant} ran no bf16 matrix product under --bf16-gemm-via-fp32")
        else:
            summary = trainer.fit()
        records = [r for r in run.read_metrics() if "split" not in r][1:]  # drop the warm-up window
    ppl = None if a.no_ppl else summary["valid"]["ppl"]
    rec = trainer.precision.recurrence
    CHOICES.update(rec.choices)
    TIMINGS.update(rec.timings)
    return statistics.mean(r["tokens_per_s"] for r in records), ppl


CHOICES: dict[str, str] = {}  # the recurrence chosen per shape by rnnkit's runs (train.recurrence = auto)
TIMINGS: dict[str, dict[str, float]] = {}


def scaling_rate(row: dict, a: argparse.Namespace) -> float:
    """tokens/s of one scaling configuration, from the metrics.jsonl of a real rnnkit run (warm-up dropped)."""
    log_every = max(1, min(10, a.steps))
    threads = max(1, a.threads // row["procs"])
    sets = {
        "model.hidden": row["hidden"],
        "model.embedding": row["hidden"],
        "model.layers": a.layers,
        "model.dropout": 0.0,
        "model.backend": row["backend"],
        "data.bptt": row["bptt"],
        "train.batch_size": row["batch"],
        "train.log_every": log_every,
        "train.eval_test": False,
        "train.tensorboard": False,
        "train.precision": row["precision"],
        "train.threads": threads,
        "data.valid": "",
        "data.valid_fraction": 0.01,
    }  # a small validation at the stop
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        data = ["--data-dir", a.data_dir] if a.data_dir else []
        cmd = [
            sys.executable,
            "-m",
            "rnnkit",
            "train",
            "ptb-small",
            *data,
            "--out",
            str(out),
            "--max-steps",
            str(a.steps + log_every),
            "--quiet",
            "--json",
            "--device",
            a.device,
        ]
        if row["procs"] > 1:
            cmd += ["--nproc", str(row["procs"])]
        for k, v in sets.items():
            cmd += ["--set", f"{k}={json.dumps(v)}"]
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=str(threads))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
        lines = (out / "metrics.jsonl").read_text().splitlines()
        records = [r for r in map(json.loads, lines) if "split" not in r][1:]
    return statistics.mean(r["tokens_per_s"] for r in records)


def scaling_grid(a: argparse.Namespace) -> list[dict]:
    hiddens, batches, bptts = (list(map(int, x.split(","))) for x in (a.hiddens, a.batches, a.bptts))
    backends, precisions, procs = a.backends.split(","), a.precisions.split(","), list(map(int, a.procs.split(",")))
    keys = ("hidden", "batch", "bptt", "backend", "precision", "procs")
    if a.grid == "full":
        combos = itertools.product(hiddens, batches, bptts, backends, precisions, procs)
        return [dict(zip(keys, c)) for c in combos]
    rows = [
        dict(zip(keys, (h, batches[0], bptts[0], be, pr, n)))
        for h, be, pr, n in itertools.product(hiddens, backends, precisions, procs)
    ]
    mid = hiddens[len(hiddens) // 2]
    rows += [dict(zip(keys, (mid, b, bptts[0], backends[0], pr, 1))) for b in batches[1:] for pr in precisions]
    rows += [dict(zip(keys, (mid, batches[0], t, backends[0], pr, 1))) for t in bptts[1:] for pr in precisions]
    return rows


def scaling(a: argparse.Namespace, prov: Provenance) -> int:
    from rnnkit.data.lm import build_vocab, tokenize
    from rnnkit.data.text import find_data_file, read_text
    from rnnkit.errors import UserError
    from rnnkit.train.precision import resolve_precision

    vocab = len(
        build_vocab(tokenize(read_text(find_data_file("ptb/ptb.train.txt", data_dir(a), "data.train")), "word"), "word")
    )
    peaks = {"fp32": adaptive_peak_gflops(torch.float32, a.device)}
    supported = {}
    for pr in a.precisions.split(","):
        try:
            supported[pr] = resolve_precision(pr, torch.device(a.device))[0]
        except UserError as e:
            supported[pr] = None
            print(f"{pr}: unsupported here ({e})", file=sys.stderr)
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        if name in supported.values() or name in a.precisions.split(","):
            peaks[name] = adaptive_peak_gflops(dtype, a.device)
    gpus = torch.cuda.device_count() if a.device.startswith("cuda") else 0
    print(
        f"matmul peak GFLOP/s ({a.threads} threads): " + ", ".join(f"{k} {v:.1f}" for k, v in peaks.items()),
        file=sys.stderr,
    )
    rows = []
    for row in scaling_grid(a):
        resolved = supported.get(row["precision"])
        out = dict(row, layers=a.layers, resolved_precision=resolved)
        if resolved is None:
            out.update(tokens_per_s=None, note="unsupported on this device")
        elif gpus and row["procs"] > gpus:
            out.update(tokens_per_s=None, note=f"needs {row['procs']} GPUs")
        else:
            try:
                rate = scaling_rate(row, a)
            except RuntimeError as e:
                out.update(tokens_per_s=None, note=str(e))
            else:
                gf = rate * train_flops_per_token(vocab, row["hidden"], row["hidden"], a.layers) / 1e9
                out.update(
                    tokens_per_s=round(rate, 1), gflops=round(gf, 2), fraction_of_peak=round(gf / peaks[resolved], 4)
                )
        rows.append(out)
        shown = f"{out['tokens_per_s']:,.0f} tokens/s" if out.get("tokens_per_s") else out.get("note")
        print(f"{row}: {shown}", file=sys.stderr, flush=True)
    print(
        f"\nLM training scaling on {a.device}, {a.layers}-layer LSTM, vocab {vocab}, {a.threads} threads in all; "
        f"matmul peak " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()) + "\n"
    )
    print(
        f"{'hidden':>6} {'batch':>5} {'bptt':>4} {'backend':>8} {'prec':>5} {'procs':>5} {'tokens/s':>10} "
        f"{'GFLOP/s':>8} {'of peak':>8}"
    )
    for r in rows:
        rate = f"{r['tokens_per_s']:>10,.0f}" if r.get("tokens_per_s") else f"{'-':>10}"
        gf = f"{r['gflops']:>8.1f} {r['fraction_of_peak']:>7.1%}" if r.get("gflops") else f"{'-':>8} {'-':>8}"
        print(
            f"{r['hidden']:>6} {r['batch']:>5} {r['bptt']:>4} {r['backend']:>8} {r['precision']:>5} "
            f"{r['procs']:>5} {rate} {gf}" + (f"  ({r['note']})" if r.get("note") else "")
        )
    result = {
        "mode": "scaling",
        "config": vars(a),
        "vocab": vocab,
        "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "rows": rows,
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if a.json_out:
        write_result(a.json_out, "lm_speed", result, prov)
    print(json.dumps(result))
    return 0


def interleave(a: argparse.Namespace, prov: Provenance) -> int:
    """rnnkit's training step against the plain loop's, alternating step by step (see the module docstring)."""
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe
    from rnnkit.train.loop import Trainer
    from rnnkit.train.rundir import RunDir

    overrides = {
        "model.hidden": a.hidden,
        "model.embedding": a.hidden,
        "model.layers": a.layers,
        "model.dropout": a.dropout,
        "model.backend": "fast",
        "data.bptt": a.bptt,
        "train.batch_size": a.batch,
        "train.tensorboard": False,
        "train.precision": a.precision,
        "data.valid": "",
        "data.valid_fraction": 0.002,
    }
    if a.seed is not None:
        overrides["train.seed"] = a.seed
    config = load_recipe("ptb-small", overrides)
    device = torch.device(a.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.write_config(config)
        task = get_task("lm")(config, data_dir(a), device)
        trainer = Trainer(task, config, run, device, echo=False)
        trainer.setup(resume=False)
        params = [p for p in trainer.model.parameters() if p.requires_grad]
        clip, scale = config.optim.clip, task.loss_scale()
        batches = task.train_batches(0, 0)

        def rnnkit_step() -> None:  # the body of Trainer._fit's step
            trainer.optimizer.zero_grad(set_to_none=True)
            with trainer.precision.autocast():
                out = task.train_step(trainer.train_model, next(batches))
            trainer.precision.backward(out[0] * scale if scale != 1.0 else out[0])
            trainer.precision.step(trainer.optimizer, params, clip)
            trainer.state.acc_loss = trainer.state.acc_loss + out[0].detach().double()

        torch.manual_seed(0 if a.seed is None else a.seed)
        vocab = len(task.vocab)
        plain = PlainRNNModel(vocab, a.hidden, a.hidden, a.layers, a.dropout).to(device)
        criterion = nn.CrossEntropyLoss()
        data = task._train_cols
        state: dict[str, Any] = {"hidden": None, "i": 0}

        def plain_step() -> None:  # plain_loop's step
            i = state["i"]
            state["i"] = (i + a.bptt) % (data.size(0) - a.bptt - 1)
            x, y = data[i : i + a.bptt], data[i + 1 : i + 1 + a.bptt].reshape(-1)
            if state["hidden"] is not None:
                state["hidden"] = tuple(h.detach() for h in state["hidden"])
            plain.zero_grad()
            output, state["hidden"] = plain(x, state["hidden"])
            loss = criterion(output.view(-1, vocab), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(plain.parameters(), 5.0)
            for p in plain.parameters():
                p.data.add_(p.grad, alpha=-float(a.bptt))

        steps = {"plain": plain_step, "rnnkit": rnnkit_step}
        cpu: dict[str, list[float]] = {k: [] for k in steps}
        wall: dict[str, list[float]] = {k: [] for k in steps}
        load_start = os.getloadavg()[0]
        for step in range(a.steps + 10):
            for name, fn in steps.items():
                sync()
                c0, w0 = time.process_time(), time.perf_counter()
                fn()
                sync()
                if step >= 10:  # 10 warm-up steps each
                    cpu[name].append(time.process_time() - c0)
                    wall[name].append(time.perf_counter() - w0)
        load_end = os.getloadavg()[0]

    def ratio(times: dict[str, list[float]]) -> float:
        return round(statistics.median(p / r for p, r in zip(times["plain"], times["rnnkit"])), 3)

    tokens = a.bptt * a.batch
    rows = {
        name: {
            "cpu_ms": round(statistics.median(cpu[name]) * 1e3, 2),
            "wall_ms": round(statistics.median(wall[name]) * 1e3, 2),
            "tokens_per_cpu_s": round(tokens / statistics.median(cpu[name]), 1),
            "tokens_per_s": round(tokens / statistics.median(wall[name]), 1),
        }
        for name in steps
    }
    cpu_info = cpu_flags()
    out = {
        "mode": "interleave",
        "config": vars(a),
        "vocab": vocab,
        "steps": rows,
        "rnnkit_vs_plain_cpu": ratio(cpu),
        "rnnkit_vs_plain_wall": ratio(wall),
        "load_avg": {"start": load_start, "end": load_end},
        "oneDNN_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
        "torch": torch.__version__,
        "cpu": cpu_info,
    }
    print(
        f"\nptb-small step, {a.layers}x{a.hidden}, bptt {a.bptt}, batch {a.batch}, {a.threads} threads, {a.precision}; "
        f"{cpu_info['model']} ({' '.join(cpu_info['flags'])}), ONEDNN_MAX_CPU_ISA="
        f"{os.environ.get('ONEDNN_MAX_CPU_ISA', '') or '(none)'}; load {load_start:.1f} -> {load_end:.1f}; "
        f"{a.steps} steps each, alternating\n"
    )
    for name, r in rows.items():
        print(f"{name:>8}: {r['cpu_ms']:8.1f} ms CPU {r['wall_ms']:8.1f} ms wall per step")
    print(
        f"rnnkit vs plain (median of per-step ratios): {out['rnnkit_vs_plain_cpu']:.3f}x by CPU time, "
        f"{out['rnnkit_vs_plain_wall']:.3f}x by wall time"
    )
    if a.json_out:
        write_result(a.json_out, "lm_speed", out, prov)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--bptt", type=int, default=20)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--steps", type=int, default=200, help="timed steps per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="plain,fast,scratch", help="plain, or backend[:precision] (fast:bf16)")
    ap.add_argument("--no-ppl", action="store_true", help="skip the validation perplexity after training")
    ap.add_argument(
        "--allow-emulated-bf16",
        action="store_true",
        help="run bf16 variants on a CPU without bf16 units too (numerics only: ~80x slower matmuls)",
    )
    ap.add_argument(
        "--bf16-gemm-via-fp32",
        action="store_true",
        help="bf16 variants' matrix products widened to fp32 and rounded back (Bf16GemmViaFp32): bf16 "
        "training numerics at fp32 speed on a CPU without bf16 units; quality only, implies "
        "--allow-emulated-bf16",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of every run (default: the plain loop 0, rnnkit's runs the recipe's train.seed)",
    )
    ap.add_argument("--precision", default="fp32", help="rnnkit runs' train.precision (the plain loop stays fp32)")
    ap.add_argument(
        "--data-dir",
        default=None,
        help="a folder laid out like the data cache (default: rnnkit's data registry and cache)",
    )
    ap.add_argument("--json-out")
    ap.add_argument("--scaling", action="store_true", help="the scaling table instead of rnnkit vs plain")
    ap.add_argument(
        "--interleave",
        action="store_true",
        help="rnnkit's and the plain loop's steps alternating one by one in one process (see above)",
    )
    ap.add_argument("--hiddens", default="200,650,1500")
    ap.add_argument("--batches", default="20,64")
    ap.add_argument("--bptts", default="35,70")
    ap.add_argument("--backends", default="fast,scratch")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--grid", choices=("main", "full"), default="main")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (plain loop, rnnkit runs and the scaling grid)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sys.path.insert(0, str(REPO / "src"))
    if a.allow_emulated_bf16 or a.bf16_gemm_via_fp32:
        os.environ["RNNKIT_EMULATED_BF16"] = "1"
    # the plain loop seeds 0, rnnkit's runs the ptb-small recipe's train.seed
    prov = Provenance.start(seeds=[0, 1234] if a.seed is None else [a.seed], data_dir=a.data_dir, threads=a.threads)
    if a.scaling:
        return scaling(a, prov)
    if a.interleave:
        return interleave(a, prov)
    from rnnkit.data.lm import build_vocab, tokenize
    from rnnkit.data.text import find_data_file, read_text

    text = read_text(find_data_file("ptb/ptb.train.txt", data_dir(a), "data.train"))
    tokens = tokenize(text, "word")
    vocab = build_vocab(tokens, "word")
    train = vocab.encode(tokens)
    variants = a.variants.split(",")
    results: dict[str, list[float]] = {v: [] for v in variants}
    ppls: dict[str, list[float | None]] = {v: [] for v in variants}
    peaks = []
    cpu = cpu_flags()
    print(f"CPU: {cpu['model']} ({' '.join(cpu['flags'])}), {a.threads} threads", file=sys.stderr, flush=True)
    for r in range(a.rounds):
        peaks.append(matmul_peak_gflops() if a.device == "cpu" else adaptive_peak_gflops(torch.float32, a.device))
        for v in variants:
            rate, ppl = plain_loop(train, len(vocab), a) if v == "plain" else rnnkit_loop(v, a)
            results[v].append(rate)
            ppls[v].append(ppl)
            shown = f", valid ppl {ppl:.2f}" if ppl is not None else ""
            print(f"round {r + 1} {v:>10}: {rate:,.0f} tokens/s{shown}", file=sys.stderr, flush=True)
    flops = train_flops_per_token(len(vocab), a.hidden, a.hidden, a.layers)
    peak = statistics.median(peaks)
    med = {v: statistics.median(x) for v, x in results.items()}
    rows = []
    print(
        f"\nLM training speed, {a.layers}x{a.hidden} LSTM, bptt {a.bptt}, batch {a.batch}, dropout {a.dropout}, "
        f"vocab {len(vocab)}, {a.threads} threads; fp32 matmul peak {peak:.0f} GFLOP/s; {cpu['model']} "
        f"({' '.join(cpu['flags'])}); {a.steps + 10} steps per run\n"
    )
    print(
        f"{'variant':>10} {'tokens/s':>10} {'vs plain':>9} {'vs fast':>9} {'GFLOP/s':>8} {'of peak':>8} "
        f"{'valid ppl':>10}   (tokens/s: median of the rounds; vs: median of the per-round ratios)"
    )

    def ratio(v: str, base: str) -> float | None:
        """The median over rounds of this round's v / base: each pair ran back to back, so machine drift
        between rounds (+-10% here) cancels, which the ratio of the two medians does not do. "fast" is the first
        fast variant (``fast`` or ``fast:PRECISION``; ``fused``, its old name)."""
        if base == "fast":
            base = next((x for x in variants if x.split(":")[0] in ("fast", "fused")), base)
        if base not in med:
            return None
        return round(statistics.median(x / y for x, y in zip(results[v], results[base])), 3)

    def shown(r: float | None) -> str:
        return f"{r:>8.2f}x" if r is not None else f"{'-':>9}"

    for v in variants:
        gf = med[v] * flops / 1e9
        got = [p for p in ppls[v] if p is not None]
        ppl = statistics.median(got) if got else None
        rows.append(
            {
                "variant": v,
                "tokens_per_s": round(med[v], 1),
                "vs_plain": ratio(v, "plain"),
                "vs_fast": ratio(v, "fast"),
                "gflops": round(gf, 1),
                "fraction_of_peak": round(gf / peak, 3),
                "runs": results[v],
                "valid_ppl": round(ppl, 3) if ppl is not None else None,
                "valid_ppl_runs": ppls[v],
                "steps": a.steps + 10,
            }
        )
        ppl_shown = f"{ppl:>10.2f}" if ppl is not None else f"{'-':>10}"
        print(
            f"{v:>10} {med[v]:>10,.0f} {shown(ratio(v, 'plain'))} {shown(ratio(v, 'fast'))} {gf:>8.1f} "
            f"{gf / peak:>7.1%} {ppl_shown}"
        )
    out = {
        "config": vars(a),
        "vocab": len(vocab),
        "matmul_peak_gflops": round(peak, 1),
        "train_flops_per_token": flops,
        "results": rows,
        "torch": torch.__version__,
        "cpu": cpu,
        "recurrence_choices": CHOICES,
        "recurrence_timings_ms": TIMINGS,
    }
    if a.json_out:
        write_result(a.json_out, "lm_speed", out, prov)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
