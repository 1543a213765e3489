"""Where a language model's training step spends its time: data, embedding, recurrence, decoder, softmax, optimiser.

    python benchmarks/lm_profile.py [RECIPE=ptb-medium] [--steps 30] [--warmup 5] [--threads 2]
                                    [--precision fp32|bf16|auto] [--allow-emulated-bf16]
                                    [--set model.backend=scratch ...] [--device cpu|cuda]
                                    [--data-dir DIR] [--json-out FILE] [--ops N]

It builds the recipe's task, model, optimiser and precision policy through the Trainer (the path `rnnkit train`
takes) and then drives the Trainer's own step pieces (``task.train_batches``, ``task.train_step``,
``precision.backward``, ``precision.step``) one step at a time, timestamping the phase boundaries:

- forward: the embedding is ``model.encoder`` (module hooks; AWD-LSTM: its ``embedding_dropout``), the output
  layer (decoder + softmax loss) starts where the model calls ``rnnkit.models.lm.decode`` (wrapped) and ends
  where ``train_step`` returns; the recurrence is what lies between (with the dropout between layers);
- backward: gradient hooks on the output layer's input and on the embedding's output fire when autograd reaches
  them, so the backward splits the same way;
- where the decoder runs as its own module (under autocast, where the fused output layer is not used), hooks on
  it and on the logits' gradient split "output" further into "decoder" and "softmax";
- the optimiser phase is gradient clipping + the step + zero_grad.

On CUDA each timestamp synchronises, which is what makes a per-phase split possible and costs a little
throughput. ``--ops N`` adds
the top N operators by self time from ``torch.profiler`` over the same steps, to see *what* inside a phase is
slow. Each phase's arithmetic (2 x multiply-adds) is divided by its time to give GFLOP/s against the machine's
measured matmul peak, which is what says whether a phase is compute-bound or overhead-bound.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from _results import Provenance, write_result
from lm_speed import adaptive_peak_gflops

REPO = Path(__file__).resolve().parent.parent
PHASES = ("data", "embedding", "recurrence", "output", "decoder", "softmax", "optimizer", "other")


class PhaseClock:
    """Timestamps named events within one training step (synchronising first on CUDA)."""

    def __init__(self, device: torch.device) -> None:
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        self.sync()
        self.marks[name] = time.perf_counter()

    def hook(self, name: str):
        def fn(*_: Any) -> None:
            self.mark(name)

        return fn


def data_dir(a: argparse.Namespace) -> Path | None:
    """``--data-dir`` as a Path, or None: rnnkit's registry and cache (vendored PTB on a bare machine)."""
    return Path(a.data_dir) if a.data_dir else None


def _first_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and x:
        return _first_tensor(x[0])
    return None


def _tap(clock: PhaseClock, name: str, t: Any) -> None:
    """Mark ``name`` when autograd delivers the gradient of ``t`` (the backward of what follows it is done)."""
    t = _first_tensor(t)
    if t is not None and t.requires_grad:
        t.register_hook(lambda g: clock.mark(name))


