"""Generate the tables of docs/results.md (and the pages that quote it) from the result files in benchmarks/results/.

    python benchmarks/results_tables.py            # rewrite the generated blocks of docs/results.md and QUOTING
    python benchmarks/results_tables.py --check    # exit 1 (and say which block) when a page is stale

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
import math
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _results import ALLOCATOR_ENV, RESULTS, ResultError, measured, read_result

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "results.md"
# other pages that show a block of results.md again beside their own prose (docs/recurrences.md: the modern layers'
# speed); results.md stays the page that shows every file, and the only one with the history section
QUOTING = [REPO / "docs" / "recurrences.md"]
# a block names one file stem, or a glob of stems ("load-*-r?") shown together by the benchmark's group renderer
BLOCK = re.compile(r"<!-- generated: ([\w.*?-]+) -->\n(.*?)<!-- end generated: \1 -->", re.S)
# figures not measured by their benchmark on code of this page's time (provenance reconstructed, or transcribed
# from a hand-written page) live below this heading, never among the current tables
HISTORY = "\n## Not re-measured since"


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
    changed = [f for f in git.get("dirty_files") or [] if measured(f)]
    if changed:
        code += f" with uncommitted changes to {', '.join(changed)}"
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


def render_own_data_forecast(doc: dict[str, Any]) -> str:
    """``benchmarks/own_data_forecast.py``: the two commands of issue 22 on each series, beside the simple models
    statsmodels fits on the same history (the best of them is the bar)."""
    res = doc["result"]

    def g(x: float | None) -> str:  # series in any units: 4 significant digits, however small
        return "-" if x is None else f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"

    header = ["series", "points", "H", "rnnkit RMSE (forecast by)", "model alone", "best simple model", "ratio"]
    header += ["darts RNN", "train s"]
    rows = []
    for r in res["results"]:
        rows.append(
            [
                r["case"],
                f"{r['points']:,}",
                str(r["horizon"]),
                f"{g(r['rmse'])} ({r['forecaster']})",
                g(r.get("model_rmse")),
                f"{r['best_simple'].replace('_', ' ')} {g(r['best_simple_rmse'])}",
                f"{r['ratio']:.2f}" + ("" if r["goal_met"] else " (over)"),
                g(r.get("darts_rnn_rmse")),
                one(r.get("train_wall_s")),
            ]
        )
    s = res["summary"]
    return (
        table(header, rows, drop_empty=True).rstrip("\n")
        + f"\n\nWithin {res['goal']}x of the best simple model: {s['goal_met']} of {s['cases']} series "
        f"({s['public_goal_met']} of the {s['public_cases']} public cases); at or below it: {s['at_or_below_best']} "
        f"({s['public_at_or_below_best']} public)."
    )


def render_wide_forecast(doc: dict[str, Any]) -> str:
    """``benchmarks/own_data_forecast.py --suite wide``: too many series for a row each - how often each forecast
    rnnkit can give (the default ensemble, the model alone, each fitted baseline) is within the goal of the best
    simple model and at or below it, its typical (geometric mean) and worst ratio, and the series the default
    missed the goal on."""
    res = doc["result"]
    each = res["summary"]["each_forecast"]
    order = ["ensemble", "model", *sorted(k for k in each if k not in ("ensemble", "model"))]
    rows = [
        [
            f"**{k}** (the default)" if k == "ensemble" else k.replace("_", " "),
            f"{each[k]['goal_met']} of {each[k]['cases']}",
            f"{each[k]['at_or_below_best']}",
            f"{each[k]['geomean_ratio']:.3f}",
            f"{each[k]['worst_ratio']:.2f}",
        ]
        for k in order
        if k in each
    ]
    header = ["forecast", f"within {res['goal']}x", "at or below", "geometric mean ratio", "worst ratio"]
    over = sorted((r for r in res["results"] if not r["goal_met"]), key=lambda r: -r["ratio"])
    return (
        table(header, rows).rstrip("\n")
        + f"\n\nThe default forecast over {res['goal']}x the best simple model on {len(over)} of "
        f"{res['summary']['cases']} series: "
        + ", ".join(f"{r['case']} ({r['ratio']:.2f}x {r['best_simple'].replace('_', ' ')})" for r in over)
        + ".\n"
    )


def render_own_data_classify(doc: dict[str, Any]) -> str:
    """``benchmarks/own_data_classify.py``: the two commands of issue 22 on each set's official split, beside
    scikit-learn's RandomForest and sktime's MiniRocket on the same split."""
    rows = []
    for name, c in doc["result"]["cases"].items():
        r = c["rnnkit"]
        rows.append(
            [
                name,
                f"{r['accuracy']:.3f}",
                f"{r['macro_f1']:.3f}",
                f"{r['examples']:,}",
                f"{c['random_forest']['accuracy']:.3f}" if c.get("random_forest") else "-",
                f"{c['minirocket']['accuracy']:.3f}" if c.get("minirocket") else "-",
                one(r.get("wall_s")),
                one(r.get("cpu_s")),
            ]
        )
    header = ["set", "rnnkit test accuracy", "macro F1", "test series", "RandomForest", "MiniRocket"]
    return table(header + ["train wall s", "train CPU s"], rows)


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
    if r.get("mode") == "interleave":  # lm_speed.py --interleave: the two steps alternating in one process
        c, load = r["config"], r["load_avg"]
        rows = [
            [name, one(x["cpu_ms"]), one(x["wall_ms"]), rate(x["tokens_per_cpu_s"]), rate(x["tokens_per_s"])]
            for name, x in r["steps"].items()
        ]
        isa = r.get("oneDNN_max_cpu_isa") or "none (the CPU as it is)"
        return (
            f"{c['layers']}x{c['hidden']} LSTM, bptt {c['bptt']}, batch {c['batch']}, {c['threads']} thread(s), "
            f"{c['precision']}, {c['steps']} steps of each alternating; ONEDNN_MAX_CPU_ISA: {isa}; "
            f"load average {load['start']:.1f} -> {load['end']:.1f}.\n\n"
            + table(["step", "CPU ms", "wall ms", "tokens / CPU s", "tokens / s"], rows)
            + f"\nrnnkit vs plain (median of per-step ratios): **{r['rnnkit_vs_plain_cpu']:.2f}x** by CPU time, "
            f"{r['rnnkit_vs_plain_wall']:.2f}x by wall time.\n"
        )
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
    with_ppl = any(x.get("valid_ppl") is not None for x in r["results"])  # older files have no such column
    rows = [
        [
            x["variant"],
            rate(x["tokens_per_s"]),
            " ".join(f"{v:.0f}" for v in x["runs"]),
            f"{x['vs_plain']:.2f}x" if x.get("vs_plain") is not None else "-",
            pct(x["fraction_of_peak"], 1),
            *([f"{x['valid_ppl']:.2f}" if x.get("valid_ppl") is not None else "-"] if with_ppl else []),
        ]
        for x in r["results"]
    ]
    emulated = (
        "\n*bf16 matrix products computed as bf16 units compute them, on fp32 units (`--bf16-gemm-via-fp32`): the "
        "perplexities are bf16's, the tokens/s of the bf16 rows mean nothing.*\n"
        if c.get("bf16_gemm_via_fp32")
        else ""
    )
    total = r["results"][0].get("steps") if r["results"] else None  # older files do not say
    return (
        f"{c['layers']}x{c['hidden']} LSTM, bptt {c['bptt']}, batch {c['batch']}, dropout {c['dropout']}, "
        f"{c['threads']} threads, {c['rounds']} alternating rounds of {c['steps']} timed steps"
        f"{f' ({total} in all)' if total else ''}"
        f"{', seed ' + str(c['seed']) if c.get('seed') is not None else ''}; fp32 matmul peak "
        f"measured in the run: {r['matmul_peak_gflops']:g} GFLOP/s.\n\n"
        + table(
            [
                "variant",
                f"tokens/s (median of {c['rounds']})",
                "runs",
                "vs plain (median of per-round ratios)",
                "share of peak",
                *(["validation ppl after the run"] if with_ppl else []),
            ],
            rows,
        )
        + emulated
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


def _verdict(c: dict[str, Any]) -> str:
    if c["kind"] == "compare":
        return "beaten" if c.get("beats") else "not beaten (reported, not claimed)"
    return "ok" if c["ok"] else "**FAIL**"


def render_reproduce(doc: dict[str, Any]) -> str:
    r = doc["result"]
    rows = [
        [c["recipe"], c["figure"], c["stated"], c["tolerance"], c["measured_text"], _verdict(c)] for c in r["checks"]
    ]
    walls = ", ".join(f"{k} {v:.0f} s" for k, v in r["wall_s_by_recipe"].items())
    verdict = "all claims hold" if r["passed"] else f"{r['failed']} outside tolerance"
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


def render_transcribed(doc: dict[str, Any]) -> str:
    """Figures copied from a page written by hand before result files existed: its blocks verbatim, then how to
    measure them again (the file's provenance says which page, commit, command and machine)."""
    t = doc["result"]["transcribed"]
    out = (
        f"*Transcribed from the hand-written {t['page']} of commit `{t['page_commit'][:7]}` ({t['page_date']}): "
        "no result file was written when these figures were measured, and they have not been re-measured since.*\n"
    )
    for block in t["blocks"]:
        out += "\n"
        if "table" in block:
            out += table(block["table"]["header"], block["table"]["rows"])
        else:
            out += block["text"].rstrip("\n") + "\n"
    out += f"\nTo measure them again: {t['remeasure']}\n"
    return out


def render_recurrence(doc: dict[str, Any]) -> str:
    r = doc["result"]
    c = r["config"]
    rows = []
    for x in r["rows"]:
        if x.get("fused_ms") is None:
            rows.append([x["precision"], str(x["hidden"]), str(x["batch"]), x.get("note") or "not measured", "", ""])
        else:
            rows.append(
                [
                    x["precision"],
                    str(x["hidden"]),
                    str(x["batch"]),
                    rate(x["fused_ms"]),
                    rate(x["projected_ms"]),
                    f"{x['projected_speedup']:.2f}x",
                ]
            )
    return (
        f"{c['layers']}-layer LSTM, forward + backward over ({c['bptt']}, batch, hidden), {c['threads']} "
        f"thread{'s' if c['threads'] != 1 else ''}, median of {c['reps']} alternating reps.\n\n"
        + table(["precision", "hidden", "batch", "oneDNN nn.LSTM ms", "projected ms", "projected speed-up"], rows)
    )


def _allocator(doc: dict[str, Any]) -> str:
    """How the measured processes' allocator was set, where the environment changed glibc's default."""
    env = doc["provenance"].get("env") or {}
    kept = {k: v for k, v in env.items() if k in ALLOCATOR_ENV}
    if not kept:
        return ""
    return "; allocator: " + " ".join(f"`{k}={v}`" for k, v in sorted(kept.items()))


def render_recurrences(doc: dict[str, Any]) -> str:
    """benchmarks/recurrences.py: the modern layers against nn.LSTM (and their reference packages)."""
    r = doc["result"]
    c = r["config"]
    rows = [
        [
            x["cell"],
            rate(x["ms"]),
            f"{x['speed_vs_lstm']:.2f}x",
            f">= {x['target']}x" if x.get("target") else "",
            "-" if x.get("peak_gb") is None else f"{x['peak_gb']:.2f}",
            rate(x.get("gemm_ms")) if x.get("gemm_ms") is not None else "",
            rate(x.get("scan_ms")) if x.get("scan_ms") is not None else "",
        ]
        for x in r["rows"]
    ]
    out = (
        f"Forward + backward, batch {c['batch']}, T={c['seq']}, input {c['input']}, {c['layers']} layers, width "
        f"{c['hidden']}, fp32, {c['threads']} thread{'s' if c['threads'] != 1 else ''}, median of {c['rounds']} "
        f"alternating rounds; peak memory of the whole process{_allocator(doc)}.\n\n"
        + table(["layer", "ms", "vs nn.LSTM", "target", "peak GB", "GEMM ms", "scan ms"], rows, drop_empty=True)
    )
    ref = r.get("reference", {})
    if ref.get("rows"):
        sh = ref["shape"]
        ref_rows = [
            [
                x["cell"],
                rate(x["rnnkit_ms"]),
                rate(x.get("ref_ms")) if x.get("ref_ms") is not None else x.get("ref", "-"),
                f"{x['rnnkit_vs_ref']:.2f}x" if x.get("rnnkit_vs_ref") is not None else "-",
            ]
            for x in ref["rows"]
        ]
        out += f"\nReference packages at T={sh['seq']}, batch {sh['batch']}:\n\n" + table(
            ["layer", "rnnkit ms", "reference ms", "rnnkit vs reference"], ref_rows
        )
    return out


def render_decode_step(doc: dict[str, Any]) -> str:
    r = doc["result"]
    c = r["config"]
    rows = [
        [
            x["cell"],
            str(x["hidden"]),
            str(x["batch"]),
            rate(x["kernel_us"]),
            rate(x["step_us"]),
            f"{x['speedup']:.2f}x",
            f"{x['max_abs_diff']:.1e}",
        ]
        for x in r["results"]
    ]
    return (
        f"{c['layers']}-layer stack, one step under inference mode, {c['threads']} thread"
        f"{'s' if c['threads'] != 1 else ''}, median of {c['reps']} alternating reps of up to {c['calls']} calls "
        f"({c.get('budget', '-')} s each at most).\n\n"
        + table(["cell", "hidden", "batch", "kernel us", "cell ops us", "speed-up", "largest difference"], rows)
    )


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def render_peer_keras(doc: dict[str, Any]) -> str:
    r = doc["result"]
    sh, v = r["shape"], r["versions"]
    sizes = sh["hidden"] if isinstance(sh["hidden"], list) else [sh["hidden"]] * sh["layers"]
    same = len(set(sizes)) == 1
    lstm = f"{sh['layers']} LSTM layers of {sizes[0]}" if same else "LSTM " + " -> ".join(map(str, sizes))
    head = (
        f"PTB, embedding {sh['embedding']}, {lstm}, batch {sh['batch']}, "
        f"bptt {sh['bptt']}, SGD lr {sh['lr']:g}, clip {sh['clip']:g}; {r['config']['rounds']} alternating rounds of "
        f"{r['config']['steps']} steps; TensorFlow {v.get('tensorflow')}, Keras {v.get('keras')}.\n\n"
    )
    if "by_threads" not in r:  # files from before every setting and both thread counts ran in one process tree
        base = r["baseline"]
        names = {"keras-xla": "Keras 3, `jit_compile=True` (XLA)", "keras": "Keras 3, `jit_compile=False`"}
        rows = [
            [
                names.get(x["variant"], f"rnnkit {r['config'].get('precision', 'fp32')} (Trainer)"),
                rate(x["tokens_per_s"]),
                " ".join(f"{v:.0f}" for v in x["runs"]),
                f"{x[f'vs_{base}']:.2f}x",
                f"{x['loss_last'][-1]:.3f}",
            ]
            for x in r["results"]
        ]
        vs = f"vs {names.get(base, base)} (median of per-round ratios)"
        return head + table(["variant", "tokens/s (median)", "per round", vs, "training loss at the last batch"], rows)
    rows = []
    passive = any(t.get("omp_wait_policy") for t in r["by_threads"])

    def threads(t: dict[str, Any]) -> str:  # a worker started with OMP_WAIT_POLICY=PASSIVE says so
        return f"{t['threads']}, `OMP_WAIT_POLICY=PASSIVE`" if t.get("omp_wait_policy") else str(t["threads"])

    for t in r["by_threads"]:
        for x in t["results"]:
            name = r["names"].get(x["variant"], x["variant"])
            fastest = " (fastest Keras)" if x["variant"] == t["fastest_keras"] else ""
            rows.append(
                [
                    threads(t),
                    f"{name}{fastest}",
                    rate(x["tokens_per_s"]),
                    " ".join(f"{v:.0f}" for v in x["runs"]),
                    f"{x['vs_fastest_keras']:.2f}x" if x.get("vs_fastest_keras") is not None else "-",
                    *([_ratio(x.get("vs_default_wait_policy"))] if passive else []),
                    f"{x['loss_last'][-1]:.3f}",
                ]
            )
    summary = "; ".join(
        f"{_worker(t)}: rnnkit / fastest Keras "
        f"**{next(x['vs_fastest_keras'] for x in t['results'] if x['variant'] == 'rnnkit'):.2f}x**"
        for t in r["by_threads"]
        if any(x["variant"] == "rnnkit" for x in t["results"])
    )
    bounds = [_gemm_bound_line(t) for t in r["by_threads"] if t.get("gemm_bound") and t.get("fastest_keras")]
    if bounds:
        summary += (
            "\n\nThe ceiling (the products alone, at the rate this machine's BLAS reached on the output layer's "
            "products in the same worker: `peer_keras.gemm_bound`): " + "; ".join(bounds)
        )
    return (
        head
        + table(
            [
                "threads",
                "variant",
                "tokens/s (median)",
                "per round",
                "vs fastest Keras (median of per-round ratios)",
                *(["vs the default wait policy (median of per-round ratios)"] if passive else []),
                "training loss at the last batch",
            ],
            rows,
        )
        + (f"\n{summary}.\n" if summary else "")
    )


def _worker(t: dict[str, Any]) -> str:
    """A peer benchmark worker in prose: '2 threads', or '2 threads, `OMP_WAIT_POLICY=PASSIVE`'."""
    passive = ", `OMP_WAIT_POLICY=PASSIVE`" if t.get("omp_wait_policy") else ""
    return f"{t['threads']} thread{'s' if t['threads'] != 1 else ''}{passive}"


def _gemm_bound_line(t: dict[str, Any]) -> str:
    """One thread count's ceiling: the step's GEMMs alone, and what the fastest Keras and the goal (1.2x it) ask of
    it - a goal above the ceiling cannot be met by any implementation of the fp32 model on that machine."""
    b = t["gemm_bound"]
    keras = next(x["tokens_per_s"] for x in t["results"] if x["variant"] == t["fastest_keras"])
    return (
        f"{_worker(t)}: {b['gflop_per_step']} GFLOP a step at "
        f"{b['gemm_gflop_per_s']:g} GFLOP/s = {rate(b['tokens_per_s'])} tokens/s; the fastest Keras runs at "
        f"{keras / b['tokens_per_s']:.0%} of it, and 1.2x the fastest Keras would be "
        f"{1.2 * keras / b['tokens_per_s']:.0%} of it"
    )


def render_load_test(doc: dict[str, Any]) -> str:
    r = doc["result"]
    rows = [["all", str(r["requests"]), f"{r['rps']:.2f}", one(r["p50_ms"]), one(r["p99_ms"]), str(r["errors"])]]
    for name, e in r.get("by_endpoint", {}).items():
        rows.append(
            [f"/v1/{name}", str(e["requests"]), f"{e['rps']:.2f}", one(e["p50_ms"]), one(e["p99_ms"]), str(e["errors"])]
        )
    m = r.get("rss_mib") or {}
    return table(["endpoint", "requests", "req/s", "p50 ms", "p99 ms", "errors"], rows) + (
        f"\nServer RSS {m['before']:.1f} MiB before, {m['after']:.1f} MiB after ({m['growth']:+.1f} MiB).\n"
        if m
        else ""
    )


def render_load_test_group(docs: dict[str, dict[str, Any]]) -> str:
    """Paired runs ``load-before-Cc-rN`` / ``load-after-Cc-rN``: one row per clients and round."""
    pairs: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for stem, doc in docs.items():
        m = re.fullmatch(r"load-(before|after)-(\d+)c-r(\d+)", stem)
        if m is None:
            raise ResultError(f"{stem}.json: a load-test group file is named load-(before|after)-Cc-rN")
        pairs.setdefault((int(m[2]), int(m[3])), {})[m[1]] = doc["result"]
    rows = []
    for (clients, rnd), p in sorted(pairs.items()):
        if len(p) != 2:
            raise ResultError(f"load test, {clients} clients, round {rnd}: only the {next(iter(p))} file is there")
        b, a = p["before"], p["after"]
        bg, ag = b["by_endpoint"]["generate"], a["by_endpoint"]["generate"]
        bc, ac = b["by_endpoint"]["classify"], a["by_endpoint"]["classify"]
        rows.append(
            [
                str(clients),
                str(rnd),
                f"{bg['rps']:.2f} -> {ag['rps']:.2f}",
                f"{ag['rps'] / bg['rps']:.2f}x",
                f"{rate(bg['p50_ms'])} -> {rate(ag['p50_ms'])}",
                f"{rate(bg['p99_ms'])} -> {rate(ag['p99_ms'])}",
                f"{rate(bc['p50_ms'])} -> {rate(ac['p50_ms'])}",
                f"{rate(bc['p99_ms'])} -> {rate(ac['p99_ms'])}",
                f"{b['errors']} / {a['errors']}",
                f"{b['rss_mib']['growth']:+.1f} / {a['rss_mib']['growth']:+.1f}",
            ]
        )
    return (
        table(
            [
                "clients",
                "round",
                "generations/s before -> after",
                "ratio",
                "generate p50 ms",
                "generate p99 ms",
                "classify p50 ms",
                "classify p99 ms",
                "errors before / after",
                "server RSS growth MiB before / after",
            ],
            rows,
        )
        + _load_summary(pairs)
        + _server_code_note(pairs)
    )


def _load_summary(pairs: dict[tuple[int, int], dict[str, dict[str, Any]]]) -> str:
    """Per client count over the rounds: the generations/s ratio range and the generate p99 before -> after."""
    out = []
    for clients in sorted({c for c, _ in pairs}):
        ps = [p for (c, _), p in sorted(pairs.items()) if c == clients]
        ratios = [
            p["after"]["by_endpoint"]["generate"]["rps"] / p["before"]["by_endpoint"]["generate"]["rps"] for p in ps
        ]
        p99 = [
            (p["before"]["by_endpoint"]["generate"]["p99_ms"], p["after"]["by_endpoint"]["generate"]["p99_ms"])
            for p in ps
        ]
        errors = sum(p[s]["errors"] for p in ps for s in ("before", "after"))
        out.append(
            f"{clients} client{'s' if clients != 1 else ''}: **{min(ratios):.2f}-{max(ratios):.2f}x** the generations "
            f"per second, generate p99 {rate(statistics.fmean(b for b, _ in p99))} -> "
            f"{rate(statistics.fmean(a for _, a in p99))} ms (mean of rounds), {errors} failed requests"
        )
    return "\n" + "; ".join(out) + ".\n"


def render_lm_speed_group(docs: dict[str, dict[str, Any]]) -> str:
    """Several paired precision runs of one shape (the bf16 quality check over seeds): one row per seed with each
    variant's validation perplexity and the gap, then the mean over seeds and the spread of each variant."""
    runs = sorted(docs.values(), key=lambda d: d["result"]["config"].get("seed") or 0)
    variants = [x["variant"] for x in runs[0]["result"]["results"]]
    base, other = variants[0], variants[-1]
    rows, ppl = [], {v: [] for v in variants}
    for d in runs:
        r = d["result"]
        by = {x["variant"]: x["valid_ppl"] for x in r["results"]}
        for v in variants:
            ppl[v].append(by[v])
        seed = r["config"].get("seed")
        rows.append(
            [
                str(seed if seed is not None else 1234),  # files before --seed: the recipe's train.seed
                *(f"{by[v]:.2f}" for v in variants),
                f"{by[other] / by[base] - 1:+.1%}",
            ]
        )
    c = runs[0]["result"]["config"]
    means = {v: statistics.fmean(p) for v, p in ppl.items()}
    gaps = [b / a - 1 for a, b in zip(ppl[base], ppl[other])]
    spread = "; ".join(f"{v} spans {min(p):.1f}-{max(p):.1f} ({max(p) / min(p) - 1:.1%})" for v, p in ppl.items())
    emulated = " (bf16 products computed on fp32 units, `--bf16-gemm-via-fp32`)" if c.get("bf16_gemm_via_fp32") else ""
    return (
        f"{c['layers']}x{c['hidden']} LSTM, bptt {c['bptt']}, batch {c['batch']}, {c['steps'] + 10} steps each, "
        f"{c['threads']} thread(s){emulated}; validation perplexity after the run:\n\n"
        + table(["seed", *variants, f"{other} vs {base}"], rows)
        + f"\nMean over {len(runs)} seeds: {base} {means[base]:.2f}, {other} {means[other]:.2f} "
        f"(**{means[other] / means[base] - 1:+.1%}**); per-seed gaps: mean {statistics.fmean(gaps):+.1%}, "
        f"standard deviation {statistics.stdev(gaps) * 100 if len(gaps) > 1 else 0:.1f} points; {spread}.\n"
    )


def _server_code_note(pairs: dict[tuple[int, int], dict[str, dict[str, Any]]]) -> str:
    """Which code each side's server ran (``load_test.py --server-src``), where the files say: the measuring
    checkout's commit (in the provenance) is not the 'before' server's."""
    seen: dict[str, set[str]] = {}
    for p in pairs.values():
        for side, r in p.items():
            server = r.get("server") or {}
            if server.get("commit"):
                seen.setdefault(side, set()).add(
                    server["commit"][:10] + (" (uncommitted changes)" if server.get("dirty") else "")
                )
    if not seen:
        return ""
    return (
        "\nServer code: "
        + "; ".join(f"{side} `{', '.join(sorted(c))}`" for side, c in sorted(seen.items(), reverse=True))
        + ".\n"
    )


def render_train(doc: dict[str, Any]) -> str:
    """One ``rnnkit train --json`` summary: the test and best-validation figures."""
    r = doc["result"]
    t, v = r["test"], r.get("valid_best") or {}
    return (
        f"{r.get('set_up', '-')}. Split: {r.get('split', '-')}.\n\n"
        + table(
            ["test accuracy", "macro F1", "test examples", "best valid accuracy", "epochs", "steps", "wall s"],
            [
                [
                    pct(t["accuracy"], 1),
                    f"{t['macro_f1']:.3f}",
                    f"{t['examples']:,}",
                    pct(v.get("accuracy"), 1),
                    str(r.get("epochs", "-")),
                    f"{r['steps']:,}" if r.get("steps") else "-",
                    f"{r['wall_s']:.0f}" if r.get("wall_s") else "-",
                ]
            ],
        )
        + _trajectory(r)
        + (f"\n{r['seed_figure']}.\n" if r.get("seed_figure") else "")
    )


def _trajectory(r: dict[str, Any]) -> str:
    """Validation accuracy after every tenth validation (and the last), from a run's trajectory."""
    vs = r.get("validations") or []
    if len(vs) < 2:
        return ""
    every = max(1, len(vs) // 10)
    shown = [(i + 1, v) for i, v in enumerate(vs) if (i + 1) % every == 0 or i + 1 == len(vs)]
    points = ", ".join(f"{n}: {pct(v['accuracy'], 1)}" for n, v in shown)
    return f"\nValidation accuracy after epoch {points} (best {pct(max(v['accuracy'] for v in vs), 1)}).\n"


def render_export(doc: dict[str, Any]) -> str:
    r = doc["result"]
    v = r.get("versions") or {}

    def diffs(x: dict[str, Any]) -> str:
        return " / ".join(f"{d:.1e}" if d else "0" for d in x["max_abs_diff"].values())

    rows = [
        [x["run"], " / ".join(x["onnx"]["max_abs_diff"]), diffs(x["onnx"]), diffs(x["torchscript"])]
        for x in r["results"]
    ]
    return (
        f"Each run trained {r['steps']} steps, then `rnnkit export RUN --format onnx|torchscript --json`, which runs "
        "the exported file on fresh random inputs of other sizes than it was traced with and reports the largest "
        f"absolute difference from the PyTorch module over every output; tolerance {r['tolerance']:g}.\n\n"
        + table(["run", "graphs", f"ONNX (onnxruntime {v.get('onnxruntime')})", "TorchScript"], rows)
    )


def render_omp_wait(doc: dict[str, Any]) -> str:
    r = doc["result"]
    rows = [
        [
            x["setting"],
            rate(x.get("rate", x.get("tokens_per_s"))),  # "tokens_per_s": files written before 2026-12-08
            " ".join(f"{v:.0f}" for v in x["runs"]),
            f"{x['vs_1_thread']:.2f}x",
        ]
        for x in r["results"]
    ]
    hogs, unit = r.get("busy_processes", 0), r.get("unit", "tokens/s")
    load = f" ({hogs} busy processes running beside them)" if hogs else ""
    return (
        f"{r['shape']}; {r['rounds']} alternating rounds of {r['steps']} steps, each setting in a fresh process; load "
        f"average {r['load_avg']['min']:.1f}-{r['load_avg']['max']:.1f} during the rounds{load}.\n\n"
        + table(["setting", f"{unit} (median)", "per round", "vs 1 thread (median of per-round ratios)"], rows)
    )


def render_thp(doc: dict[str, Any]) -> str:
    r = doc["result"]
    rows = [
        [
            f"`{x['workload']}`: {x['what']}",
            f"{rate(x['off']['rate'])} -> {rate(x['on']['rate'])}",
            f"{x['speedup']:.2f}x",
            f"{x['off']['wall_s']:.1f} -> {x['on']['wall_s']:.1f}",
            f"{x['off']['peak_gb']:.2f} -> {x['on']['peak_gb']:.2f}",
        ]
        for x in r["results"]
    ]
    return (
        f"`rnnkit train` with `THP_MEM_ALLOC_ENABLE=0` then `=1`, each in a fresh process, {r['rounds']} alternating "
        f"rounds, {r['threads']} thread(s); the kernel's transparent huge pages: `{r['kernel_thp']}`; load average "
        f"{r['load_avg']['min']:.1f}-{r['load_avg']['max']:.1f} during the rounds. Rates are the median of what each "
        "run logged (tokens/s for the language model, images/s for MNIST), off -> on.\n\n"
        + table(["workload", "training rate", "on / off (median of per-round ratios)", "wall s", "peak GB"], rows)
    )


def _quality_figure(x: float | None, metric: str) -> str:
    return pct(x) if metric == "accuracy" else "-" if x is None else f"{x:.3f}" if metric == "loss" else num(x)


def _grid_seeds(runs: list[dict[str, Any]]) -> str:
    """The seeds every cell ran ("seeds 1, 2, 3"), then those a part ran for some cells only (more seeds of the two
    a goal compares: "; 4, 5 for lstm, slstm"), since each row's mean is over its own seeds."""
    by_cell: dict[str, set[int]] = {}
    for x in runs:
        by_cell.setdefault(x["cell"], set()).add(x["seed"])
    common = set.intersection(*by_cell.values()) if by_cell else set()
    text = f"seed{'s' if len(common) != 1 else ''} {', '.join(map(str, sorted(common)))}"
    extra: dict[tuple[int, ...], list[str]] = {}
    for cell, seeds in by_cell.items():
        if seeds - common:
            extra.setdefault(tuple(sorted(seeds - common)), []).append(cell)
    return text + "".join(f"; {', '.join(map(str, k))} for {', '.join(v)}" for k, v in extra.items())


def render_quality(doc: dict[str, Any]) -> str:
    """``benchmarks/quality.py``: per task, each cell at equal parameter count after the same CPU budget - its
    test metric (mean over seeds), the steps and throughput the budget bought - the literature beside, and which
    part of the grid ran."""
    r = doc["result"]
    b = r["budget"]
    out = [
        f"Budget per run: **{b['seconds']:g} s of CPU time of one thread** ({b['kind']}). Parameter counts within "
        f"{r['tolerance']:.0%} of the LSTM's (the model `rnnkit.check` builds; language models and text "
        "classifiers with a 32-token placeholder vocabulary; `params (real)` counts the trained checkpoint).\n"
    ]
    for name, t in r["tasks"].items():
        if not t["runs"]:
            continue
        metric = t["metric"]
        lm = metric == "loss"

        unit = t["unit"]
        rows = []
        best = t.get("best_new_cell")
        for cell, w in t["widths"].items():
            runs = [x for x in t["runs"] if x["cell"] == cell]
            if not runs:
                continue
            mean = (t.get("by_cell") or {}).get(cell, {}).get("mean")
            shown = _quality_figure(mean, metric)
            if cell == best or cell == "lstm":
                shown = f"**{shown}**"
            row = [
                cell,
                str(w["hidden"]),
                f"{w['parameters']:,} ({w['ratio']:.3f})",
                f"{runs[0]['parameters_real']:,}" if runs[0].get("parameters_real") else "-",
                shown,
            ]
            if lm:
                row.append(f"{mean / math.log(2):.3f}" if mean is not None else "-")
            row += [
                " ".join(_quality_figure(x["metric"], metric) for x in runs),
                f"{statistics.fmean(x['steps'] or 0 for x in runs):,.0f}",
                rate(statistics.fmean(x.get(f"{unit}_per_cpu_s") or 0 for x in runs)),
                f"{statistics.fmean(x['cpu_s'] for x in runs):.0f} / {statistics.fmean(x['wall_s'] for x in runs):.0f}",
                ", ".join(sorted({x["stopped"] or "-" for x in runs})),
            ]
            rows.append(row)
        head = ["cell", "width", "params (x LSTM)", "params (real)"]
        head += ["test nats/char", "bits/char"] if lm else [f"test {metric}"]
        head += ["per seed", "steps", f"{unit} / CPU s", "CPU s / wall s", "stopped by"]
        verdict = ""
        if best:
            verdict = (
                f" Best new cell: **{best}**, which {'beats' if t['beats_lstm'] else 'does not beat'} the LSTM at "
                "this budget."
            )
        overrides = ", ".join(f"`{k}={v}`" for k, v in t["overrides"].items())
        out.append(
            f"**{name}** (recipe `{t['recipe']}`{f' with {overrides}' if overrides else ''}; "
            f"{_grid_seeds(t['runs'])}):{verdict}\n\n"
            + table(head, rows)
            + "\nLiterature: "
            + "; ".join(t["anchors"])
            + ".\n"
        )
    if r.get("sources"):  # a merge of several runs of the benchmark (quality.py --merge): each one's command
        out.append(
            "Merged from: "
            + "; ".join(
                f"`{x['command']}` on commit `{x['commit'][:10]}`, {x['started'][:10]}, {x['wall_s'] / 60:.0f} min"
                + (f" (taken: {', '.join(x['tasks'])})" if x.get("tasks") else "")
                for x in r["sources"]
            )
            + ".\n"
        )
    ran, left = r["ran"], r["not_run"]
    grid = r["full_grid"]
    out.append(
        f"Ran: tasks {', '.join(ran['tasks'])}; cells {', '.join(ran['cells'])}; "
        f"{_grid_seeds([x for t in r['tasks'].values() for x in t['runs']])} "
        f"(the full grid: {len(grid['tasks'])} tasks x "
        f"{len(grid['cells'])} cells x {grid['seeds']} seeds). Not run: "
        + (f"tasks {', '.join(left['tasks'])}" if left["tasks"] else "no task")
        + (f"; cells {', '.join(left['cells'])}" if left["cells"] else "")
        + (f"; {left['seeds']} more seed(s) per run" if left["seeds"] else "")
        + ".\n"
    )
    goal = r.get("goal")
    if goal and goal["by_task"]:  # a file without the goal's tasks says nothing of it
        parts = [
            f"{k}: {v['best_new_cell'] or '-'} {'beats' if v['beats_lstm'] else 'does not beat'} the LSTM"
            for k, v in goal["by_task"].items()
        ]
        out.append(
            f"Goal ({goal['text']}): **{'met' if goal['met'] else 'not met'}** at this budget ({'; '.join(parts)}).\n"
        )
    return "\n".join(out)


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
    "recurrence": render_recurrence,
    "recurrences": render_recurrences,
    "decode_step": render_decode_step,
    "peer_keras": render_peer_keras,
    "load_test": render_load_test,
    "train": render_train,
    "export": render_export,
    "omp_wait": render_omp_wait,
    "thp": render_thp,
    "own-data-forecast": render_own_data_forecast,
    "wide-forecast": render_wide_forecast,
    "own-data-classify": render_own_data_classify,
    "quality": render_quality,
}
# blocks that name a glob of stems: the benchmark's renderer for several files at once
GROUP_RENDERERS: dict[str, Callable[[dict[str, dict[str, Any]]], str]] = {
    "load_test": render_load_test_group,
    "lm_speed": render_lm_speed_group,
}


def stems(name: str, results: Path = RESULTS) -> list[str]:
    """The file stems a block name stands for: itself, or every file its glob matches."""
    if not any(c in name for c in "*?"):
        return [name]
    return sorted(p.stem for p in results.glob(f"{name}.json"))


def render(stem: str, results: Path = RESULTS) -> str:
    """The generated block for ``benchmarks/results/STEM.json`` (or a glob of stems): its tables and provenance."""
    names = stems(stem, results)
    if not names:
        raise ResultError(f"block {stem!r}: no file in benchmarks/results/ matches it")
    docs = {name: read_result(results / f"{name}.json") for name in names}
    kinds = {d["benchmark"] for d in docs.values()}
    if len(names) > 1 or names[0] != stem:
        if len(kinds) != 1 or next(iter(kinds)) not in GROUP_RENDERERS:
            raise ResultError(f"block {stem!r}: no group renderer for {sorted(kinds)} in results_tables.py")
        body = GROUP_RENDERERS[next(iter(kinds))](docs)
        return body + "\n" + group_provenance(docs)
    doc = docs[stem]
    if "transcribed" in doc["result"]:
        return render_transcribed(doc) + "\n" + provenance_line(doc, stem)
    renderer = RENDERERS.get(doc["benchmark"])
    if renderer is None:
        raise ResultError(f"{stem}.json: no renderer for benchmark {doc['benchmark']!r} in results_tables.py")
    return renderer(doc) + "\n" + provenance_line(doc, stem)


def group_provenance(docs: dict[str, dict[str, Any]]) -> str:
    """One provenance paragraph for several files: the first file's command, then the code (commit) and date of
    each file, the machine once (the same machine, or each when they differ), and every reconstruction note."""
    first_stem, first = next(iter(docs.items()))
    by_commit: dict[str, list[str]] = {}
    for stem, doc in docs.items():
        git = doc["provenance"]["git"]
        code = f"`{git['commit'][:10]}`" if git.get("commit") else "unknown commit"
        if any(measured(f) for f in git.get("dirty_files") or []):
            code += " (uncommitted changes)"
        by_commit.setdefault(f"{code} ({(doc['provenance'].get('finished') or '')[:10] or 'date unknown'})", []).append(
            stem
        )
    code_text = "; ".join(f"{k}: {', '.join(v)}" for k, v in by_commit.items())
    machines = []
    for doc in docs.values():
        p = doc["provenance"]
        m = p["machine"]
        flags = " ".join(m.get("cpu_flags") or []) or "no AVX"
        text = (
            f"{m.get('cpu') or 'unknown CPU'} ({flags}; {m.get('cpus')} CPUs), {m.get('threads')} thread(s), "
            f"torch {p['software'].get('torch')}"
        )
        if text not in machines:
            machines.append(text)
    notes = []
    for doc in docs.values():
        note = doc["provenance"].get("reconstructed")
        if note and note not in notes:
            notes.append(note)
    text = (
        f"Measured by commands of the form `{first['provenance']['command']}` (each file records its own), "
        f"code and date per file: {code_text}; on {'; '.join(machines)} (benchmarks/results/{first_stem}.json and "
        f"the {len(docs) - 1} others named)."
    )
    if notes:
        text += " Provenance reconstructed after the fact: " + " / ".join(notes)
    return "<sub>" + text + "</sub>\n"


def generate(text: str, results: Path = RESULTS) -> str:
    """``text`` with every generated block rewritten from its result file."""

    def block(m: re.Match[str]) -> str:
        return f"<!-- generated: {m[1]} -->\n{render(m[1], results)}<!-- end generated: {m[1]} -->"

    return BLOCK.sub(block, text)


def historical(doc: dict[str, Any]) -> bool:
    """A figure measured before its benchmark wrote result files: reconstructed provenance or a transcription."""
    return bool(doc["provenance"].get("reconstructed")) or "transcribed" in doc["result"]


def misplaced(text: str, results: Path = RESULTS) -> list[str]:
    """Blocks of historical figures that sit among the current tables (above the HISTORY heading)."""
    cut = text.find(HISTORY)
    cut = len(text) if cut < 0 else cut
    out = []
    for m in BLOCK.finditer(text):
        if m.start() < cut and any(historical(read_result(results / f"{s}.json")) for s in stems(m[1], results)):
            out.append(m[1])
    return out


def referenced(text: str, results: Path = RESULTS) -> list[str]:
    """The result-file stems the doc's generated blocks show, in order (a glob block: every file it matches)."""
    return [stem for name, _ in BLOCK.findall(text) for stem in stems(name, results)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when the doc differs")
    ap.add_argument("--doc", type=Path, default=None, help="one page only (default: results.md and QUOTING)")
    a = ap.parse_args()
    for page in [] if a.doc else QUOTING:  # the quoting pages: rewritten (or checked), nothing else
        code = _quoting(page, a.check)
        if code:
            return code
    a.doc = a.doc or DOC
    text = a.doc.read_text()
    try:
        new = generate(text)
    except ResultError as e:
        print(f"results_tables: {e}", file=sys.stderr)
        return 2
    wrong = misplaced(text)
    if wrong:
        print(
            f"results_tables: block(s) {', '.join(wrong)} show figures not re-measured by their benchmark; they belong "
            f"under the heading '{HISTORY.strip()} ...'",
            file=sys.stderr,
        )
        return 1
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


def _quoting(page: Path, check: bool) -> int:
    text = page.read_text()
    try:
        new = generate(text)
    except ResultError as e:
        print(f"results_tables: {page.name}: {e}", file=sys.stderr)
        return 2
    if new == text:
        return 0
    if check:
        print(f"results_tables: {page} is stale; run python benchmarks/results_tables.py", file=sys.stderr)
        return 1
    page.write_text(new)
    print(f"rewrote {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
