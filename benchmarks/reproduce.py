"""Re-train the quick recipes and check every figure published for them against its tolerance.

    python benchmarks/reproduce.py --quick [--data-dir DIR] [--out-root DIR] [--json-out FILE]
    python benchmarks/reproduce.py sms-spam har [--seeds 1234,1,2] ...
    python benchmarks/reproduce.py --full [--max-minutes 60] [--data-dir DIR] [--keras-python PY] [--json-out FILE]
    python benchmarks/reproduce.py --figure ptb-small [--figure ...] [--publish] [--data-dir DIR]
    python benchmarks/reproduce.py --list

Run it before changing a results table (and after changing anything that trains). ``--quick`` is every recipe
that trains in under ~3 minutes on 2 cores: parity, sms-spam, digits-rows, har-subset, sentiment, airline,
temperatures, sunspots, sine-series. Each is trained the way its publishing benchmark trained it
(benchmarks/classify.py or benchmarks/forecast.py: the same functions, seeds and threads), and every claim about it
in CLAIMS below is checked:

- ``floor``: a bound the recipe's description states (``>= 98% test accuracy``); a test keeps the descriptions and
  this table in step;
- ``published``: the figure docs/results.md shows, read from the published result file
  (benchmarks/results/classify.json, forecast.json), within the tolerance declared here;
- ``baseline``: the model beats the baseline the doc compares it with;
- ``compare``: a baseline the doc reports beside the model without claiming the model beats it (sms-spam against
  the bag-of-words regression): the table says whether it is beaten, and it never fails the check.

``--full`` measures every published figure again whose benchmark run fits in ``--max-minutes`` (the time its
result file records it took; ``--list`` shows every file, its command and its minutes), each with the command its
result file records (outputs moved to a scratch folder), and compares the new file's headline figures with the
stored ones within the tolerances of benchmarks/_figures.py: one table of pass/fail, exit 1 on any failure.
``--figure NAME`` does the same for one result file (benchmarks/results/NAME.json); with ``--publish`` the new
measurement replaces the published file (then run benchmarks/results_tables.py). Figures no benchmark can measure
again (transcribed from a hand-written page) are listed as such, never passed.

Prints one table, writes it with its provenance to --json-out (default benchmarks/results/reproduce-quick.json,
shown in docs/results.md), and exits 1 when any figure falls outside its tolerance. The tolerances allow for
another CPU or thread count (float rounding changes a run's trajectory as a new seed would); on the machine and
commit that published a figure, the same command gives the same number.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _figures
import classify
import forecast
from _results import RESULTS, Provenance, ResultError, read_result, write_result

QUICK = (
    "parity",
    "sms-spam",
    "digits-rows",
    "har-subset",
    "sentiment",
    "airline",
    "temperatures",
    "sunspots",
    "sine-series",
)
SOURCE = {r: "classify" for r in classify.RECIPES} | {r: "forecast" for r in forecast.RECIPES}


@dataclass(frozen=True)
class Claim:
    recipe: str
    kind: str  # "floor" | "published" | "baseline" | "compare"
    key: str  # dotted path into the recipe's row of the benchmark result ("accuracy.mean", "model.rmse")
    figure: str  # what the doc calls it
    value: float | None = None  # floor: the bound
    abs_tol: float = 0.0  # published: |measured - published| <= abs_tol + rel_tol * |published|
    rel_tol: float = 0.0
    baseline: str = ""  # baseline: dotted path of the figure to beat (lower is better for errors)
    lower_is_better: bool = False


ACC = "test accuracy, mean of seeds"
# Tolerances: accuracy as an absolute share; about three standard errors of a 3-seed mean measured across seeds
# (sms-spam: 560 test messages, one is 0.18 points; har: 950 windows; digits-rows: 180 images)
CLAIMS: tuple[Claim, ...] = (
    Claim("parity", "floor", "accuracy.min", "test accuracy, every seed (description: 100%)", value=1.0),
    Claim("sms-spam", "floor", "accuracy.mean", ACC + " (description: >= 98%)", value=0.98),
    Claim("sms-spam", "floor", "accuracy.min", "test accuracy, lowest seed", value=0.975),
    Claim("sms-spam", "published", "accuracy.mean", ACC, abs_tol=0.006),
    # the recipe does not beat the bag-of-words regression (docs/results.md says so): reported, not claimed
    Claim("sms-spam", "compare", "accuracy.mean", ACC + " vs bag-of-words LR", baseline="baseline.accuracy"),
    Claim("sentiment", "compare", "accuracy.mean", ACC + " vs bag-of-words LR", baseline="baseline.accuracy"),
    Claim("digits-rows", "floor", "accuracy.mean", ACC + " (description: >= 95%)", value=0.95),
    Claim("digits-rows", "published", "accuracy.mean", ACC, abs_tol=0.012),
    Claim("har-subset", "floor", "accuracy.mean", ACC + " (description: >= 90%)", value=0.90),
    Claim("har-subset", "published", "accuracy.mean", ACC, abs_tol=0.012),
    Claim("sentiment", "published", "accuracy.mean", ACC, abs_tol=0.015),
    *(
        c
        for r in ("airline", "temperatures", "sunspots", "sine-series")
        for c in (
            Claim(r, "published", "model.rmse", "test RMSE, mean of seeds", rel_tol=0.10),
            Claim(
                r,
                "baseline",
                "model.rmse",
                "test RMSE vs seasonal naive",
                baseline="seasonal_naive.rmse",
                lower_is_better=True,
            ),
        )
    ),
)


def lookup(row: dict[str, Any], key: str) -> float:
    value: Any = row
    for part in key.split("."):
        value = value[part]
    return float(value)


def published_row(recipe: str, results: Path = RESULTS) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the recipe's row in its published result file, that file's provenance)."""
    doc = read_result(results / f"{SOURCE[recipe]}.json")
    for row in doc["result"]["results"]:
        if row["recipe"] == recipe:
            return row, doc["provenance"]
    raise SystemExit(f"reproduce: {recipe} is not in benchmarks/results/{SOURCE[recipe]}.json; publish it first")