def instrument(model: torch.nn.Module, clock: PhaseClock) -> None:
    """Marks at the three boundaries of an LM step: embedding -> recurrence -> output layer, both directions.

    The output layer starts where the model calls ``rnnkit.models.lm.decode`` (wrapped here); the embedding is
    ``model.encoder`` (module hooks) or, for AWD-LSTM, its ``embedding_dropout`` function (wrapped), which looks
    the rows up from a masked weight without calling the module.
    """
    import rnnkit.models.awd as awd
    import rnnkit.models.lm as lm

    def wrap(module: Any, fn_name: str, before: str, after: str, tap_in: str | None, tap_out: str | None) -> None:
        original = getattr(module, fn_name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            clock.mark(before)
            if tap_in:
                _tap(clock, tap_in, args[1] if fn_name == "decode" else args[0])
            out = original(*args, **kwargs)
            clock.mark(after)
            if tap_out:
                _tap(clock, tap_out, out)
            return out

        setattr(module, fn_name, wrapped)

    def hook_module(module: torch.nn.Module, name: str) -> None:
        def after(m: torch.nn.Module, args: Any, out: Any) -> None:
            clock.mark(f"{name}_fwd1")
            _tap(clock, f"{name}_out_grad", out)

        module.register_forward_pre_hook(lambda m, a: clock.mark(f"{name}_fwd0"))
        module.register_forward_hook(after)

    for mod in (lm, awd):  # each module calls its own global name
        wrap(mod, "decode", "out_fwd0", "out_fwd1", "out_in_grad", None)
    if hasattr(model, "rnns"):
        wrap(awd, "embedding_dropout", "encoder_fwd0", "encoder_fwd1", None, "encoder_out_grad")
    else:
        hook_module(model.encoder, "encoder")
    decoder = getattr(model, "decoder", None)
    if decoder is not None:  # called as a module only off the fused path (autocast): split decoder / softmax
        hook_module(decoder, "decoder")


def step_phases(m: dict[str, float]) -> dict[str, float]:
    """Seconds per phase from one step's marks (see the module docstring for the boundaries).

    "output" is the decoder and the softmax loss together; where the decoder runs as its own module (not fused
    with the loss: autocast) it is also split into "decoder" and "softmax".
    """
    # backward order: loss -> [logits grad: softmax done] -> output input grad (output layer done)
    # -> embedding output grad (recurrence done) -> embedding backward until backward() returns
    bwd0, bwd_end = m["bwd0"], m["bwd_end"]
    out_in = m.get("out_in_grad", bwd0)
    emb_out = m.get("encoder_out_grad", out_in)
    out = {
        "data": m["data1"] - m["data0"],
        "embedding": (m["encoder_fwd1"] - m["encoder_fwd0"]) + (bwd_end - emb_out),
        "recurrence": (m["out_fwd0"] - m["encoder_fwd1"]) + (emb_out - out_in),
        "output": (m["fwd_end"] - m["out_fwd0"]) + (out_in - bwd0),
        "optimizer": m["opt1"] - bwd_end,
    }
    if "decoder_fwd1" in m and "decoder_out_grad" in m:
        out["decoder"] = (m["decoder_fwd1"] - m["decoder_fwd0"]) + (out_in - m["decoder_out_grad"])
        out["softmax"] = (m["fwd_end"] - m["decoder_fwd1"]) + (m["decoder_out_grad"] - bwd0)
    out["total"] = m["opt1"] - m["data0"]
    out["other"] = out["total"] - sum(out[k] for k in ("data", "embedding", "recurrence", "output", "optimizer"))
    return out


def phase_flops(m: Any, vocab_size: int, tokens: int) -> dict[str, float]:
    """Training arithmetic (forward + backward, 2 x multiply-adds) per phase for one step of ``tokens``;
    ``m`` is the run's model config."""
    emb, hid, layers = m.embedding, m.hidden, m.layers
    outs = list(hid) if isinstance(hid, (list, tuple)) else [hid] * layers  # one size per layer (ptb-notebook)
    sizes = [emb, *outs[:-1]]
    if getattr(m, "arch", "") == "awd" and getattr(m, "tie", False):
        outs[-1] = emb  # AWD: the last layer projects back to the embedding size
    gates = {"lstm": 4, "gru": 3, "rnn": 1}.get(m.cell, 4)
    rnn = sum(gates * o * (i + o) for i, o in zip(sizes, outs))
    dec = 3 * 2 * outs[-1] * vocab_size * tokens
    return {"recurrence": 3 * 2 * rnn * tokens, "output": dec, "decoder": dec}


def profile(a: argparse.Namespace) -> dict[str, Any]:
    from rnnkit.config import parse_overrides
    from rnnkit.ops.device import pick_device
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe
    from rnnkit.train.loop import Trainer
    from rnnkit.train.rundir import RunDir

    device = pick_device(a.device)
    if device.type == "cpu":
        torch.set_num_threads(a.threads)
    overrides = parse_overrides(a.overrides)
    overrides.update({"train.tensorboard": False, "train.eval_test": False})
    if a.precision:
        overrides["train.precision"] = a.precision
    if a.allow_emulated_bf16:
        import os

        os.environ["RNNKIT_EMULATED_BF16"] = "1"
    config = load_recipe(a.recipe, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.write_config(config)
        task = get_task(config.task)(config, data_dir(a), device)
        trainer = Trainer(task, config, run, device, echo=False)
        trainer.setup(resume=False)
    model, opt, prec = trainer.model, trainer.optimizer, trainer.precision
    params = [p for p in model.parameters() if p.requires_grad]
    clock = PhaseClock(device)
    instrument(model, clock)
    model.train()
    task.begin_epoch(model, 0)
    batches = task.train_batches(0, 0)
    rows: list[dict[str, float]] = []
    tokens = 0
    prof = None
    for i in range(a.warmup + a.steps):
        if i == a.warmup and a.ops:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if device.type == "cuda":
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            prof = torch.profiler.profile(activities=activities)
            prof.__enter__()
        clock.marks.clear()
        clock.mark("data0")
        batch = next(batches)
        clock.mark("data1")
        opt.zero_grad(set_to_none=True)
        with prec.autocast():
            out = task.train_step(model, batch)
        clock.mark("fwd_end")
        loss = out[0]
        scale = task.loss_scale()
        clock.mark("bwd0")
        prec.backward(loss * scale if scale != 1.0 else loss)
        clock.mark("bwd_end")
        prec.step(opt, params, config.optim.clip)
        clock.mark("opt1")
        if i >= a.warmup:
            rows.append(step_phases(clock.marks))
            tokens = out[1]
    if prof is not None:
        prof.__exit__(None, None, None)
    med = {k: statistics.median(r[k] for r in rows) for k in (*PHASES, "total") if k in rows[0]}
    flops = phase_flops(config.model, len(task.vocab), tokens)
    precision = prec.name
    peak_dtype = prec.dtype or torch.float32
    peak = adaptive_peak_gflops(peak_dtype, device.type)
    result: dict[str, Any] = {
        "recipe": a.recipe,
        "overrides": a.overrides,
        "seed": config.train.seed,
        "device": str(device),
        "threads": a.threads,
        "precision": precision,
        "backend": config.model.backend,
        "tokens_per_step": tokens,
        "steps": a.steps,
        "step_ms": med["total"] * 1e3,
        "tokens_per_s": tokens / med["total"],
        "matmul_peak_gflops": peak,
        "phases": {},
    }
    for k in (k for k in PHASES if k in med):
        entry = {"ms": med[k] * 1e3, "share": med[k] / med["total"]}
        if k in flops and med[k] > 0:
            entry["gflops"] = flops[k] / med[k] / 1e9
            entry["peak_fraction"] = entry["gflops"] / peak
        result["phases"][k] = entry
    if prof is not None:
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        table = prof.key_averages().table(sort_by=key, row_limit=a.ops)
        result["top_ops"] = [
            {"op": e.key, "self_ms_per_step": getattr(e, key) / 1e3 / a.steps, "calls_per_step": e.count / a.steps}
            for e in sorted(prof.key_averages(), key=lambda e: -getattr(e, key))[: a.ops]
        ]
        result["_table"] = table
        casts = [e for e in prof.key_averages() if e.key in ("aten::_to_copy", "aten::copy_")]
        result["casts_per_step"] = {e.key: e.count / a.steps for e in casts}
    return result


def print_report(r: dict[str, Any]) -> None:
    print(
        f"{r['recipe']} {' '.join(r['overrides'])}: {r['device']}, {r['threads']} threads, {r['precision']}, "
        f"backend {r['backend']}; {r['tokens_per_step']} tokens/step, median step {r['step_ms']:.1f} ms "
        f"({r['tokens_per_s']:,.0f} tokens/s), matmul peak {r['matmul_peak_gflops']:.0f} GFLOP/s"
    )
    print(f"{'phase':<11} {'ms/step':>8} {'share':>6} {'GFLOP/s':>8} {'of peak':>8}")
    for k, e in r["phases"].items():
        k = f"  {k}" if k in ("decoder", "softmax") else k  # the split of "output"
        gf = f"{e['gflops']:8.1f} {e['peak_fraction']:8.1%}" if "gflops" in e else f"{'':>8} {'':>8}"
        print(f"{k:<11} {e['ms']:8.1f} {e['share']:6.1%} {gf}")
    if "_table" in r:
        print(r["_table"])
        print(
            "dtype conversions and copies per step: "
            + ", ".join(f"{k} {v:.0f}" for k, v in r.get("casts_per_step", {}).items())
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", default="ptb-medium")
    ap.add_argument("--steps", type=int, default=30, help="timed steps (the median step is reported)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--ops", type=int, default=0, help="also list the top N operators by self time")
    ap.add_argument("--precision", help="train.precision for the profiled step (fp32 | bf16 | auto)")
    ap.add_argument(
        "--allow-emulated-bf16",
        action="store_true",
        help="profile bf16 on a CPU without bf16 units too (what runs, not how fast: matmuls emulated)",
    )
    ap.add_argument(
        "--data-dir",
        default=None,
        help="a folder laid out like the data cache (default: rnnkit's data registry and cache)",
    )
    ap.add_argument("--json-out")
    a = ap.parse_args()
    prov = Provenance.start(data_dir=a.data_dir, threads=a.threads)
    r = profile(a)
    prov.seeds = [r["seed"]]
    print_report(r)
    if a.json_out:
        r.pop("_table", None)
        write_result(a.json_out, "lm_profile", r, prov)
    return 0


if __name__ == "__main__":
    sys.exit(main())
