"""Quality at an equal budget (issue 21 item 5): LSTM, GRU and the five modern cells (minGRU, minLSTM, sLSTM,
mLSTM, Mamba) at equal parameter count, each trained for the same CPU time on each task; the test metric,
throughput and a curve of the validation metric against time, beside the literature's figures.

    OMP_NUM_THREADS=1 RNNKIT_DATA_MIRROR=../shared/data python benchmarks/quality.py \\
        [--tasks mnist-pixels,shakespeare] [--cells lstm,gru,mingru,minlstm,slstm,mlstm,mamba] [--seeds 1,2,3] \\
        [--budget-s 150] [--json-out benchmarks/results/quality-cpu.json] [--plot docs/img/quality-cpu.png]

The budget: process CPU time of ONE thread (``OMP_NUM_THREADS=1``, ``train.threads = 1``), counted from the start
of training (data read, model built) to the stop; the validations inside it count, the final validation and test
evaluation of the best checkpoint after the stop do not. Why CPU time and not wall time: the machine this ran on
is shared with other jobs, and a wall-clock budget would hand each run whatever the neighbours left it; one
thread's CPU time is the work the run was allowed to do. Wall time is recorded beside it. Each run keeps its
recipe's own stopping rules too (a small data set's epochs may end it before the budget: ``stopped`` says which).

Equal parameter count: the LSTM of the task's reference width (the recipe's, or the override below) sets the
count; every other cell gets the width (a multiple of 4, so multi-head cells keep their heads) whose model has
the nearest count, which must lie within 5% (else the benchmark stops). The count is the model ``rnnkit.check``
builds without data - for language models and text classifiers with its placeholder vocabulary of 32 tokens,
i.e. the parameters a cell's width decides apart from the vocabulary-sized embedding and output tables (the real
vocabulary's total is recorded per run from the checkpoint).

Everything trains through the public API (``rnnkit.train(recipe, overrides=..., callbacks=[budget])``), one run
at a time, each in this process. The result file is rewritten after every run, so an interrupted benchmark keeps
what it measured; ``--tasks``/``--cells``/``--seeds`` pick a part of the grid, and the file says which part ran.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: the budget is one thread's

from _results import RESULTS, Provenance, write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CELLS = ("lstm", "gru", "mingru", "minlstm", "slstm", "mlstm", "mamba")
NEW_CELLS = ("mingru", "minlstm", "slstm", "mlstm", "mamba")
TOLERANCE = 0.05  # parameter counts within 5% of the LSTM's
LN2 = math.log(2)


@dataclass(frozen=True)
class Task:
    """One benchmark task: a shipped recipe, the overrides that fit it to a CPU budget, what is measured."""

    recipe: str
    metric: str  # the key of the test/valid metrics the table shows
    higher_is_better: bool
    unit: str  # what the throughput counts
    overrides: dict[str, Any] = field(default_factory=dict)
    anchors: tuple[str, ...] = ()  # the literature's figures, printed beside
    note: str = ""


# Every cell runs as a stack of two layers: minGRU and minLSTM have no hidden-to-hidden weights (each unit's gates
# read only the layer's input), so one layer over one pixel a step is a bank of scalar filters; Feng et al. stack
# them, and so does every task here. The pixel tasks' reference is a 2 x 64 LSTM (the recipe's 1 x 128 LSTM has a
# similar count, 68k against 51k, but one layer), 1,200 validation images (2%: each validation reads 784 steps an
# image, inside the budget) and a validation every 40 steps.
PIXELS = {
    "model.layers": 2,
    "model.hidden": 64,
    "data.valid_fraction": 0.02,
    "train.eval_every": 40,
}
TASKS: dict[str, Task] = {
    "mnist-pixels": Task(
        "mnist-pixels",
        "accuracy",
        True,
        "examples",
        {**PIXELS},
        ("LSTM 98.2% test (Arjovsky et al. 2016, to convergence)", "S4 99.6% (Gu et al. 2022)"),
    ),
    "mnist-pixels-permuted": Task(
        "mnist-pixels-permuted",
        "accuracy",
        True,
        "examples",
        {**PIXELS},
        ("LSTM 88% test (Arjovsky et al. 2016, to convergence)", "S4 98.7% (Gu et al. 2022)"),
    ),
    "shakespeare": Task(
        "shakespeare-char",
        "loss",  # nats per character; bits per character beside
        False,
        "tokens",
        # the recipe's 2 x 512 LSTM does a few dozen steps in a CPU budget of minutes: 2 x 192, bptt 64, batch 32,
        # no dropout, a constant rate
        {
            "model.hidden": 192,
            "model.dropout": 0.0,
            "data.bptt": 64,
            "train.batch_size": 32,
            "optim.schedule": "constant",
            "train.eval_every": 150,
        },
        (
            "nanoGPT baby GPT (6 x 384, 10.7M parameters): ~1.47 nats/char validation after 5,000 iterations on a GPU",
            "nanoGPT with its CPU settings (4 x 128, 2,000 iterations): ~1.88 nats/char validation",
        ),
    ),
    "ptb": Task(
        "ptb-small",
        "ppl",
        False,
        "tokens",
        # Adam at a constant rate, as every other task of the grid trains: the recipe's SGD at lr 1 is tuned for the
        # LSTM, and mLSTM's loss swung to hundreds and became NaN by step 105 under it (seed 1, 2026-12-07)
        {
            "optim.name": "adam",
            "optim.lr": 0.002,
            "optim.schedule": "constant",
            "optim.loss_over_time": "mean",
            "train.eval_every": 500,
        },
        ("Zaremba et al. 2014 small (2 x 200, 13 epochs, SGD): 114.5 test perplexity",),
    ),
    # the subset recipe: the full UCI HAR download has no pinned checksum (rnnkit refuses it unverified) and is not
    # in the mirror; the subset is 2,400 / 950 windows of the same signals
    "har": Task(
        "har-subset",
        "accuracy",
        True,
        "examples",
        {},
        ("the har-subset recipe's LSTM: docs/results.md, classification",),
    ),
    "sms-spam": Task(
        "sms-spam", "accuracy", True, "examples", {"model.layers": 2}, ("the sms-spam recipe: >= 98% test accuracy",)
    ),
    "airline": Task(
        "airline", "rmse", False, "windows", {"model.layers": 2}, ("seasonal naive: docs/results.md, forecasting",)
    ),
}


# -- equal parameter count ----------------------------------------------------------------------------------------
def parameters(task: Task, cell: str, hidden: int) -> int:
    import rnnkit

    return int(
        rnnkit.check(task.recipe, overrides={**task.overrides, "model.cell": cell, "model.hidden": hidden})[
            "parameters"
        ]
    )


def reference_width(task: Task) -> int:
    import rnnkit

    hidden = rnnkit.check(task.recipe, overrides=task.overrides)["config"]["model"]["hidden"]
    return int(hidden if isinstance(hidden, int) else hidden[-1])


def solve_width(task: Task, cell: str, target: int, ref: int) -> tuple[int, int]:
    """The width whose model's parameter count is nearest ``target``: bisection over multiples of 4 (the count
    grows with the width; multi-head cells keep 4 heads), then any width nearby when no multiple of 4 comes within
    the tolerance (small models: a step of 4 units can move the count by more than 5%)."""
    lo, hi = 1, 4
    while parameters(task, cell, hi * 4) < target:
        lo, hi = hi, hi * 2
        if hi * 4 > 64 * ref:
            raise SystemExit(f"{cell}: no width up to {hi * 4} reaches {target:,} parameters")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if parameters(task, cell, mid * 4) < target:
            lo = mid
        else:
            hi = mid
    best = min((lo * 4, hi * 4), key=lambda h: abs(parameters(task, cell, h) - target))
    if abs(parameters(task, cell, best) / target - 1) > TOLERANCE:
        near = [h for h in range(max(1, best - 6), best + 7) if buildable(task, cell, h)]
        best = min(near, key=lambda h: abs(parameters(task, cell, h) - target))
    return best, parameters(task, cell, best)


def buildable(task: Task, cell: str, hidden: int) -> bool:
    """Whether the cell takes this width (mLSTM's inner width must split into heads and blocks of 4)."""
    import rnnkit

    try:
        parameters(task, cell, hidden)
    except rnnkit.UserError:
        return False
    return True


# -- the budget ---------------------------------------------------------------------------------------------------
class CpuBudget:
    """A training callback: stops the run once the process has used ``budget_s`` of CPU time since training began,
    and keeps every record with the CPU and wall seconds it arrived at (the curve of the plot)."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()
        self.records: list[dict[str, Any]] = []
        self.stopped_at: tuple[float, float] | None = None

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    def elapsed(self) -> tuple[float, float]:
        return time.process_time() - self.cpu0, time.perf_counter() - self.wall0

    def __call__(self, record: dict[str, Any]) -> bool:
        cpu, wall = self.elapsed()
        self.records.append({**record, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2)})
        if record.get("split") == "test" or cpu < self.budget_s:
            return False
        if self.stopped_at is None:
            self.stopped_at = (cpu, wall)
        return True


def _load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def checkpoint_parameters(run_path: Path) -> int | None:
    """The trained model's parameter count, real vocabulary included, from best.pt (weights only)."""
    import torch

    path = run_path / "checkpoints" / "best.pt"
    if not path.is_file():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        return None
    return int(sum(v.numel() for k, v in state.items() if hasattr(v, "numel") and "running_" not in k))


def train_one(name: str, task: Task, cell: str, hidden: int, seed: int, budget: float, root: Path) -> dict[str, Any]:
    import rnnkit

    out = root / f"{name}-{cell}-s{seed}"
    overrides = {
        **task.overrides,
        "model.cell": cell,
        "model.hidden": hidden,
        "train.threads": 1,
        "train.tensorboard": False,
        "train.log_every": 1,  # the budget is checked at every record: at every step
        "train.max_time": budget * 8,  # a safety net on a crowded machine; the CPU budget is the stop
        "train.eval_test": False,  # the test split is evaluated once below (the trainer's report would read it twice)
    }
    cb = CpuBudget(budget)
    load0 = _load_avg()
    t0 = time.perf_counter()
    try:
        run = rnnkit.train(task.recipe, out=out, overrides=overrides, seed=seed, callbacks=[cb], progress=False)
    except rnnkit.errors.TrainingDiverged as e:  # a result of the grid, not a failure of the benchmark
        return diverged_row(name, task, cell, hidden, seed, cb, str(e), load0)
    cpu_s, wall_s = cb.stopped_at or cb.elapsed()
    eval_cpu = time.process_time()
    test = {k: v for k, v in rnnkit.load(run.path).evaluate("test").items() if not isinstance(v, (dict, list))}
    eval_cpu = time.process_time() - eval_cpu
    total_wall = time.perf_counter() - t0
    s = run.summary
    valid = [r for r in cb.records if r.get("split") == "valid" and task.metric in r]
    metric = test.get(task.metric)
    per_s = s.get(f"{task.unit}_per_s")
    count = per_s * s["wall_s"] if per_s is not None else None
    row = _row(
        name,
        task,
        cell,
        hidden,
        seed,
        cb,
        load0,
        metric=metric,
        test=test,
        stopped="cpu budget" if cb.stopped_at else s.get("stopped"),
        steps=s.get("step"),
        epochs=s.get("epoch"),
        cpu_s=round(cpu_s, 1),
        wall_s=round(wall_s, 1),
        total_wall_s=round(total_wall, 1),
        test_eval_cpu_s=round(eval_cpu, 1),
        per_cpu_s=round(count / cpu_s, 1) if count and cpu_s else None,
        per_s=per_s,
        parameters_real=checkpoint_parameters(Path(run.path)),
        curve=[[r["cpu_s"], r["wall_s"], r[task.metric]] for r in valid],
    )
    if task.metric == "loss" and metric is not None:
        row["bits_per_char"] = metric / LN2
    return row


def diverged_row(
    name: str, task: Task, cell: str, hidden: int, seed: int, cb: CpuBudget, why: str, load0: float | None
) -> dict[str, Any]:
    """A run whose loss became NaN/inf: no test metric (its mean over seeds leaves it out), the reason and the
    training loss until then."""
    cpu_s, wall_s = cb.elapsed()
    train = [r for r in cb.records if "split" not in r and "loss" in r]
    row = _row(
        name,
        task,
        cell,
        hidden,
        seed,
        cb,
        load0,
        metric=None,
        test={},
        stopped="diverged",
        steps=train[-1]["step"] if train else 0,
        epochs=None,
        cpu_s=round(cpu_s, 1),
        wall_s=round(wall_s, 1),
        total_wall_s=round(wall_s, 1),
        test_eval_cpu_s=0.0,
        per_cpu_s=None,
        per_s=None,
        parameters_real=None,
        curve=[],
    )
    return {**row, "diverged": why}


def _row(
    name: str,
    task: Task,
    cell: str,
    hidden: int,
    seed: int,
    cb: CpuBudget,
    load0: float | None,
    *,
    per_cpu_s: float | None,
    per_s: float | None,
    **measured: Any,
) -> dict[str, Any]:
    """One run of the grid, finished or diverged, in one shape: who ran, what it measured (``per_cpu_s`` and
    ``per_s``: the task's unit per CPU / wall second), the machine's load, and the training loss over CPU time."""
    train = [r for r in cb.records if "split" not in r and "loss" in r]
    return {
        "task": name,
        "cell": cell,
        "hidden": hidden,
        "seed": seed,
        **measured,
        f"{task.unit}_per_cpu_s": per_cpu_s,
        f"{task.unit}_per_s": per_s,
        "load_avg": {"start": load0, "end": _load_avg()},
        "loss_curve": [[r["cpu_s"], r["loss"]] for r in train[:: max(1, len(train) // 100)]],
    }


def summarise(name: str, task: Task, info: dict[str, Any]) -> None:
    """Per cell: mean and spread over seeds; the best new cell against our LSTM."""
    by: dict[str, list[float]] = {}
    for r in info["runs"]:
        if r["metric"] is not None:
            by.setdefault(r["cell"], []).append(r["metric"])
    info["by_cell"] = {
        c: {"mean": statistics.fmean(v), "sd": statistics.stdev(v) if len(v) > 1 else None, "n": len(v)}
        for c, v in by.items()
    }
    sign = 1 if task.higher_is_better else -1
    new = [c for c in NEW_CELLS if c in info["by_cell"]]
    if new and "lstm" in info["by_cell"]:
        best = max(new, key=lambda c: sign * info["by_cell"][c]["mean"])
        info["best_new_cell"] = best
        info["beats_lstm"] = sign * info["by_cell"][best]["mean"] > sign * info["by_cell"]["lstm"]["mean"]
    else:
        info["best_new_cell"], info["beats_lstm"] = None, None


def show(x: float | None, metric: str) -> str:
    if x is None:
        return "-"
    return f"{x:.2%}" if metric == "accuracy" else f"{x:.4g}"


def print_task(name: str, task: Task, info: dict[str, Any]) -> None:
    print(
        f"\n== {name} ({task.recipe}): test {task.metric}, {'higher' if task.higher_is_better else 'lower'} is better"
    )
    print(
        f"{'cell':8} {'width':>5} {'params':>9} {'vs lstm':>8} {task.metric:>10} {'steps':>6} {'CPU s':>6} "
        f"{'wall s':>6} {task.unit + '/CPU s':>14}  stopped"
    )
    for r in info["runs"]:
        p = info["widths"][r["cell"]]
        extra = f"  ({r['bits_per_char']:.3f} bits/char)" if r.get("bits_per_char") else ""
        rate = r.get(f"{task.unit}_per_cpu_s")
        print(
            f"{r['cell']:8} {r['hidden']:5d} {p['parameters']:9,d} {p['ratio']:8.3f} "
            f"{show(r['metric'], task.metric):>10} "
            f"{r['steps'] or 0:6d} {r['cpu_s']:6.0f} {r['wall_s']:6.0f} {rate or 0:14,.0f}  "
            f"{r['stopped']}{extra}"
        )
    for a in task.anchors:
        print(f"   literature: {a}")
    if info.get("best_new_cell"):
        verdict = "beats" if info["beats_lstm"] else "does not beat"
        print(f"   best new cell: {info['best_new_cell']} {verdict} lstm at this budget")


def plot(result: dict[str, Any], path: Path) -> None:
    """One panel per task: the validation metric against CPU seconds (when each validation had finished), one
    line per cell (its first seed), the test figure as a star at the end of the line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t, info in result["tasks"].items() if info["runs"]]
    if not tasks:
        return
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4), squeeze=False)
    colors = dict(zip(CELLS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, name in zip(axes[0], tasks):
        info = result["tasks"][name]
        seen = set()
        for r in info["runs"]:
            if r["cell"] in seen:
                continue
            seen.add(r["cell"])
            xs = [p[0] for p in r["curve"]]
            ys = [p[2] for p in r["curve"]]
            ax.plot(xs, ys, marker=".", label=f"{r['cell']} ({r['hidden']})", color=colors.get(r["cell"]))
            if r["metric"] is not None:  # the final model, at the end of its curve (its validation done)
                x = max([r["cpu_s"], *xs])
                ax.scatter([x], [r["metric"]], color=colors.get(r["cell"]), marker="*", s=60)
        metric = info["metric"]
        ax.set_title(f"{name}: validation {'nats/char' if metric == 'loss' else metric}")
        ax.set_xlabel("CPU seconds of one thread, validations included")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Equal parameters, {result['budget']['seconds']:g} s of one thread's CPU time per run (star: test)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def goal_of(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's goal from the tasks that ran: the best new cell beats the LSTM on both pixel MNIST and char
    Shakespeare."""
    goal = {
        t: {"best_new_cell": result["tasks"][t]["best_new_cell"], "beats_lstm": result["tasks"][t]["beats_lstm"]}
        for t in ("mnist-pixels", "shakespeare")
        if t in result["tasks"]
    }
    return {
        "text": "on pixel MNIST and char Shakespeare the best new cell beats our LSTM at the same budget",
        "by_task": goal,
        "met": bool(goal) and all(g["beats_lstm"] for g in goal.values()) and len(goal) == 2,
    }


def merge(specs: list[str], json_out: str, plot_path: str | None) -> int:
    """Several runs of this benchmark (each a part of the grid, e.g. seed 1 one day and seeds 2 and 3 the next) as
    one result: the runs side by side, the means over every seed, the goal from all of them. Refused when the
    budgets or a task's widths differ - those runs would not be comparable."""
    from _results import read_result

    paths, takes = [], []
    for spec in specs:
        path, _, tasks = spec.partition(":")
        paths.append(path)
        takes.append(tasks.split(",") if tasks else None)
    docs = [read_result(p) for p in paths]
    budgets = {d["result"]["budget"]["seconds"] for d in docs}
    if len(budgets) != 1:
        raise SystemExit(f"quality --merge: the files have different budgets ({sorted(budgets)} CPU s)")
    result: dict[str, Any] = {k: docs[0]["result"][k] for k in ("budget", "tolerance", "full_grid")}
    result["tasks"] = {}
    seen: set[tuple[str, str, int]] = set()
    for path, only, d in zip(paths, takes, docs):
        for name, t in d["result"]["tasks"].items():
            if only is not None and name not in only:
                continue
            info = result["tasks"].setdefault(name, {**t, "widths": {}, "runs": []})
            # a part may run some of the cells (more seeds of the two a goal compares); a cell it shares with an
            # earlier part must have the same width
            if any(info["widths"].get(c, w) != w for c, w in t["widths"].items()):
                raise SystemExit(f"quality --merge: {path}: {name}'s cells have other widths than in an earlier file")
            info["widths"].update(t["widths"])
            for run in t["runs"]:
                key = (name, run["cell"], run["seed"])
                if key in seen:
                    raise SystemExit(f"quality --merge: {path}: {name} {run['cell']} seed {run['seed']} twice")
                seen.add(key)
                info["runs"].append(run)
    for name, info in result["tasks"].items():
        summarise(name, TASKS[name], info)
    tasks = [t for t in TASKS if t in result["tasks"]]
    cells = [c for c in CELLS if any(r["cell"] == c for t in result["tasks"].values() for r in t["runs"])]
    seeds = sorted({r["seed"] for t in result["tasks"].values() for r in t["runs"]})
    grid = result["full_grid"]
    result["ran"] = {"tasks": tasks, "cells": cells, "seeds": seeds}
    result["not_run"] = {
        "tasks": [t for t in TASKS if t not in tasks],
        "cells": [c for c in CELLS if c not in cells],
        "seeds": max(0, grid["seeds"] - min(len({r["seed"] for r in t["runs"]}) for t in result["tasks"].values())),
    }
    result["goal"] = goal_of(result)
    result["sources"] = [
        {
            "file": Path(p).name,
            "command": d["provenance"]["command"],
            "commit": d["provenance"]["git"]["commit"],
            "started": d["provenance"]["started"],
            "wall_s": d["provenance"]["wall_s"],
            "tasks": [t for t in d["result"]["tasks"] if only is None or t in only],
        }
        for p, only, d in zip(paths, takes, docs)
    ]
    prov = Provenance.start(seeds=seeds, threads=1)
    write_result(json_out, "quality", result, prov)
    if plot_path:
        plot(result, Path(plot_path))
    print(f"wrote {json_out}: {len(seen)} runs from {len(paths)} files")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="mnist-pixels,shakespeare", help=f"comma-separated, of: {', '.join(TASKS)}")
    ap.add_argument("--cells", default=",".join(CELLS), help="comma-separated registered cells (default: all 7)")
    ap.add_argument("--seeds", default="1,2,3", help="comma-separated train.seed values (default: %(default)s)")
    ap.add_argument("--budget-s", type=float, default=150.0, help="CPU seconds of one thread per run")
    ap.add_argument("--out-root", help="parent of the run directories (default: a temporary folder, removed)")
    ap.add_argument("--json-out", default=str(RESULTS / "quality-cpu.json"))
    ap.add_argument("--plot", default=str(REPO / "docs" / "img" / "quality-cpu.png"))
    ap.add_argument("--replot", metavar="JSON", help="only draw --plot again from a result file of this benchmark")
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="only combine result files of this benchmark (parts of the grid: other seeds or tasks, the same budget "
        "and widths) into --json-out, each source's command and commit recorded; FILE:TASK,TASK takes only those "
        "tasks of a file (a task measured again under a new protocol elsewhere)",
    )
    a = ap.parse_args()
    if a.replot:
        from _results import read_result

        plot(read_result(a.replot)["result"], Path(a.plot))
        return 0
    if a.merge:
        return merge(a.merge, a.json_out, a.plot)
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    cells = [c.strip() for c in a.cells.split(",") if c.strip()]
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    bad = [t for t in tasks if t not in TASKS] + [c for c in cells if c not in CELLS]
    if bad or not tasks or not cells or not seeds or a.budget_s <= 0:
        ap.error(f"unknown task or cell {bad}" if bad else "give tasks, cells, seeds and a positive budget")
    if "lstm" not in cells:
        cells.insert(0, "lstm")  # the reference every other cell is sized against and compared with

    import torch

    torch.set_num_threads(1)
    prov = Provenance.start(seeds=seeds, threads=1)
    grid = {"tasks": list(TASKS), "cells": list(CELLS), "seeds": 3}
    result: dict[str, Any] = {
        "budget": {
            "seconds": a.budget_s,
            "kind": "process CPU time of one thread (OMP_NUM_THREADS=1, train.threads=1) from the start of "
            "training to the stop; the final validation and test evaluation are outside it; wall time recorded",
        },
        "tolerance": TOLERANCE,
        "ran": {"tasks": tasks, "cells": cells, "seeds": seeds},
        "full_grid": grid,
        "not_run": {
            "tasks": [t for t in TASKS if t not in tasks],
            "cells": [c for c in CELLS if c not in cells],
            "seeds": max(0, grid["seeds"] - len(seeds)),
        },
        "tasks": {},
    }
    root = Path(a.out_root) if a.out_root else Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        for name in tasks:
            task = TASKS[name]
            ref = reference_width(task)
            target = parameters(task, "lstm", ref)
            widths = {}
            for cell in cells:
                h, p = (ref, target) if cell == "lstm" else solve_width(task, cell, target, ref)
                if abs(p / target - 1) > TOLERANCE:
                    raise SystemExit(f"{name}: {cell} at width {h} has {p:,} parameters, not within 5% of {target:,}")
                widths[cell] = {"hidden": h, "parameters": p, "ratio": round(p / target, 4)}
                print(f"{name}: {cell:8} width {h:4d}: {p:,} parameters ({p / target:.3f} x lstm {ref})", flush=True)
            info: dict[str, Any] = {
                "recipe": task.recipe,
                "overrides": task.overrides,
                "metric": task.metric,
                "higher_is_better": task.higher_is_better,
                "unit": task.unit,
                "reference": {"cell": "lstm", "hidden": ref, "parameters": target},
                "widths": widths,
                "anchors": list(task.anchors),
                "runs": [],
            }
            result["tasks"][name] = info
            for seed in seeds:
                for cell in cells:
                    print(f"{name}: training {cell} (width {widths[cell]['hidden']}), seed {seed} ...", flush=True)
                    row = train_one(name, task, cell, widths[cell]["hidden"], seed, a.budget_s, root)
                    info["runs"].append(row)
                    summarise(name, task, info)
                    print(
                        f"   test {task.metric} {show(row['metric'], task.metric)}, {row['steps']} steps, "
                        f"{row['cpu_s']:.0f} CPU s, {row['wall_s']:.0f} wall s",
                        flush=True,
                    )
                    write_result(a.json_out, "quality", result, prov)  # after every run: nothing measured is lost
            print_task(name, task, info)
        result["goal"] = goal_of(result)
        write_result(a.json_out, "quality", result, prov)
        plot(result, Path(a.plot))
        print(f"\nwrote {a.json_out} and {a.plot}")
    finally:
        if not a.out_root:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
