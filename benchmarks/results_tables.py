"""Generate the tables of docs/results.md from the result files in benchmarks/results/.

    python benchmarks/results_tables.py            # rewrite the generated blocks of docs/results.md
    python benchmarks/results_tables.py --check    # exit 1 (and say which block) when the doc is stale

The doc is prose written by hand around generated blocks:

    <!-- generated: classify -->
    ...
    <!-- end generated: classify -->

The marker names a file stem of benchmarks/results/ (``classify`` -> benchmarks/results/classify.json); the file's
``benchmark`` field picks the renderer below. Every block ends with the measurement's provenance (command, commit,
CPU and its speed flags, threads, torch, seeds, date, load), so no figure reaches the doc without them. Renderers
only format what the file holds: a figure the doc shows is a figure the benchmark wrote.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _results import RESULTS, ResultError, read_result

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "results.md"
BLOCK = re.compile(r"<!-- generated: ([\w.-]+) -->\n(.*?)<!-- end generated: \1 -->", re.S)


# -- formatting helpers -----------------------------------------------------------------------------------------
def pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}%}"


def num(x: float | None, sig: int = 4) -> str:
    """``sig`` significant digits, thousands separated, no exponent for the sizes these tables hold."""
    if x is None:
        return "-"
    if abs(x) >= 10 ** (sig - 1):
        return f"{x:,.0f}"
    return f"{x:.{sig}g}" if abs(x) >= 1 else f"{x:.{sig - 1}f}"


def rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def one(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def table(header: list[str], rows: list[list[str]], drop_empty: bool = False) -> str:
    """A markdown table; ``drop_empty`` leaves out the columns no row has a value in."""
    if drop_empty and rows:
        keep = [i for i in range(len(header)) if any(r[i] not in ("", "-") for r in rows)]
        header, rows = [header[i] for i in keep], [[r[i] for i in keep] for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def provenance_line(doc: dict[str, Any], stem: str) -> str:
    """One paragraph that says who measured the block's figures, on what, and how to do it again."""
    p = doc["provenance"]
    m, git, sw = p["machine"], p["git"], p["software"]
    commit = git.get("commit")
    code = f"commit `{commit[:10]}`" if commit else "an unknown commit"
    if git.get("dirty"):
        code += f" with uncommitted changes to {', '.join(git.get('dirty_files') or [])}"
    flags = " ".join(m.get("cpu_flags") or []) or "no AVX"
    cpu = f"{m.get('cpu') or 'unknown CPU'} ({flags}; {m.get('cpus')} CPUs)"
    threads = m.get("threads")
    thread_text = f"{threads} thread{'s' if threads != 1 else ''}" if threads else "threads not recorded"
    seeds = p.get("seeds") or []
    seed_text = f"seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}" if seeds else "no seed"
    when = (p.get("finished") or "")[:10] or "date unknown"
    parts = [code, cpu, thread_text, f"torch {sw.get('torch')}", seed_text, when]
    if p.get("wall_s"):
        parts.append(f"{p['wall_s'] / 60:.0f} min" if p["wall_s"] >= 120 else f"{p['wall_s']:.0f} s")
    load = m.get("load_avg") or {}
    if load.get("start") is not None and load.get("end") is not None:
        busy = max(load["start"], load["end"]) > max((m.get("cpus") or 1) - (threads or 1), 0) + 0.5
        parts.append(f"load {load['start']:.1f} -> {load['end']:.1f}" + (" (shared machine)" if busy else ""))
    text = f"Measured by `{p['command']}` on " + "; ".join(parts) + f" (benchmarks/results/{stem}.json)."
    if p.get("reconstructed"):
        text += f" Provenance reconstructed after the fact: {p['reconstructed']}"
    return "<sub>" + text + "</sub>\n"


