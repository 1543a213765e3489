"""Peer benchmark: the same PTB language model trained by Keras 3 (TensorFlow backend) and by rnnkit, alternating.

    python benchmarks/peer_keras.py [--steps 30] [--warmup 10] [--rounds 3] [--threads 1,2[,2p]]
                                    [--variants keras-xla,keras,keras-xla-spe,keras-spe,keras-xla-unroll,rnnkit]
                                    [--precision fp32] [--data-dir DIR] [--json-out FILE]

The model is the seed notebook's (../shared/notes/seed-systems.md, rnnkit's ``ptb-notebook`` recipe): embedding 200,
an LSTM of 256 then one of 128, a dense softmax over the 10,000 words, batch 60, 20 unrolled steps with the state
carried between batches (Keras: ``stateful=True``; rnnkit: truncated BPTT), mean cross-entropy over the 1,200 tokens
of a batch, SGD lr 1 with the gradients clipped to a global norm of 5, no dropout. Both read the same word ids
(rnnkit's PTB vocabulary). (Files before 2026-12-07 20:00 measured two layers of 256: ``shape`` in each says which.)

Keras is given every setting we know that could make it faster on a CPU, and the comparison is with the fastest:

- ``keras-xla``: ``model.compile(..., jit_compile=True)``, the whole train step compiled by XLA;
- ``keras``: ``jit_compile=False``, TensorFlow's graph execution (tf.function) with its oneDNN kernels;
- ``keras-xla-spe`` / ``keras-spe``: the same with ``steps_per_execution=10`` (ten batches per call into the
  graph: less Python and dispatch per step);
- ``keras-xla-unroll``: XLA with ``LSTM(unroll=True)`` (the 20 steps unrolled instead of a while loop);
- ``rnnkit``: rnnkit's real training path (task + Trainer + run directory), ``train.precision`` from ``--precision``.

Two worker processes per thread count, all children of this one: one with TensorFlow for the Keras variants
(TensorFlow fixes its thread pools once per process) and one without it for rnnkit, so neither framework's idle
threads share a process with the other's work (rnnkit in the TensorFlow worker measured 6-10% slower than alone,
2026-12-07). In every round each thread count runs each variant in turn, so drift of the (shared) machine hits all
alike, and only one worker computes at a time. A thread count written with a ``p`` (``--threads 1,2,2p``) is one more
worker whose environment sets ``OMP_WAIT_POLICY=PASSIVE`` before it imports torch (OpenMP reads it once, at start):
PyTorch's OpenMP threads then sleep instead of spinning while they wait, which decides 2-thread speed on a CPU that
other processes share (benchmarks/omp_wait.py); its rows add each variant's median per-round ratio to the same
variant in the default worker of that thread count. Each Keras variant first trains ``--warmup`` batches (XLA
compiles then), then ``--steps`` timed batches per round, timed from the end of the first execution to the end of
the last (a callback); rnnkit trains a fresh run per round, timed from the metrics its Trainer logs (windows of 10
steps, the warm-up window dropped). Reported per thread count: tokens/s per round and their median, the median of the
per-round ratios to ``keras-xla`` and to the fastest Keras variant (fastest by median), the training loss each
reached, and the CPU flags.

TensorFlow is NOT a dependency of rnnkit: install it in a separate environment, torch first so pip never pulls an
unpinned one (the ``bench`` extra names tensorflow and keras)::

    python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install torch==2.13.0
    /work/venv-tf/bin/pip install tensorflow-cpu keras && /work/venv-tf/bin/pip install -e .
    /work/venv-tf/bin/python benchmarks/peer_keras.py --threads 1,2 --json-out benchmarks/results/peer-keras-cpu.json

(measured with tensorflow-cpu 2.21.0 and keras 3.15.1 from PyPI.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# the seed notebook's model: one size per LSTM layer
SHAPE = {"embedding": 200, "hidden": [256, 128], "layers": 2, "batch": 60, "bptt": 20, "lr": 1.0, "clip": 5.0}
# Keras variants: (jit_compile, steps_per_execution, LSTM unroll)
KERAS = {
    "keras-xla": (True, 1, False),
    "keras": (False, 1, False),
    "keras-xla-spe": (True, 10, False),
    "keras-spe": (False, 10, False),
    "keras-xla-unroll": (True, 1, True),
}
NAMES = {
    "keras-xla": "Keras 3, `jit_compile=True` (XLA)",
    "keras": "Keras 3, `jit_compile=False`",
    "keras-xla-spe": "Keras 3, XLA, `steps_per_execution=10`",
    "keras-spe": "Keras 3, no XLA, `steps_per_execution=10`",
    "keras-xla-unroll": "Keras 3, XLA, `LSTM(unroll=True)`",
}


def data_dir(a: argparse.Namespace) -> Path | None:
    """``--data-dir`` as a Path, or None: rnnkit's registry and cache (vendored PTB on a bare machine)."""
    return Path(a.data_dir) if a.data_dir else None


