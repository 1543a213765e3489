"""Peer benchmark: the same PTB language model trained by Keras 3 (TensorFlow backend) and by rnnkit, in one process.

    python benchmarks/peer_keras.py [--steps 60] [--warmup 10] [--rounds 3] [--threads 2]
                                    [--variants keras-xla,keras,rnnkit] [--precision fp32]
                                    [--data-dir DIR] [--json-out FILE]

The model is the classic Keras/Zaremba "small" PTB setup: embedding 200, two LSTM layers of 256, a dense
softmax over the 10,000 words, batch 60, 20 unrolled steps with the state carried between batches (Keras:
``stateful=True``; rnnkit: truncated BPTT), mean cross-entropy over the 1,200 tokens of a batch, SGD lr 1 with the
gradients clipped to a global norm of 5, no dropout. Both read the same word ids (rnnkit's PTB vocabulary).

Variants, run in turn within every round so that machine drift hits all of them alike:

- ``keras-xla``: ``model.compile(..., jit_compile=True)``, the whole train step compiled by XLA;
- ``keras``: ``jit_compile=False``, TensorFlow's default graph execution on the CPU;
- ``rnnkit``: rnnkit's real training path (task + Trainer + run directory), ``train.precision`` from
  ``--precision``.

Each variant first trains ``--warmup`` batches (XLA compiles then; rnnkit's recurrence choice is made then), then
``--steps`` timed batches: Keras is timed from the end of its first timed batch's predecessor to the end of the
last (a callback), rnnkit from the metrics its Trainer logs (windows of 10 steps, the warm-up window dropped).
Reported: tokens/s per round, the median, and the median of the per-round ratios to ``keras-xla``; plus the
training loss each reached (same data, both start from their own random init), and the CPU flags.

TensorFlow is NOT a dependency of rnnkit: install it in a separate environment with the ``bench`` extra, torch
first so pip never pulls an unpinned one::

    python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install torch==2.13.0
    /work/venv-tf/bin/pip install -e ".[bench]"   # tensorflow + keras
    /work/venv-tf/bin/python benchmarks/peer_keras.py --json-out benchmarks/results/peer-keras-cpu.json
"""

from __future__ import annotations