# -- renderers: one per benchmark -------------------------------------------------------------------------------
def render_classify(doc: dict[str, Any]) -> str:
    res = doc["result"]
    seeds = res["seeds"]
    header = [
        "recipe",
        f"test accuracy (mean of {len(seeds)})",
        "lowest",
        "macro F1",
        "per seed",
        "notes",
        "train s / run",
    ]
    rows = []
    for r in res["results"]:
        f1 = r.get("macro_f1")
        notes = []
        if "spam" in r.get("f1_mean", {}):
            notes.append(f"spam F1 {r['f1_mean']['spam']:.3f}")
        if "baseline" in r:
            b = r["baseline"]
            notes.append(f"bag-of-words LR, same split: {pct(b['accuracy'])} / F1 {b['macro_f1']:.3f}")
        per_seed = " ".join(pct(x["test"]["accuracy"]) for x in r["runs"])
        train_s = statistics.fmean(x["train_s"] for x in r["runs"])
        rows.append(
            [
                r["recipe"],
                pct(r["accuracy"]["mean"]),
                pct(r["accuracy"]["min"]),
                f"{f1['mean']:.3f}" if f1 else "-",
                per_seed,
                "; ".join(notes),
                f"{train_s:.0f}",
            ]
        )
    return table(header, rows)


def render_forecast(doc: dict[str, Any]) -> str:
    res = doc["result"]
    header = [
        "recipe",
        "H",
        "origins",
        f"model RMSE / MASE (mean of {len(res['seeds'])})",
        "RMSE sd",
        "seasonal naive RMSE / MASE",
        "naive RMSE / MASE",
        "beats seasonal naive",
    ]
    rows = []
    for r in res["results"]:
        m, sn, nv = r["model"], r["seasonal_naive"], r["naive"]
        rows.append(
            [
                r["recipe"],
                str(r["horizon"]),
                str(r["windows"]),
                f"{num(m['rmse'])} / {m['mase']:.3f}",
                num(r["model_rmse_sd"], 2),
                f"{num(sn['rmse'])} / {sn['mase']:.3f}",
                f"{num(nv['rmse'])} / {nv['mase']:.3f}",
                "yes" if r["beats_seasonal_naive"] else "no",
            ]
        )
    return table(header, rows)


def render_ptb(doc: dict[str, Any]) -> str:
    r = doc["result"]
    rows = [
        [
            str(v["step"]) if v.get("step") is not None else "-",
            f"{v['epoch']:.2f}" if v.get("epoch") is not None else "-",
            num(v.get("lr")),
            one(v.get("train_ppl")),
            one(v.get("valid_ppl")),
            rate(v.get("tokens_per_s")),
        ]
        for v in r.get("validations", [])
    ]
    out = table(["step", "epoch", "lr", "train ppl", "valid ppl", "tokens/s"], rows, drop_empty=True) if rows else ""
    published = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (r.get("published") or {}).items())
    steps = f"{r['steps']:,} steps, " if r.get("steps") else ""
    out += (
        f"\n**Test perplexity {one(r.get('test_ppl'))}** (best validation {one(r.get('valid_ppl'))}); "
        f"{steps}stopped by {r.get('stopped') or '-'}, wall {r['wall_s'] / 60:.1f} min"
        + (f"; published: {published}" if published else "")
        + ".\n"
    )
    return out


def render_translate(doc: dict[str, Any]) -> str:
    r = doc["result"]
    t = r["test"]
    out = (
        f"{r['steps']} steps ({r['stopped']}), training {r['train_wall_s'] / 60:.1f} min, total "
        f"{r['total_wall_s'] / 60:.1f} min; test: {t.get('sentences')} sources, {t.get('references')} references.\n\n"
    )
    out += table(
        ["decoding", "BLEU", "chrF"],
        [
            [f"beam {t.get('beam')}", f"**{t['bleu']:.2f}**", f"{t['chrf']:.2f}"],
            ["greedy", f"{t['bleu_greedy']:.2f}", f"{t['chrf_greedy']:.2f}"],
        ],
    )
    bleus = [f"{e['valid_bleu_greedy']:.1f}" for e in r.get("epochs", []) if e.get("valid_bleu_greedy") is not None]
    if bleus:
        out += f"\nValidation BLEU (greedy) at each validation: {', '.join(bleus)}.\n"
    out += "\n" + table(
        ["input", "expected", "beam", "greedy"],
        [[x["spanish"], x["expected"], x["beam"], x["greedy"]] for x in r.get("examples", [])],
    )
    return out