def _fmt(key: str, x: float) -> str:
    return f"{x:.2%}" if key.startswith("accuracy") else f"{x:.4g}"


def check(claim: Claim, row: dict[str, Any], published: dict[str, Any] | None) -> dict[str, Any]:
    """One row of the report: the claim, what was measured, and whether it holds."""
    measured = lookup(row, claim.key)
    out = {
        "recipe": claim.recipe,
        "kind": claim.kind,
        "figure": claim.figure,
        "key": claim.key,
        "measured": measured,
        "measured_text": _fmt(claim.key, measured),
    }
    if claim.kind == "floor":
        assert claim.value is not None
        ok = measured >= claim.value - 1e-12
        out.update(stated=f">= {_fmt(claim.key, claim.value)}", tolerance="-", value=claim.value)
    elif claim.kind == "published":
        if published is None:
            raise ValueError(f"{claim.recipe}: a published claim needs the published row")
        value = lookup(published, claim.key)
        tol = claim.abs_tol + claim.rel_tol * abs(value)
        ok = math.isfinite(measured) and abs(measured - value) <= tol + 1e-12
        tol_text = (
            (f"+-{claim.abs_tol * 100:.1f} pt" if claim.key.startswith("accuracy") else f"+-{claim.abs_tol:g}")
            if claim.abs_tol
            else f"+-{claim.rel_tol:.0%}"
        )
        out.update(stated=_fmt(claim.key, value), tolerance=tol_text, value=value)
    elif claim.kind in ("baseline", "compare"):
        value = lookup(row, claim.baseline)
        beats = measured < value if claim.lower_is_better else measured > value
        out["beats"] = bool(beats)
        ok = beats or claim.kind == "compare"
        out.update(
            stated=f"{'<' if claim.lower_is_better else '>'} {_fmt(claim.key, value)} "
            f"({claim.baseline.split('.')[0].replace('_', ' ')})",
            tolerance="-",
            value=value,
        )
    else:
        raise ValueError(f"unknown claim kind {claim.kind!r}")
    out["ok"] = bool(ok)
    return out


def verdict(c: dict[str, Any]) -> str:
    """What the report's last column says: ok / FAIL, and for a comparison whether the baseline is beaten."""
    if c["kind"] == "compare":
        return "beaten" if c["beats"] else "not beaten (reported, not claimed)"
    return "ok" if c["ok"] else "FAIL"