import argparse
import json
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
SHAPE = {"embedding": 200, "hidden": 256, "layers": 2, "batch": 60, "bptt": 20, "lr": 1.0, "clip": 5.0}


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

    def __init__(self, vocab: int, ids: np.ndarray, jit: bool, total: int) -> None:
        import keras

        self.keras = keras
        keras.utils.set_random_seed(0)
        b, t = SHAPE["batch"], SHAPE["bptt"]
        inp = keras.Input(shape=(t,), batch_size=b, dtype="int32")
        h = keras.layers.Embedding(vocab, SHAPE["embedding"])(inp)
        for _ in range(SHAPE["layers"]):
            h = keras.layers.LSTM(SHAPE["hidden"], return_sequences=True, stateful=True)(h)
        out = keras.layers.Dense(vocab)(h)
        self.model = keras.Model(inp, out)
        self.model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=SHAPE["lr"], global_clipnorm=SHAPE["clip"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit,
        )
        self.x, self.y = stream_batches(ids, total)
        self.at = 0  # next batch

    def run(self, n: int) -> tuple[float, float]:
        """(tokens/s from the end of the first batch to the end of the last, the last batch's loss)."""
        keras = self.keras
        stamps: list[float] = []
        losses: list[float] = []

        class Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                stamps.append(time.perf_counter())
                losses.append(float((logs or {}).get("loss", float("nan"))))

        b = SHAPE["batch"]
        lo, hi = self.at * b, (self.at + n + 1) * b
        self.model.fit(
            self.x[lo:hi], self.y[lo:hi], batch_size=b, epochs=1, shuffle=False, verbose=0, callbacks=[Clock()]
        )
        self.at += n + 1
        tokens = n * b * SHAPE["bptt"]
        return tokens / (stamps[-1] - stamps[0]), losses[-1]


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60, help="timed batches per variant and round")
    ap.add_argument("--warmup", type=int, default=10, help="batches before timing (XLA compiles here)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="keras-xla,keras,rnnkit")
    ap.add_argument("--precision", default="fp32", help="rnnkit's train.precision (Keras stays fp32)")
    ap.add_argument(
        "--data-dir",
        default=None,
        help="a folder laid out like the data cache (default: rnnkit's data registry and cache)",
    )
    ap.add_argument("--json-out")
    a = ap.parse_args()
    variants = a.variants.split(",")
    unknown = set(variants) - {"keras-xla", "keras", "rnnkit"}
    if unknown:
        raise SystemExit(f"peer_keras: unknown variant(s) {', '.join(sorted(unknown))}")
    torch.set_num_threads(a.threads)
    sys.path.append(str(Path(__file__).resolve().parent))  # last: never shadows an installed module
    from _results import Provenance, write_result  # benchmarks/: the schema every published result file follows

    prov = Provenance.start(seeds=[0], data_dir=a.data_dir, threads=a.threads)  # Keras's set_random_seed(0)
    ids, vocab = ptb_ids(data_dir(a))
    keras_runs: dict[str, KerasRun] = {}
    if any(v.startswith("keras") for v in variants):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)
        total = (a.warmup + 1 + a.rounds * (a.steps + 1)) + 1
        for v in variants:
            if v.startswith("keras"):
                keras_runs[v] = KerasRun(vocab, ids, jit=v == "keras-xla", total=total)
                keras_runs[v].run(a.warmup)  # compile + warm caches
    rates: dict[str, list[float]] = {v: [] for v in variants}
    losses: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(a.rounds):
        for v in variants:
            if v == "rnnkit":
                rate, loss = rnnkit_run(data_dir(a), a.steps, a.warmup, a.precision)
            else:
                rate, loss = keras_runs[v].run(a.steps)
            rates[v].append(rate)
            losses[v].append(loss)
            print(f"round {r + 1} {v:>10}: {rate:,.0f} tokens/s (loss {loss:.3f})", file=sys.stderr, flush=True)
    base = "keras-xla" if "keras-xla" in variants else variants[0]
    rows = []
    cpu = cpu_flags()
    print(
        f"\nPTB LM {SHAPE['layers']}x{SHAPE['hidden']} LSTM, embedding {SHAPE['embedding']}, batch {SHAPE['batch']}, "
        f"bptt {SHAPE['bptt']}, SGD + clip {SHAPE['clip']}, {a.threads} threads; {cpu['model']} "
        f"({' '.join(cpu['flags'])})\n"
    )
    print(f"{'variant':>10} {'tokens/s':>10} {'vs ' + base:>14}   per-round tokens/s")
    for v in variants:
        ratio = statistics.median(x / y for x, y in zip(rates[v], rates[base]))
        med = statistics.median(rates[v])
        rows.append(
            {
                "variant": v,
                "tokens_per_s": round(med, 1),
                f"vs_{base}": round(ratio, 3),
                "runs": [round(x, 1) for x in rates[v]],
                "loss_last": [round(x, 4) for x in losses[v]],
            }
        )
        print(f"{v:>10} {med:>10,.0f} {ratio:>13.2f}x   {' '.join(f'{x:,.0f}' for x in rates[v])}")
    versions: dict[str, str] = {"torch": torch.__version__}
    if keras_runs:
        import keras
        import tensorflow as tf

        versions.update(tensorflow=tf.__version__, keras=keras.__version__)
    out = {
        "benchmark": "peer_keras",
        "shape": SHAPE,
        "vocab": vocab,
        "config": vars(a),
        "cpu": cpu,
        "versions": versions,
        "baseline": base,
        "results": rows,
    }
    if a.json_out:
        write_result(a.json_out, "peer_keras", out, prov)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