def render_tune_ptb(doc: dict[str, Any]) -> str:
    r = doc["result"]
    params = " ".join(
        f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in (r.get("best_params") or {}).items()
    )
    return (
        f"- {r['n_trials'] + r['n_pruned'] + r['n_failed']} trials ({r['sampler']} sampler, {r['pruner']} pruner, "
        f"{r['max_steps']} steps each on {r['train_fraction']:g} of the PTB training text) in "
        f"{r['wall_s'] / 60:.0f} min: {r['n_trials']} complete, {r['n_pruned']} pruned, {r['n_failed']} failed.\n"
        f"- Recipe default under the same budget: validation perplexity **{num(r.get('baseline_valid_ppl'))}**.\n"
        f"- Best (trial {r.get('best_trial')}): **{num(r.get('best_valid_ppl'))}**"
        + (f" ({-r['improvement']:+.1%})" if r.get("improvement") is not None else "")
        + f": {params}.\n"
    )


def render_lm_speed(doc: dict[str, Any]) -> str:
    r = doc["result"]
    if r.get("mode") == "scaling":
        measured = [x for x in r["rows"] if x.get("tokens_per_s")]
        rows = [
            [
                str(x["hidden"]),
                str(x["batch"]),
                str(x["bptt"]),
                x["backend"],
                x["precision"],
                str(x["procs"]),
                rate(x["tokens_per_s"]),
                one(x.get("gflops")),
                pct(x.get("fraction_of_peak"), 1),
            ]
            for x in measured
        ]
        peaks = ", ".join(f"{k} {v:g}" for k, v in r["matmul_peak_gflops"].items())
        notes = sorted(
            {f"{x['precision']}: {x.get('note') or 'not measured'}" for x in r["rows"] if not x.get("tokens_per_s")}
        )
        return (
            f"Matmul peak measured in the run (GFLOP/s): {peaks}.\n\n"
            + table(
                ["hidden", "batch", "bptt", "backend", "precision", "procs", "tokens/s", "GFLOP/s", "of peak"], rows
            )
            + (f"\nNot measured: {'; '.join(notes)} ({len(r['rows']) - len(measured)} rows).\n" if notes else "")
        )
    c = r["config"]
    rows = [
        [
            x["variant"],
            rate(x["tokens_per_s"]),
            " ".join(f"{v:.0f}" for v in x["runs"]),
            f"{x['vs_plain']:.2f}x" if x.get("vs_plain") is not None else "-",
            pct(x["fraction_of_peak"], 1),
        ]
        for x in r["results"]
    ]
    return (
        f"{c['layers']}x{c['hidden']} LSTM, bptt {c['bptt']}, batch {c['batch']}, dropout {c['dropout']}, "
        f"{c['threads']} threads, {c['rounds']} alternating rounds of {c['steps']} steps; fp32 matmul peak "
        f"measured in the run: {r['matmul_peak_gflops']:g} GFLOP/s.\n\n"
        + table(
            [
                "variant",
                f"tokens/s (median of {c['rounds']})",
                "runs",
                "vs plain (median of per-round ratios)",
                "share of peak",
            ],
            rows,
        )
    )


