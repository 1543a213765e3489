"""Training speed of rnnkit's language model against a plain PyTorch loop, in the same process.

    python benchmarks/lm_speed.py [--hidden 200] [--layers 2] [--bptt 20] [--batch 20] [--dropout 0]
                                  [--steps 200] [--rounds 3] [--threads 2] [--data-dir DIR] [--json-out FILE]

The plain loop is written the way the pytorch/examples word language model writes it (embedding -> nn.LSTM ->
nn.Linear, repackage_hidden, model.zero_grad(), clip_grad_norm_, manual SGD update). rnnkit runs through its
real training path (task + Trainer, run directory and all), once with the fused backend and once with the
scratch cells. Runs alternate for `--rounds` rounds so machine noise hits every variant alike; the median
tokens/s is reported, plus the fraction of the machine's measured matmul throughput that training achieves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent


def matmul_peak_gflops(n: int = 2048, dtype: torch.dtype = torch.float32, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
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

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]):
        emb = self.drop(self.encoder(x))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        return self.decoder(output), hidden


def plain_loop(train: torch.Tensor, ntokens: int, a: argparse.Namespace) -> float:
    """tokens/s of the pytorch/examples training loop (after a warm-up of 10 batches)."""
    torch.manual_seed(0)
    model = PlainRNNModel(ntokens, a.hidden, a.hidden, a.layers, a.dropout)
    criterion = nn.CrossEntropyLoss()
    nbatch = train.size(0) // a.batch
    data = train[: nbatch * a.batch].view(a.batch, -1).t().contiguous()
    hidden = (torch.zeros(a.layers, a.batch, a.hidden), torch.zeros(a.layers, a.batch, a.hidden))
    model.train()
    lr, t0, tokens = 1.0, 0.0, 0
    for step, i in enumerate(range(0, (a.steps + 10) * a.bptt, a.bptt)):
        if step == 10:
            t0, tokens = time.perf_counter(), 0
        x, y = data[i : i + a.bptt], data[i + 1 : i + 1 + a.bptt].reshape(-1)
        hidden = tuple(h.detach() for h in hidden)
        model.zero_grad()
        output, hidden = model(x, hidden)
        loss = criterion(output.view(-1, ntokens), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        tokens += y.numel()
    return tokens / (time.perf_counter() - t0)


def rnnkit_loop(backend: str, a: argparse.Namespace) -> float:
    """tokens/s of `rnnkit train ptb-small` with the same shape, read from its metrics.jsonl."""
    from rnnkit.config import load_recipe
    from rnnkit.tasks import get_task
    from rnnkit.train.loop import Trainer
    from rnnkit.train.rundir import RunDir

    log_every = 10
    overrides = {"model.hidden": a.hidden, "model.embedding": a.hidden, "model.layers": a.layers,
                 "model.dropout": a.dropout, "model.backend": backend, "data.bptt": a.bptt,
                 "train.batch_size": a.batch, "train.max_steps": a.steps + log_every, "train.log_every": log_every,
                 "train.eval_test": False, "train.tensorboard": False, "data.valid": "ptb/ptb.test.txt"}
    config = load_recipe("ptb-small", overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.write_config(config)
        task = get_task("lm")(config, Path(a.data_dir), torch.device("cpu"))
        trainer = Trainer(task, config, run, torch.device("cpu"), echo=False)
        trainer.setup(resume=False)
        trainer.fit()
        records = [r for r in run.read_metrics() if "split" not in r][1:]  # drop the warm-up window
    return statistics.mean(r["tokens_per_s"] for r in records)


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
    ap.add_argument("--variants", default="plain,fused,scratch")
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--json-out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sys.path.insert(0, str(REPO / "src"))
    from rnnkit.data.lm import build_vocab, tokenize
    from rnnkit.data.text import find_data_file, read_text

    text = read_text(find_data_file("ptb/ptb.train.txt", Path(a.data_dir), "data.train"))
    tokens = tokenize(text, "word")
    vocab = build_vocab(tokens, "word")
    train = vocab.encode(tokens)
    variants = a.variants.split(",")
    results: dict[str, list[float]] = {v: [] for v in variants}
    peaks = []
    for r in range(a.rounds):
        peaks.append(matmul_peak_gflops())
        for v in variants:
            rate = plain_loop(train, len(vocab), a) if v == "plain" else rnnkit_loop(v, a)
            results[v].append(rate)
            print(f"round {r + 1} {v:>8}: {rate:,.0f} tokens/s", file=sys.stderr, flush=True)
    flops = train_flops_per_token(len(vocab), a.hidden, a.hidden, a.layers)
    peak = statistics.median(peaks)
    med = {v: statistics.median(x) for v, x in results.items()}
    rows = []
    print(f"\nLM training speed, {a.layers}x{a.hidden} LSTM, bptt {a.bptt}, batch {a.batch}, dropout {a.dropout}, "
          f"vocab {len(vocab)}, {a.threads} threads; fp32 matmul peak {peak:.0f} GFLOP/s\n")
    print(f"{'variant':>8} {'tokens/s':>10} {'vs plain':>9} {'GFLOP/s':>8} {'of peak':>8}")
    for v in variants:
        gf = med[v] * flops / 1e9
        ratio = med[v] / med["plain"] if "plain" in med else float("nan")
        rows.append({"variant": v, "tokens_per_s": round(med[v], 1), "vs_plain": round(ratio, 3),
                     "gflops": round(gf, 1), "fraction_of_peak": round(gf / peak, 3), "runs": results[v]})
        print(f"{v:>8} {med[v]:>10,.0f} {ratio:>8.2f}x {gf:>8.1f} {gf / peak:>7.1%}")
    out = {"config": vars(a), "vocab": len(vocab), "matmul_peak_gflops": round(peak, 1),
           "train_flops_per_token": flops, "results": rows, "torch": torch.__version__}
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