def measure(recipe: str, seeds: list[int], threads: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Train ``recipe`` as its publishing benchmark did; the benchmark's row for it."""
    ns = argparse.Namespace(data_dir=args.data_dir, overrides=[], threads=threads, max_time=None)
    if SOURCE[recipe] == "classify":
        return classify.run_recipe(recipe, seeds, ns, root)
    return forecast.run_recipe(recipe, seeds, ns, root)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="*", help=f"recipes to check (default with --quick: {', '.join(QUICK)})")
    ap.add_argument("--quick", action="store_true", help="every recipe that trains in under ~3 minutes")
    ap.add_argument("--data-dir", help="a folder laid out like the data cache (default: rnnkit's registry)")
    ap.add_argument("--seeds", help="train.seed values (default: the published file's)")
    ap.add_argument("--out-root", help="parent of the run directories (default: runs/reproduce-TIMESTAMP)")
    ap.add_argument("--json-out", help="default: benchmarks/results/reproduce-quick.json with --quick, else none")
    ap.add_argument("--full", action="store_true", help="every figure whose run fits in --max-minutes")
    ap.add_argument("--figure", action="append", default=[], metavar="NAME", help="re-measure benchmarks/results/NAME")
    ap.add_argument("--max-minutes", type=float, default=60.0, help="--full: longest run to include (%(default)s)")
    ap.add_argument("--publish", action="store_true", help="--figure: the new measurement replaces the published file")
    ap.add_argument("--keras-python", help="the interpreter with TensorFlow/Keras for peer_keras.py (its own venv)")
    ap.add_argument("--list", action="store_true", help="list every result file, its command and minutes; run nothing")
    args = ap.parse_args()
    if args.list:
        return list_figures()
    if args.full or args.figure:
        if args.recipes or args.quick:
            ap.error("--full/--figure re-measure result files; --quick and recipe names check the quick recipes")
        if args.publish and args.full:
            ap.error("--publish replaces published files one --figure at a time, not with --full")
        return full(args)
    recipes = list(args.recipes) or (list(QUICK) if args.quick else [])
    if not recipes:
        ap.error("name recipes or pass --quick")
    unknown = [r for r in recipes if r not in SOURCE]
    if unknown:
        ap.error(f"no claims for {', '.join(unknown)}; known: {', '.join(SOURCE)}")
    root = Path(args.out_root or f"runs/reproduce-{time.strftime('%Y%m%d-%H%M%S')}")
    published = {r: published_row(r) for r in recipes}
    seeds_of = {r: [int(s) for s in args.seeds.split(",")] if args.seeds else published[r][1]["seeds"] for r in recipes}
    threads_of = {r: published[r][1]["machine"]["threads"] or 1 for r in recipes}
    prov = Provenance.start(
        seeds=sorted({s for v in seeds_of.values() for s in v}),
        data_dir=args.data_dir,
        threads=max(threads_of.values()),
    )
    checks, walls = [], {}
    for recipe in recipes:
        t0 = time.time()
        row = measure(recipe, seeds_of[recipe], threads_of[recipe], args, root)
        walls[recipe] = round(time.time() - t0, 1)
        for claim in (c for c in CLAIMS if c.recipe == recipe):
            checks.append(check(claim, row, published[recipe][0]))
            c = checks[-1]
            print(
                f"  {recipe}: {c['figure']}: {c['measured_text']} (stated {c['stated']}) {verdict(c)}",
                file=sys.stderr,
                flush=True,
            )
    failed = sum(not c["ok"] for c in checks)
    width = max(len(c["figure"]) for c in checks)
    print(f"{'recipe':<13} {'figure':<{width}} {'stated':>22} {'tolerance':>10} {'measured':>9}  result")
    for c in checks:
        print(
            f"{c['recipe']:<13} {c['figure']:<{width}} {c['stated']:>22} {c['tolerance']:>10} "
            f"{c['measured_text']:>9}  {verdict(c)}"
        )
    print(f"{len(checks)} checks, {failed} outside tolerance; wall {sum(walls.values()) / 60:.1f} min")
    result = {
        "recipes": recipes,
        "seeds": seeds_of,
        "checks": checks,
        "passed": failed == 0,
        "failed": failed,
        "wall_s_by_recipe": walls,
    }
    json_out = args.json_out or (RESULTS / "reproduce-quick.json" if args.quick and not args.recipes else None)
    if json_out:
        path = write_result(json_out, "reproduce", result, prov)
        print(f"result: {path}", file=sys.stderr)
    return 1 if failed else 0


def stems_published(results: Path = RESULTS) -> list[str]:
    """Every result file that holds figures (the reproduction reports themselves excepted)."""
    return sorted(p.stem for p in results.glob("*.json") if not p.stem.startswith("reproduce-"))


def list_figures() -> int:
    for stem in stems_published():
        doc = read_result(RESULTS / f"{stem}.json")
        run = _figures.rerun(stem, doc)
        if run is None:
            print(f"{stem:<36} {'-':>6}  no benchmark measures it again (transcribed or hand-made)")
        else:
            minutes = f"{run.minutes:g}" if run.minutes is not None else "?"
            print(f"{stem:<36} {minutes:>6}  {run.command()}")
    return 0