def render_lm_profile(doc: dict[str, Any]) -> str:
    r = doc["result"]
    rows = [
        [
            k,
            f"{e['ms']:.1f}",
            pct(e["share"], 1),
            f"{e['gflops']:.1f}" if "gflops" in e else "",
            pct(e["peak_fraction"], 1) if "peak_fraction" in e else "",
        ]
        for k, e in r["phases"].items()
    ]
    out = (
        f"{r['recipe']} {' '.join(r['overrides'])}".rstrip() + f": {r['device']}, {r['threads']} threads, "
        f"{r['precision']}, backend {r['backend']}; {r['tokens_per_step']} tokens a step, median of {r['steps']} "
        f"steps {r['step_ms']:.0f} ms ({rate(r['tokens_per_s'])} tokens/s); matmul peak {r['matmul_peak_gflops']:.0f} "
        f"GFLOP/s.\n\n"
    )
    out += table(["phase", "ms/step", "share", "GFLOP/s", "of peak"], rows)
    if r.get("top_ops"):
        ops = ", ".join(f"`{o['op']}` {o['self_ms_per_step']:.1f} ms" for o in r["top_ops"])
        out += f"\nTop operators by self time per step: {ops}.\n"
    return out


def render_reproduce(doc: dict[str, Any]) -> str:
    r = doc["result"]
    rows = [
        [c["recipe"], c["figure"], c["stated"], c["tolerance"], c["measured_text"], "ok" if c["ok"] else "**FAIL**"]
        for c in r["checks"]
    ]
    walls = ", ".join(f"{k} {v:.0f} s" for k, v in r["wall_s_by_recipe"].items())
    verdict = "all within tolerance" if r["passed"] else f"{r['failed']} outside tolerance"
    return (
        table(["recipe", "figure", "stated", "tolerance", "measured", "result"], rows)
        + f"\n{len(r['checks'])} checks, {verdict}. Training wall time (seeds together): {walls}.\n"
    )


def render_gradient_flow(doc: dict[str, Any]) -> str:
    r = doc["result"]
    ratios = ", ".join(f"{cell} {v:.1e}" for cell, v in r["ratio_first_to_last"].items())
    return (
        f"Gradient {r['steps'] - 1} steps back relative to the last step (hidden {r['hidden']}, PyTorch's default "
        f"init, float64): {ratios}.\n"
    )


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "classify": render_classify,
    "forecast": render_forecast,
    "ptb": render_ptb,
    "translate": render_translate,
    "tune_ptb": render_tune_ptb,
    "lm_speed": render_lm_speed,
    "lm_profile": render_lm_profile,
    "reproduce": render_reproduce,
    "gradient_flow": render_gradient_flow,
}


def render(stem: str, results: Path = RESULTS) -> str:
    """The generated block for ``benchmarks/results/STEM.json``: its table(s) and provenance line."""
    doc = read_result(results / f"{stem}.json")
    renderer = RENDERERS.get(doc["benchmark"])
    if renderer is None:
        raise ResultError(f"{stem}.json: no renderer for benchmark {doc['benchmark']!r} in results_tables.py")
    return renderer(doc) + "\n" + provenance_line(doc, stem)


def generate(text: str, results: Path = RESULTS) -> str:
    """``text`` with every generated block rewritten from its result file."""

    def block(m: re.Match[str]) -> str:
        return f"<!-- generated: {m[1]} -->\n{render(m[1], results)}<!-- end generated: {m[1]} -->"

    return BLOCK.sub(block, text)


def referenced(text: str) -> list[str]:
    """The result-file stems the doc's generated blocks name, in order."""
    return [name for name, _ in BLOCK.findall(text)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when the doc differs")
    ap.add_argument("--doc", type=Path, default=DOC)
    a = ap.parse_args()
    text = a.doc.read_text()
    try:
        new = generate(text)
    except ResultError as e:
        print(f"results_tables: {e}", file=sys.stderr)
        return 2
    unused = sorted({p.stem for p in RESULTS.glob("*.json")} - set(referenced(text)))
    if unused:
        print(f"results_tables: not shown in {a.doc.name}: {', '.join(unused)}", file=sys.stderr)
    if a.check:
        if new != text:
            stale = [m[0] for m, n in zip(BLOCK.findall(text), BLOCK.findall(new)) if m != n]
            print(
                f"results_tables: {a.doc} is stale in block(s) {', '.join(stale)}; "
                f"run python benchmarks/results_tables.py",
                file=sys.stderr,
            )
            return 1
        return 0
    if new != text:
        a.doc.write_text(new)
        print(f"rewrote {a.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