def cpu_flags() -> dict[str, Any]:
    """What the figures were measured on: model name and the SIMD flags that decide fp32/bf16 speed."""
    flags: list[str] = []
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
            elif line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni")
    return {
        "model": model,
        "cores": os.cpu_count(),
        "flags": [f for f in wanted if f in flags],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def ptb_ids(data_dir: Path) -> tuple[np.ndarray, int]:
    sys.path.insert(0, str(REPO / "src"))
    from rnnkit.data.lm import build_vocab, tokenize
    from rnnkit.data.text import find_data_file, read_text

    tokens = tokenize(read_text(find_data_file("ptb/ptb.train.txt", data_dir, "data.train")), "word")
    vocab = build_vocab(tokens, "word")
    return vocab.encode(tokens).numpy().astype(np.int32), len(vocab)


def stream_batches(ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` consecutive TBPTT batches as Keras' stateful layers want them: row r of batch k continues row r of
    batch k - 1. Returns (n * batch, bptt) inputs and targets."""
    b, t = SHAPE["batch"], SHAPE["bptt"]
    cols = ids[: len(ids) // b * b].reshape(b, -1)  # (batch, steps): column r is one contiguous stream
    if cols.shape[1] <= n * t:
        raise SystemExit(f"peer_keras: PTB is too short for {n} batches of {b} x {t}")
    x = np.stack([cols[:, k * t : (k + 1) * t] for k in range(n)]).reshape(n * b, t)
    y = np.stack([cols[:, k * t + 1 : (k + 1) * t + 1] for k in range(n)]).reshape(n * b, t)
    return x, y


class KerasRun:
    """One Keras model, compiled once (with or without XLA); ``run(n)`` trains the next ``n`` batches."""

    def __init__(self, vocab: int, ids: np.ndarray, variant: str, total: int) -> None:
        import keras

        jit, self.spe, unroll = KERAS[variant]
        self.keras = keras
        keras.utils.set_random_seed(0)
        b, t = SHAPE["batch"], SHAPE["bptt"]
        inp = keras.Input(shape=(t,), batch_size=b, dtype="int32")
        h = keras.layers.Embedding(vocab, SHAPE["embedding"])(inp)
        for size in SHAPE["hidden"]:
            h = keras.layers.LSTM(size, return_sequences=True, stateful=True, unroll=unroll)(h)
        out = keras.layers.Dense(vocab)(h)
        self.model = keras.Model(inp, out)
        self.model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=SHAPE["lr"], global_clipnorm=SHAPE["clip"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit,
            steps_per_execution=self.spe,
        )
        self.x, self.y = stream_batches(ids, total)
        self.at = 0  # next batch

    def run(self, n: int) -> tuple[float, float]:
        """(tokens/s from the end of the first execution to the end of the last, the last batch's loss): ``n``
        timed batches after one untimed execution (1 batch, or ``steps_per_execution`` of them)."""
        keras = self.keras
        stamps: list[tuple[int, float]] = []
        losses: list[float] = []

        class Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                stamps.append((batch, time.perf_counter()))  # with steps_per_execution: once per execution
                losses.append(float((logs or {}).get("loss", float("nan"))))

        b = SHAPE["batch"]
        n = -(-n // self.spe) * self.spe  # whole executions
        lo, hi = self.at * b, (self.at + n + self.spe) * b
        self.model.fit(
            self.x[lo:hi], self.y[lo:hi], batch_size=b, epochs=1, shuffle=False, verbose=0, callbacks=[Clock()]
        )
        self.at += n + self.spe
        (b0, t0), (b1, t1) = stamps[0], stamps[-1]
        tokens = (b1 - b0) * b * SHAPE["bptt"]
        return tokens / (t1 - t0), losses[-1]


def rnnkit_run(data_dir: Path, steps: int, warmup: int, precision: str) -> tuple[float, float]:
    """(tokens/s, training loss of the last window) of `rnnkit train` on the peer shape, through the Trainer."""
    sys.path.insert(0, str(REPO / "src"))
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe
    from rnnkit.train.loop import Trainer
    from rnnkit.train.rundir import RunDir

    log_every = 10
    warm = max(log_every, -(-warmup // log_every) * log_every)
    overrides = {
        "model.embedding": SHAPE["embedding"],
        "model.hidden": SHAPE["hidden"],
        "model.layers": SHAPE["layers"],
        "model.dropout": 0.0,
        "model.backend": "fast",
        "data.bptt": SHAPE["bptt"],
        "optim.loss_over_time": "mean",
        "train.batch_size": SHAPE["batch"],
        "optim.lr": SHAPE["lr"],
        "optim.clip": SHAPE["clip"],
        "optim.momentum": 0.0,
        "train.max_steps": warm + steps,
        "train.log_every": log_every,
        "train.eval_test": False,
        "train.tensorboard": False,
        "data.valid": "",
        "data.valid_fraction": 0.002,
        "train.precision": precision,
    }
    config = load_recipe("ptb-small", overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.write_config(config)
        task = get_task("lm")(config, data_dir, torch.device("cpu"))
        trainer = Trainer(task, config, run, torch.device("cpu"), echo=False)
        trainer.setup(resume=False)
        trainer.fit()
        records = [r for r in run.read_metrics() if "split" not in r and r["step"] > warm]
    return statistics.mean(r["tokens_per_s"] for r in records), records[-1]["loss"]


def gemm_bound(vocab: int, rounds: int = 5) -> dict[str, float]:
    """How fast a training step could run if it did nothing but its matrix products, at the rate this machine's BLAS
    reaches on the output layer's three (tokens x hidden) x (hidden x vocab) products (into reused buffers, best of
    ``rounds``, at the calling thread count): the ceiling no implementation of this fp32 model passes, against which
    both frameworks and the goal are read. The LSTM's products are counted at the same rate (its per-time-step
    products of 60 rows run slower), so the ceiling is generous."""
    n, e, sizes = SHAPE["batch"] * SHAPE["bptt"], SHAPE["embedding"], SHAPE["hidden"]
    h = sizes[-1]  # the softmax reads the last layer
    x, w, g = torch.randn(n, h), torch.randn(vocab, h), torch.randn(n, vocab)
    out, dx, dw = torch.empty(n, vocab), torch.empty(n, h), torch.empty(vocab, h)
    best = float("inf")
    for _ in range(rounds + 1):  # the first warms the buffers and BLAS
        t = time.perf_counter()
        torch.mm(x, w.t(), out=out)  # logits
        torch.mm(g, w, out=dx)  # gradient of the hidden states
        torch.mm(g.t(), x, out=dw)  # gradient of the output weight
        best = min(best, time.perf_counter() - t)
    output = 3 * 2 * n * h * vocab  # forward + the two backward products
    ins = [e, *sizes[:-1]]  # each layer's input width
    lstm = sum(3 * 2 * n * 4 * k * (i + k) for i, k in zip(ins, sizes))  # input + recurrent products, fwd and bwd
    rate = output / best
    return {
        "gflop_per_step": round((output + lstm) / 1e9, 2),
        "gemm_gflop_per_s": round(rate / 1e9, 1),
        "tokens_per_s": round(n * rate / (output + lstm), 1),
    }


def worker(conn: Any, threads: int, variants: list[str], data: str | None, batches: int, warmup: int) -> None:
    """One thread count and one framework (Keras variants, or rnnkit without TensorFlow imported): build and warm
    every Keras variant once, then run what the parent asks, one at a time."""
    torch.set_num_threads(threads)
    ids, vocab = ptb_ids(Path(data) if data else None)
    runs: dict[str, KerasRun] = {}
    if any(v in KERAS for v in variants):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        for v in variants:
            if v in KERAS:
                runs[v] = KerasRun(vocab, ids, v, batches)
                runs[v].run(warmup)  # compile + warm caches
    versions: dict[str, str] = {"torch": torch.__version__}
    if runs:
        import keras
        import tensorflow as tf

        versions.update(tensorflow=tf.__version__, keras=keras.__version__)
    conn.send(("ready", vocab, versions))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        if msg[0] == "bound":
            conn.send(gemm_bound(vocab))
            continue
        _, v, steps, precision = msg
        if v == "rnnkit":
            conn.send(rnnkit_run(Path(data) if data else None, steps, warmup, precision))
        else:
            conn.send(runs[v].run(steps))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="timed batches per variant and round")
    ap.add_argument("--warmup", type=int, default=10, help="batches before timing (XLA compiles here)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--threads",
        default="1,2",
        help="thread counts, each in its own worker; Np: one with OMP_WAIT_POLICY=PASSIVE (default: %(default)s)",
    )
    ap.add_argument("--variants", default=",".join([*KERAS, "rnnkit"]))
    ap.add_argument("--precision", default="fp32", help="rnnkit's train.precision (Keras stays fp32)")
    ap.add_argument(
        "--data-dir",
        default=None,
        help="a folder laid out like the data cache (default: rnnkit's data registry and cache)",
    )
    ap.add_argument("--json-out")
    a = ap.parse_args()
    variants = a.variants.split(",")
    unknown = set(variants) - {*KERAS, "rnnkit"}
    if unknown:
        raise SystemExit(f"peer_keras: unknown variant(s) {', '.join(sorted(unknown))}")
    specs = str(a.threads).split(",")
    if any(not s.rstrip("p").isdigit() or s.count("p") > 1 for s in specs) or len(set(specs)) != len(specs):
        raise SystemExit(f"peer_keras: --threads takes distinct counts, each with an optional 'p': {a.threads!r}")
    thread_counts = [int(s.rstrip("p")) for s in specs]
    sys.path.append(str(Path(__file__).resolve().parent))  # last: never shadows an installed module
    from _results import Provenance, write_result  # benchmarks/: the schema every published result file follows

    prov = Provenance.start(seeds=[0], data_dir=a.data_dir, threads=max(thread_counts))  # Keras's seed 0
    batches = -(-a.warmup // 10) * 10 + 10 + a.rounds * (-(-a.steps // 10) * 10 + 10) + 1  # spe 10 at most
    ctx = mp.get_context("spawn")
    workers: dict[tuple[str, str], tuple[Any, Any]] = {}  # (thread spec, "keras" | "rnnkit") -> (process, pipe)
    vocab, versions = 0, {}
    policy = os.environ.get("OMP_WAIT_POLICY")
    groups = {"keras": [v for v in variants if v in KERAS], "rnnkit": [v for v in variants if v == "rnnkit"]}
    for spec, t in zip(specs, thread_counts):
        for group, members in groups.items():
            if not members:
                continue
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child, t, members, a.data_dir, batches, a.warmup), daemon=True)
            if spec.endswith("p"):
                os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # a spawned child starts from this environment
            try:
                proc.start()
            finally:
                if policy is None:
                    os.environ.pop("OMP_WAIT_POLICY", None)
                else:
                    os.environ["OMP_WAIT_POLICY"] = policy
            _, vocab, got = parent.recv()  # one worker warms up at a time
            versions.update(got)
            workers[spec, group] = (proc, parent)

    def ask(spec: str, variant: str, *msg: Any) -> Any:
        conn = workers[spec, "keras" if variant in KERAS else "rnnkit"][1]
        conn.send(msg)
        return conn.recv()

    rates = {s: {v: [] for v in variants} for s in specs}
    losses = {s: {v: [] for v in variants} for s in specs}
    for r in range(a.rounds):
        for s in specs:
            for v in variants:
                rate, loss = ask(s, v, "run", v, a.steps, a.precision)
                rates[s][v].append(rate)
                losses[s][v].append(loss)
                print(f"round {r + 1} {s} thread(s) {v:>16}: {rate:,.0f} tokens/s (loss {loss:.3f})", file=sys.stderr)
    bounds = {}
    for s in specs:  # after the rounds, one worker of each thread count alone (torch's BLAS, either process)
        bounds[s] = ask(s, "rnnkit" if groups["rnnkit"] else variants[0], "bound")
    for proc, conn in workers.values():
        conn.send(("stop",))
        proc.join(timeout=60)
    cpu = cpu_flags()
    print(
        f"\nPTB LM, LSTM {' -> '.join(map(str, SHAPE['hidden']))}, embedding {SHAPE['embedding']}, "
        f"batch {SHAPE['batch']}, bptt {SHAPE['bptt']}, SGD + clip {SHAPE['clip']}; "
        f"{cpu['model']} ({' '.join(cpu['flags'])})"
    )
    by_threads = []
    for s, t in zip(specs, thread_counts):
        passive = s.endswith("p")
        keras_variants = [v for v in variants if v in KERAS]
        fastest = max(keras_variants, key=lambda v: statistics.median(rates[s][v])) if keras_variants else None
        base = "keras-xla" if "keras-xla" in variants else variants[0]
        default = str(t) if passive and str(t) in rates else None  # the same thread count, default wait policy
        rows = []
        print(f"\n{s} thread(s): {'variant':>16} {'tokens/s':>10} {'vs ' + base:>16} {'vs fastest Keras':>17}")
        for v in variants:
            ratio = statistics.median(x / y for x, y in zip(rates[s][v], rates[s][base]))
            fast = statistics.median(x / y for x, y in zip(rates[s][v], rates[s][fastest])) if fastest else None
            med = statistics.median(rates[s][v])
            row = {
                "variant": v,
                "tokens_per_s": round(med, 1),
                f"vs_{base}": round(ratio, 3),
                "vs_fastest_keras": round(fast, 3) if fast is not None else None,
                "runs": [round(x, 1) for x in rates[s][v]],
                "loss_last": [round(x, 4) for x in losses[s][v]],
            }
            if default:
                row["vs_default_wait_policy"] = round(
                    statistics.median(x / y for x, y in zip(rates[s][v], rates[default][v])), 3
                )
            rows.append(row)
            print(f"{' ' * 14}{v:>16} {med:>10,.0f} {ratio:>15.2f}x {fast or float('nan'):>16.2f}x")
        bound = bounds[s]
        print(
            f"{' ' * 14}{'GEMM bound':>16} {bound['tokens_per_s']:>10,.0f}  ({bound['gflop_per_step']} GFLOP a step at "
            f"{bound['gemm_gflop_per_s']} GFLOP/s: the products alone)"
        )
        entry = {"threads": t, "baseline": base, "fastest_keras": fastest, "results": rows, "gemm_bound": bound}
        if passive:
            entry["omp_wait_policy"] = "PASSIVE"
        by_threads.append(entry)
    out = {
        "benchmark": "peer_keras",
        "shape": SHAPE,
        "vocab": vocab,
        "config": {**vars(a), "threads": thread_counts, "workers": specs},
        "cpu": cpu,
        "versions": versions,
        "names": {v: NAMES.get(v, f"rnnkit {a.precision} (Trainer)") for v in variants},
        "by_threads": by_threads,
    }
    if a.json_out:
        write_result(a.json_out, "peer_keras", out, prov)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
