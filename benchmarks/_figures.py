"""The published figures as reproduce.py sees them: what each result file claims (its headline figures, each with the
tolerance a re-measurement must meet), the command that measures it again, and how long that takes.

A result file records the argv and environment it was measured with (benchmarks/_results.py), so measuring a
figure again is running that argv once more, with its outputs (``--json-out``, run directories) moved to a scratch
folder. Files whose provenance was reconstructed carry no runnable argv; COMMANDS below gives theirs.

Tolerances, and why:

- quality after a fixed number of steps or epochs (test perplexity, accuracy, BLEU, RMSE): one thread is
  deterministic on one machine, but another CPU kind, thread count or commit changes the float rounding and so
  the trajectory, as another seed would. The tolerances are a few standard deviations of the seed-to-seed spread
  where we measured it (classification: reproduce.CLAIMS; PTB perplexity 3%; BLEU 2.5 points).
- quality within a time budget (``--max-time``, ``--minutes``): the steps done depend on the machine's speed and
  load, so the tolerance is wider (10% perplexity).
- speed: only ratios measured in one process (paired rounds) are compared, never tokens/s across runs or
  machines, with an absolute tolerance of 0.25 (ratios) or a relative one of 35% (shares, speed-ups); the
  machine is shared, and a speed figure that moves more than that is a finding, not noise.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _results import FIGURE_ENV

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"


@dataclass(frozen=True)
class Headline:
    """One figure of a result file and how close a re-measurement must come to it."""

    name: str
    value: float | None
    abs_tol: float = 0.0
    rel_tol: float = 0.0
    log10_tol: float = 0.0  # for quantities spanning decades (gradient ratios): |log10 new - log10 old|
    pct: bool = False  # an accuracy: shown as a percentage, abs_tol in points of 1.0

    def tolerance_text(self) -> str:
        if self.log10_tol:
            return f"x{10**self.log10_tol:g}"
        if self.abs_tol:
            return f"+-{self.abs_tol * 100:.1f} pt" if self.pct else f"+-{self.abs_tol:g}"
        return f"+-{self.rel_tol:.0%}"

    def show(self, x: float | None) -> str:
        if x is None:
            return "-"
        return f"{x:.2%}" if self.pct else f"{x:.3g}" if abs(x) < 1e-3 else f"{x:.4g}"

    def holds(self, new: float | None) -> bool:
        if self.value is None or new is None or not math.isfinite(new):
            return False
        if self.log10_tol:
            if self.value <= 0 or new <= 0:
                return False
            return abs(math.log10(new) - math.log10(self.value)) <= self.log10_tol + 1e-12
        return abs(new - self.value) <= self.abs_tol + self.rel_tol * abs(self.value) + 1e-12


def _classify(r: dict[str, Any]) -> Iterator[Headline]:
    for row in r["results"]:
        yield Headline(f"{row['recipe']} test accuracy (mean of seeds)", row["accuracy"]["mean"], 0.015, pct=True)


def _forecast(r: dict[str, Any]) -> Iterator[Headline]:
    for row in r["results"]:
        yield Headline(f"{row['recipe']} test RMSE (mean of seeds)", row["model"]["rmse"], rel_tol=0.10)


def _ptb(r: dict[str, Any]) -> Iterator[Headline]:
    budgeted = r.get("stopped") == "max_time"
    yield Headline("test perplexity", r.get("test_ppl"), rel_tol=0.10 if budgeted else 0.03)


def _translate(r: dict[str, Any]) -> Iterator[Headline]:
    yield Headline("test BLEU, beam", r["test"]["bleu"], 2.5)
    yield Headline("test BLEU, greedy", r["test"]["bleu_greedy"], 2.5)


def _tune(r: dict[str, Any]) -> Iterator[Headline]:
    yield Headline("recipe default, validation perplexity", r.get("baseline_valid_ppl"), rel_tol=0.05)
    yield Headline("best trial, validation perplexity", r.get("best_valid_ppl"), rel_tol=0.10)


def _train(r: dict[str, Any]) -> Iterator[Headline]:
    yield Headline("test accuracy", r["test"]["accuracy"], 0.005 if r["test"]["examples"] >= 5000 else 0.02, pct=True)


def _gradient_flow(r: dict[str, Any]) -> Iterator[Headline]:
    for cell, v in r["ratio_first_to_last"].items():
        yield Headline(f"{cell} gradient ratio over {r['steps'] - 1} steps", v, log10_tol=2.0)


def _lm_speed(r: dict[str, Any]) -> Iterator[Headline]:
    if r.get("mode") == "scaling":
        for x in r["rows"]:
            if x.get("fraction_of_peak") is not None:
                name = f"h{x['hidden']} b{x['batch']} {x['backend']} {x['precision']} x{x['procs']} share of peak"
                yield Headline(name, x["fraction_of_peak"], 0.15)
        return
    if r.get("mode") == "interleave":  # rnnkit's step against the plain loop's, alternating in one process
        yield Headline("rnnkit step vs plain loop (CPU time)", r["rnnkit_vs_plain_cpu"], 0.15)
        return
    for x in r["results"]:
        if x.get("vs_plain") is not None and x["variant"] != "plain":
            yield Headline(f"{x['variant']} vs plain loop", x["vs_plain"], 0.25)
        if x.get("valid_ppl") is not None:
            yield Headline(f"{x['variant']} validation perplexity", x["valid_ppl"], rel_tol=0.03)


def _lm_profile(r: dict[str, Any]) -> Iterator[Headline]:
    for phase in ("recurrence", "output"):
        if phase in r["phases"]:
            yield Headline(f"{phase} share of a step", r["phases"][phase]["share"], 0.10)


def _recurrence(r: dict[str, Any]) -> Iterator[Headline]:
    for x in r["rows"]:
        if x.get("projected_speedup") is not None:
            name = f"{x['precision']} h{x['hidden']} b{x['batch']} projected speed-up"
            yield Headline(name, x["projected_speedup"], rel_tol=0.35)


def _recurrences(r: dict[str, Any]) -> Iterator[Headline]:
    for x in r["rows"]:
        if x["cell"] != "lstm":
            yield Headline(f"{x['cell']} speed vs nn.LSTM", x["speed_vs_lstm"], rel_tol=0.35)


def _own_data_forecast(r: dict[str, Any]) -> Iterator[Headline]:
    for x in r["results"]:
        yield Headline(f"{x['case']} hold-out RMSE", x["rmse"], rel_tol=0.10)


def _wide_forecast(r: dict[str, Any]) -> Iterator[Headline]:
    """Over many series the per-series RMSEs are not the figure: the default's typical ratio and how often it meets
    the goal are."""
    s = r["summary"]
    yield Headline("default's geometric mean RMSE ratio to the best simple model", s["geomean_ratio"], rel_tol=0.05)
    yield Headline("series within the goal", s["goal_met"], abs_tol=max(2.0, 0.05 * s["cases"]))


def _own_data_classify(r: dict[str, Any]) -> Iterator[Headline]:
    for name, c in r["cases"].items():
        yield Headline(f"{name} test accuracy", c["rnnkit"]["accuracy"], 0.015, pct=True)


def _decode_step(r: dict[str, Any]) -> Iterator[Headline]:
    for x in r["results"]:
        yield Headline(f"{x['cell']} h{x['hidden']} b{x['batch']} cell-ops speed-up", x["speedup"], rel_tol=0.35)


def _peer_keras(r: dict[str, Any]) -> Iterator[Headline]:
    if "by_threads" in r:
        for t in r["by_threads"]:
            for x in t["results"]:
                if x["variant"] == "rnnkit":
                    yield Headline(f"rnnkit / fastest Keras, {t['threads']} thread(s)", x["vs_fastest_keras"], 0.25)
        return
    base = r["baseline"]  # files from before every setting ran: rnnkit against each Keras variant
    for x in r["results"]:
        if x["variant"] != base:
            yield Headline(f"{x['variant']} / {base}, {r['config']['threads']} thread(s)", x[f"vs_{base}"], 0.25)


def _load_test(r: dict[str, Any]) -> Iterator[Headline]:
    yield Headline("failed requests", float(r["errors"]), 0.0)
    yield Headline("generations per second", r["by_endpoint"]["generate"]["rps"], rel_tol=0.35)


def _export(r: dict[str, Any]) -> Iterator[Headline]:
    for x in r["results"]:
        for fmt in ("onnx", "torchscript"):
            # parity, not a value: within the export's own tolerance is what must hold again
            yield Headline(f"{x['recipe']} {fmt} largest difference", x[fmt]["worst"], abs_tol=r["tolerance"])


def _omp_wait(r: dict[str, Any]) -> Iterator[Headline]:
    for x in r["results"]:
        if x["setting"] != "1 thread":
            yield Headline(f"{x['setting']} vs 1 thread", x["vs_1_thread"], rel_tol=0.35)


def _thp(r: dict[str, Any]) -> Iterator[Headline]:
    for x in r["results"]:
        yield Headline(f"{x['workload']} training rate, THP on / off", x["speedup"], rel_tol=0.35)


def _quality(r: dict[str, Any]) -> Iterator[Headline]:
    """Quality within a CPU budget: the steps done depend on the CPU, like a --max-time run (10% on a loss or
    perplexity); an accuracy within 3 points (a short budget leaves the pixel tasks' curves steep)."""
    budget = r["budget"]["seconds"]
    for name, t in r["tasks"].items():
        for cell, v in (t.get("by_cell") or {}).items():
            label = f"{name} {cell} test {t['metric']} after {budget:g} CPU s"
            if t["metric"] == "accuracy":
                yield Headline(label, v["mean"], 0.03, pct=True)
            else:
                yield Headline(label, v["mean"], rel_tol=0.10)


HEADLINES: dict[str, Callable[[dict[str, Any]], Iterator[Headline]]] = {
    "classify": _classify,
    "forecast": _forecast,
    "ptb": _ptb,
    "translate": _translate,
    "tune_ptb": _tune,
    "train": _train,
    "gradient_flow": _gradient_flow,
    "lm_speed": _lm_speed,
    "lm_profile": _lm_profile,
    "recurrence": _recurrence,
    "recurrences": _recurrences,
    "own-data-forecast": _own_data_forecast,
    "wide-forecast": _wide_forecast,
    "own-data-classify": _own_data_classify,
    "decode_step": _decode_step,
    "peer_keras": _peer_keras,
    "load_test": _load_test,
    "export": _export,
    "omp_wait": _omp_wait,
    "thp": _thp,
    "quality": _quality,
}


def headlines(doc: dict[str, Any]) -> list[Headline]:
    """The figures of a result file that a re-measurement is compared on (none for a transcription)."""
    if "transcribed" in doc["result"] or doc["benchmark"] not in HEADLINES:
        return []
    return list(HEADLINES[doc["benchmark"]](doc["result"]))


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per headline of ``old``: stored, measured, tolerance, whether it holds."""
    measured = {h.name: h.value for h in headlines(new)}
    rows = []
    for h in headlines(old):
        got = measured.get(h.name)
        rows.append(
            {
                "figure": h.name,
                "stored": h.value,
                "measured": got,
                "stored_text": h.show(h.value),
                "measured_text": h.show(got),
                "tolerance": h.tolerance_text(),
                "ok": h.holds(got),
            }
        )
    return rows


# -- measuring again ----------------------------------------------------------------------------------------------
# argv for files whose provenance was reconstructed (their recorded command is not one a benchmark can run again):
# the benchmark's own form of the command, as their "To measure them again" says
COMMANDS: dict[str, tuple[dict[str, str], list[str]]] = {
    "export-parity": ({}, ["benchmarks/export_parity.py"]),
    "ptb-medium-35min": (
        {"OMP_NUM_THREADS": "1"},
        ["benchmarks/ptb.py", "ptb-medium", "--max-time", "2100", "--set", "train.threads=1"],
    ),
    "mnist-rows-5k-cpu": (
        {"OMP_NUM_THREADS": "1"},
        ["benchmarks/train_recipe.py", "mnist-rows", "--set", "data.path=mnist/mnist_5k.csv.gz", "--threads", "1"]
        + ["--label", "mnist-rows on the 5,000-image sample (data set mnist-5k, a fifth held out for test)"],
    ),
    "load-first-8c": (  # the server of that page's commit, before generation requests were batched
        {"OMP_NUM_THREADS": "1"},
        ["benchmarks/load_test.py", "--clients", "8", "--seconds", "12", "--warmup", "3", "--max-new-tokens", "20"]
        + ["--server-commit", "0d74354"],
    ),
    "ptb-awd-cpu-1h": (
        {"OMP_NUM_THREADS": "1"},
        ["benchmarks/ptb.py", "ptb-awd", "--set", "train.threads=1", "--set", "train.eval_every=200"]
        + ["--max-time", "3600"],
    ),
}
# how long files that did not record their wall time take (their pages' statements)
MINUTES = {
    "export-parity": 10.0,
    "classify-forecast-first": 20.0,
    "mnist-rows-5k-cpu": 15.0,
    "load-first-8c": 5.0,
    "ptb-small": 80.0,
    "tune-ptb": 40.0,
    "lm-speed-small-cpu": 10.0,
    "lm-speed-medium-cpu": 10.0,
    "lm-speed-notes-cpu": 8.0,
    "lm-profile-medium-cpu": 2.0,
    "lm-profile-notes-cpu": 5.0,
    "lm-profile-bf16-emulated-tiny-cpu": 1.0,
    "recurrence-cpu": 10.0,
    "speed-round2-notes-cpu": 3.0,
}
# options whose value is an output path: moved to the scratch folder when measuring again
OUTPUT_OPTIONS = ("--json-out", "--out", "--out-root", "--out-dir", "--plot")
ENV_KEPT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", *FIGURE_ENV)


@dataclass(frozen=True)
class Rerun:
    """How to measure a result file again: argv (a benchmark script first), environment, expected minutes."""

    stem: str
    argv: list[str]
    env: dict[str, str]
    minutes: float | None  # the stored run's wall time (or its time budget); None: not known
    needs: str = ""  # an interpreter other than rnnkit's ("keras": the TensorFlow venv)

    def command(self) -> str:
        prefix = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        return " ".join([*prefix, "python", *(shlex.quote(a) for a in self.argv)])


def _script(arg: str) -> str | None:
    """The benchmark script an argv[0] names ('lm_speed.py' run from benchmarks/, 'benchmarks/ptb.py', absolute)."""
    name = Path(arg).name
    return f"benchmarks/{name}" if name.endswith(".py") and (BENCHMARKS / name).is_file() else None


def rerun(stem: str, doc: dict[str, Any]) -> Rerun | None:
    """The command that measures ``stem`` again, or None when no benchmark can (hand-made figures)."""
    p = doc["provenance"]
    if stem in COMMANDS:
        env, argv = COMMANDS[stem]
        env, argv = dict(env), list(argv)
    else:
        argv = list(p["argv"])
        if argv and argv[0] == "python":
            argv = argv[1:]
        script = _script(argv[0]) if argv else None
        if script is None:
            return None
        argv[0] = script
        env = {k: v for k, v in (p.get("env") or {}).items() if k in ENV_KEPT}
        if script.endswith("load_test.py"):
            argv = _self_contained_load_test(argv, doc)
    minutes = MINUTES.get(stem)
    wall = p.get("wall_s") if p.get("wall_s") is not None else doc["result"].get("wall_s")
    if wall is not None and minutes is None:
        minutes = max(0.1, round(wall / 60, 1))  # a merge of parts (quality.py --merge) takes seconds
    for budget, scale in (("--max-time", 1 / 60), ("--minutes", 1.0)):
        if budget in argv:
            minutes = max(minutes or 0, float(argv[argv.index(budget) + 1]) * scale)
    return Rerun(stem, argv, env, minutes, "keras" if argv[0].endswith("peer_keras.py") else "")


def _self_contained_load_test(argv: list[str], doc: dict[str, Any]) -> list[str]:
    """A load test that served runs from one machine's paths: the same load, with the models trained by the
    benchmark itself, and the server's code named by its commit when it was not the measuring checkout's."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--lm", "--classifier", "--server-src", "--models") and i + 1 < len(argv):
            skip = True
            continue
        out.append(arg)
    server = doc["result"].get("server") or {}
    measuring = (doc["provenance"].get("git") or {}).get("commit")
    if server.get("commit") and server["commit"] != measuring and "--server-commit" not in out:
        out += ["--server-commit", server["commit"][:10]]
    return out