def remeasure(stem: str, args: argparse.Namespace, scratch: Path) -> tuple[str, list[dict[str, Any]], float]:
    """Measure one result file again: (status, comparison rows, wall s). Status 'measured' or why not."""
    try:
        old = read_result(RESULTS / f"{stem}.json")
    except ResultError as e:
        return f"unreadable: {e}", [], 0.0
    run = _figures.rerun(stem, old)
    if run is None:
        return "not re-measurable: no benchmark writes it (transcribed or hand-made)", [], 0.0
    python = sys.executable
    if run.needs == "keras":
        if not args.keras_python:
            return "skipped: needs --keras-python (TensorFlow's own venv; see peer_keras.py)", [], 0.0
        python = args.keras_python
    json_out = RESULTS / f"{stem}.json" if args.publish else scratch / stem / "result.json"
    argv = _figures.relocate(run.argv, scratch / stem, json_out, args.data_dir)
    print(f"== {stem} (~{run.minutes if run.minutes is not None else '?'} min): {' '.join(argv)}", file=sys.stderr)
    t0 = time.time()
    proc = subprocess.run([python, *argv], cwd=_figures.REPO, env=_figures.child_env(run))
    wall = time.time() - t0
    if proc.returncode != 0 and not json_out.is_file():
        return f"failed: exit {proc.returncode}", [], wall
    new = read_result(json_out)
    rows = _figures.compare(old, new)
    if not rows:
        return "measured; the stored file has no headline figures to compare", [], wall
    return "measured", rows, wall


def full(args: argparse.Namespace) -> int:
    """--full / --figure: re-measure result files and compare their headline figures; one table."""
    names = args.figure or stems_published()
    unknown = [n for n in names if not (RESULTS / f"{n}.json").is_file()]
    if unknown:
        raise SystemExit(f"reproduce: no result file benchmarks/results/{unknown[0]}.json")
    scratch = Path(args.out_root or tempfile.mkdtemp(prefix="rnnkit-reproduce-"))
    prov = Provenance.start(data_dir=args.data_dir)
    checks: list[dict[str, Any]] = []
    walls: dict[str, float] = {}
    notes: dict[str, str] = {}
    for stem in names:
        doc = read_result(RESULTS / f"{stem}.json")
        run = _figures.rerun(stem, doc)
        if args.full and run is not None and not _figures.headlines(doc):
            notes[stem] = "not compared: transcribed figures (re-measure with --figure NAME --publish)"
            continue
        if args.full and run is not None and (run.minutes is None or run.minutes > args.max_minutes):
            notes[stem] = f"skipped: its run takes {run.minutes or '?'} min (> --max-minutes {args.max_minutes:g})"
            continue
        status, rows, wall = remeasure(stem, args, scratch)
        walls[stem] = round(wall, 1)
        if status != "measured" or not rows:
            notes[stem] = status
        for row in rows:
            checks.append(
                {
                    "recipe": stem,
                    "kind": "published",
                    "figure": row["figure"],
                    "stated": row["stored_text"],
                    "tolerance": row["tolerance"],
                    "measured": row["measured"],
                    "measured_text": row["measured_text"],
                    "value": row["stored"],
                    "ok": row["ok"],
                }
            )
    failed = sum(not c["ok"] for c in checks) + sum(v.startswith("failed") for v in notes.values())
    width = max([len(c["figure"]) for c in checks] + [6])
    print(f"{'result file':<34} {'figure':<{width}} {'stored':>10} {'tolerance':>10} {'measured':>10}  result")
    for c in checks:
        print(
            f"{c['recipe']:<34} {c['figure']:<{width}} {c['stated']:>10} {c['tolerance']:>10} "
            f"{c['measured_text']:>10}  {'ok' if c['ok'] else 'FAIL'}"
        )
    for stem, why in notes.items():
        print(f"{stem:<34} {why}")
    print(f"{len(checks)} figures compared, {failed} outside tolerance or failed; {len(notes)} files not compared")
    if args.json_out:
        result = {
            "recipes": list(walls),
            "seeds": {},
            "checks": checks,
            "passed": failed == 0,
            "failed": failed,
            "wall_s_by_recipe": walls,
            "not_compared": notes,
            "max_minutes": args.max_minutes if args.full else None,
        }
        write_result(args.json_out, "reproduce", result, prov)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