def relocate(argv: list[str], scratch: Path, json_out: Path, data_dir: str | None) -> list[str]:
    """``argv`` with its outputs moved: --json-out to ``json_out``, run directories under ``scratch``; --data-dir
    set to ``data_dir`` when given (or dropped when the recorded folder is not on this machine)."""
    out = list(argv)
    seen_json = False
    i = 0
    while i < len(out):
        arg = out[i]
        key, eq, value = arg.partition("=")
        opt = key if key.startswith("--") else None
        if opt in OUTPUT_OPTIONS or opt == "--data-dir":
            if opt == "--json-out":
                new = str(json_out)
                seen_json = True
            elif opt == "--data-dir":
                current = value if eq else (out[i + 1] if i + 1 < len(out) else "")
                new = data_dir or current
                if not data_dir and not Path(current).is_dir():  # a relative folder of another checkout
                    del out[i : i + (1 if eq else 2)]
                    continue
            else:
                new = str(scratch / opt.lstrip("-"))
            if eq:
                out[i] = f"{opt}={new}"
            else:
                out[i + 1] = new
                i += 1
        i += 1
    if not seen_json:
        out += ["--json-out", str(json_out)]
    if data_dir and "--data-dir" not in {a.partition("=")[0] for a in out} and _takes_data_dir(out[0]):
        out += ["--data-dir", data_dir]
    return out


def _takes_data_dir(script: str) -> bool:
    try:
        return "--data-dir" in (REPO / script).read_text()
    except OSError:
        return False


def child_env(run: Rerun) -> dict[str, str]:
    env = dict(os.environ)
    env.update(run.env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCHMARKS), env.get("PYTHONPATH", "")]))
    return env
