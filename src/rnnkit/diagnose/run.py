"""Diagnosing a trained run from its learning curves: high bias, high variance, or converged.

The curves are read from ``RUN/metrics.jsonl``: training records (mean training loss per log window) and
validation records. The verdict is the one a practitioner reads off the curves:

* **high variance** (overfitting): the gap between validation and training loss is wide and grew during training,
  or the validation loss turned back up from its best while the training loss kept falling. More data,
  regularisation (dropout, weight decay, noising) or early stopping help.
* **high bias** (underfitting): the training loss hardly fell, is still above a target you give, or was still
  falling steeply when training stopped. A bigger model, a better learning rate or longer training help.
* **converged**: the training loss fell and levelled off, and validation follows it.

``data_size_curve`` trains copies of a run's configuration on growing fractions of its training set (tasks whose
data section has ``train_fraction``) and plots the final training and validation losses against the data size:
a validation loss still falling at the full size says more data would help.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from rnnkit.errors import UserError

GAP_TOL = 0.10  # a gap (valid - train loss) wider than this share of the validation loss is "wide"
RISE_TOL = 0.02  # validation loss this far (relative) above its best counts as "turned up"
MIN_DROP = 0.25  # a training loss that fell less than this share of its start "hardly fell"
STILL_FALLING = 0.05  # relative fall of the training loss over the last quarter that means "still learning"


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def curves(records: list[dict[str, Any]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, training loss) per log window and (step, validation loss) per validation."""

    def ok(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    train = [
        (int(r["step"]), float(r["loss"])) for r in records if "split" not in r and ok(r.get("loss")) and "step" in r
    ]
    valid = [(int(r["step"]), float(r["loss"])) for r in records if r.get("split") == "valid" and ok(r.get("loss"))]
    return train, valid


def _train_near(train: list[tuple[int, float]], lo: int, hi: int) -> float | None:
    """Mean training loss of the windows ending in (lo, hi]; else the last window ending at or before hi."""
    inside = [loss for s, loss in train if lo < s <= hi]
    if inside:
        return _mean(inside)
    before = [loss for s, loss in train if s <= hi]
    return before[-1] if before else None


def diagnose_records(
    records: list[dict[str, Any]], target_loss: float | None = None, gap_tol: float = GAP_TOL
) -> dict[str, Any]:
    """The verdict and the figures behind it, as plain data."""
    train, valid = curves(records)
    if len(train) < 2:
        raise UserError(
            f"too few training records to diagnose ({len(train)}; need 2+): train longer or lower train.log_every"
        )
    losses = [loss for _, loss in train]
    n = len(losses)
    k = max(1, n // 10)
    q = max(1, n // 4)
    first, last = losses[0], _mean(losses[-k:])
    drop = (first - last) / abs(first) if first else 0.0
    prev = _mean(losses[-2 * q : -q]) if n >= 2 * q + 1 else first
    trend = (prev - _mean(losses[-q:])) / abs(prev) if prev else 0.0
    out: dict[str, Any] = {
        "train_loss_first": first,
        "train_loss_final": last,
        "train_drop": drop,
        "train_trend_last_quarter": trend,
        "train_records": n,
        "valid_records": len(valid),
        "steps": train[-1][0],
    }
    gaps: list[tuple[int, float, float, float]] = []  # (step, valid, train, gap)
    prev_step = 0
    for step, v in valid:
        t = _train_near(train, prev_step, step)
        prev_step = step
        if t is not None:
            gaps.append((step, v, t, v - t))
    if gaps:
        best = min(gaps, key=lambda g: g[1])
        end = gaps[-1]
        out.update(
            {
                "valid_loss_final": end[1],
                "valid_loss_best": best[1],
                "valid_best_step": best[0],
                "gap_first": gaps[0][3],
                "gap_final": end[3],
                "gap_max": max(g[3] for g in gaps),
                "gaps": [{"step": s, "valid": v, "train": t, "gap": g} for s, v, t, g in gaps],
            }
        )
    reasons: list[str] = []
    verdict = ""
    if len(gaps) >= 2:
        end, best = gaps[-1], min(gaps, key=lambda g: g[1])
        scale = max(abs(end[1]), 1e-12)
        wide = end[3] > gap_tol * scale
        grew = end[3] - gaps[0][3] > 0.5 * gap_tol * scale
        turned_up = end[1] > best[1] * (1 + RISE_TOL) + 1e-3 and end[2] < best[2]
        if (wide and grew) or turned_up:
            verdict = "high_variance"
            if wide and grew:
                reasons.append(
                    f"the validation-training gap grew from {gaps[0][3]:.3g} to {end[3]:.3g} "
                    f"({end[3] / scale:.0%} of the validation loss {end[1]:.4g})"
                )
            if turned_up:
                reasons.append(
                    f"validation loss rose from its best {best[1]:.4g} (step {best[0]}) to {end[1]:.4g} "
                    f"while training loss fell from {best[2]:.4g} to {end[2]:.4g}"
                )
    if not verdict:
        if target_loss is not None and last > target_loss:
            verdict = "high_bias"
            reasons.append(f"training loss {last:.4g} is above the target {target_loss:.4g}")
        elif drop < MIN_DROP:
            verdict = "high_bias"
            reasons.append(f"training loss hardly fell: {first:.4g} -> {last:.4g} ({drop:.0%})")
        elif trend > STILL_FALLING:
            verdict = "high_bias"
            reasons.append(
                f"training loss was still falling when training stopped ({trend:.0%} over the last "
                f"quarter of records; {first:.4g} -> {last:.4g})"
            )
        else:
            verdict = "converged"
            reasons.append(
                f"training loss fell {first:.4g} -> {last:.4g} ({drop:.0%}) and levelled off "
                f"({trend:.1%} over the last quarter)"
            )
            if gaps:
                reasons.append(f"validation loss {gaps[-1][1]:.4g} follows it (gap {gaps[-1][3]:.3g})")
    advice = {
        "high_variance": "more data, more regularisation (model.dropout, optim.weight_decay, data.word_dropout), "
        "a smaller model or early stopping (train.early_stop)",
        "high_bias": "a bigger model, a better learning rate, or train longer",
        "converged": "the model fits as well as it can at this size; try a bigger one if the loss is too high",
    }[verdict]
    out.update({"verdict": verdict, "reasons": reasons, "advice": advice})
    return out


def plot_diagnosis(records: list[dict[str, Any]], diagnosis: dict[str, Any], path: Path, title: str = "") -> None:
    """Training vs validation loss by step, and the gap between them."""
    from rnnkit.figures import figure, save_png

    train, valid = curves(records)
    fig = figure((11, 4))
    axes = fig.subplots(1, 2)
    ax = axes[0]
    ax.plot(*zip(*train), lw=1, label="train (per log window)")
    if valid:
        ax.plot(*zip(*valid), "o-", ms=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    ax = axes[1]
    gaps = diagnosis.get("gaps") or []
    if gaps:
        ax.plot([g["step"] for g in gaps], [g["gap"] for g in gaps], "o-", ms=3, color="C3")
        ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("validation - training loss")
    ax.grid(alpha=0.3)
    fig.suptitle(
        f"{title}: {diagnosis['verdict'].replace('_', ' ')}" if title else diagnosis["verdict"].replace("_", " ")
    )
    fig.tight_layout()
    save_png(fig, path, dpi=90, flag="plot=...")


def diagnose_run(
    run_path: str | Path, plot: str | Path | None = None, target_loss: float | None = None, gap_tol: float = GAP_TOL
) -> dict[str, Any]:
    from rnnkit.train.rundir import RunDir

    run = RunDir(Path(run_path)).require()
    records = run.read_metrics()
    if not records:
        raise UserError(f"{run.path}: metrics.jsonl is missing or empty; nothing to diagnose")
    try:
        d = diagnose_records(records, target_loss, gap_tol)
    except UserError as e:
        raise UserError(f"{run.path}: {e}") from None
    png = Path(plot) if plot else run.path / "diagnosis.png"
    plot_diagnosis(records, d, png, title=run.path.name)
    return {"run": str(run.path), "plot": str(png), **d}


def format_diagnosis(d: dict[str, Any]) -> str:
    lines = [f"{d['run']}: {d['verdict'].replace('_', ' ')}"]
    lines += [f"  - {r}" for r in d["reasons"]]
    figures = [f"train loss {d['train_loss_first']:.4g} -> {d['train_loss_final']:.4g}"]
    if "valid_loss_final" in d:
        figures.append(
            f"valid loss {d['valid_loss_final']:.4g} (best {d['valid_loss_best']:.4g} at step {d['valid_best_step']})"
        )
        figures.append(f"gap {d['gap_first']:.3g} -> {d['gap_final']:.3g}")
    lines.append("  " + "; ".join(figures) + f"; {d['steps']} steps")
    lines.append(f"  try: {d['advice']}")
    lines.append(f"plot: {d['plot']}")
    return "\n".join(lines)


# -- learning curve by training-set size ------------------------------------------------------------------------
def parse_fractions(text: str) -> list[float]:
    try:
        fracs = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(
            f"fractions=...: expected comma-separated fractions such as 0.25,0.5,1.0, got {text!r}"
        ) from None
    if not fracs:
        raise UserError(f"fractions=...: no fractions given ({text!r}); give some such as 0.25,0.5,1.0")
    if any(not 0 < f <= 1 for f in fracs):
        raise UserError(f"fractions=...: fractions must lie in (0, 1], got {text!r}")
    return sorted(set(fracs))


def data_size_curve(
    run_path: str | Path,
    fractions: list[float],
    overrides: dict[str, Any] | None = None,
    data_dir: str | None = None,
    plot: str | Path | None = None,
    echo: Any = None,
) -> dict[str, Any]:
    """Train the run's configuration on each fraction of its training set; final losses against data size.

    Copies go to ``RUN/data-sizes/fFRACTION/`` (ordinary run directories); one whose configuration is unchanged and
    that finished is reused, so running the command again only trains what is missing.
    """
    from rnnkit.runs import run_data_dir
    from rnnkit.runs.setup import TrainRequest, train_run
    from rnnkit.train.rundir import RunDir

    run = RunDir(Path(run_path)).require()
    base = run.read_config(overrides or {})
    if not hasattr(base.data, "train_fraction"):
        raise UserError(
            f"{run.path}: task {base.task!r} has no data.train_fraction, which fractions=... needs (the lm task has it)"
        )
    full = float(base.data.train_fraction)
    ddir = run_data_dir(run, data_dir)
    results = []
    cache_file = run.path / "data-sizes" / "results.json"
    cache: dict[str, Any] = {}
    if cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text())
        except json.JSONDecodeError:
            cache = {}
    for f in fractions:
        config = run.read_config({**(overrides or {}), "data.train_fraction": full * f})
        copy = RunDir(run.path / "data-sizes" / f"f{f:g}")
        key = hashlib.sha256(config.to_toml().encode()).hexdigest()[:16]
        hit = cache.get(f"{f:g}")
        if hit and hit.get("config") == key and copy.metrics_file.is_file():
            records = copy.read_metrics()
        else:
            if copy.path.exists():
                import shutil

                shutil.rmtree(copy.path)
            # the run's configuration at this fraction, through the one run set-up
            train_run(
                TrainRequest(
                    recipe=config,
                    out=copy.path,
                    data_dir=ddir,
                    progress=False,
                    meta={"data_size_of": str(run.path.resolve()), "train_fraction": full * f},
                )
            )
            records = copy.read_metrics()
            cache[f"{f:g}"] = {"config": key}
            cache_file.write_text(json.dumps(cache, indent=1) + "\n")
        train, valid = curves(records)
        if not train or not valid:
            raise UserError(f"{copy.path}: no training or validation records (budget too small?)")
        k = max(1, len(train) // 10)
        row = {
            "fraction": f,
            "train_fraction": full * f,
            "run": str(copy.path),
            "train_loss": _mean([loss for _, loss in train[-k:]]),
            "valid_loss": valid[-1][1],
            "valid_loss_best": min(v for _, v in valid),
            "steps": train[-1][0],
        }
        results.append(row)
        if echo:
            echo(
                f"fraction {f:g}: train loss {row['train_loss']:.4g}  valid loss {row['valid_loss']:.4g}  "
                f"({row['steps']} steps)"
            )
    verdict, reason = _data_verdict(results)
    png = Path(plot) if plot else run.path / "data-sizes.png"
    _plot_sizes(results, png, run.path.name, verdict)
    return {"run": str(run.path), "plot": str(png), "sizes": results, "verdict": verdict, "reason": reason}


def _data_verdict(rows: list[dict[str, Any]]) -> tuple[str, str]:
    if len(rows) < 2:
        return "unknown", "need two or more sizes to compare"
    a, b = rows[-2], rows[-1]
    fall = (a["valid_loss"] - b["valid_loss"]) / max(abs(a["valid_loss"]), 1e-12)
    gap = b["valid_loss"] - b["train_loss"]
    if fall > 0.01:
        return "more_data_helps", (
            f"validation loss still falls with more data ({a['valid_loss']:.4g} at "
            f"{a['fraction']:g} -> {b['valid_loss']:.4g} at {b['fraction']:g}); gap "
            f"{gap:.3g}: high variance, more data would help"
        )
    return "more_data_does_not_help", (
        f"validation loss levels off ({a['valid_loss']:.4g} -> {b['valid_loss']:.4g}) "
        f"with gap {gap:.3g}: more data alone will not help; if both losses are "
        f"high the model has high bias"
    )


def _plot_sizes(rows: list[dict[str, Any]], path: Path, title: str, verdict: str) -> None:
    from matplotlib.ticker import NullFormatter

    from rnnkit.figures import figure, save_png

    fig = figure((6, 4))
    ax = fig.subplots()
    xs = [r["fraction"] for r in rows]
    ax.plot(xs, [r["train_loss"] for r in rows], "o-", label="train (final)")
    ax.plot(xs, [r["valid_loss"] for r in rows], "o-", label="validation (final)")
    ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{x:g}" for x in xs])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("fraction of the training set")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{title}: {verdict.replace('_', ' ')}")
    fig.tight_layout()
    save_png(fig, path, dpi=90, flag="plot=...")


def format_sizes(d: dict[str, Any]) -> str:
    lines = [f"{'fraction':>8}  {'train loss':>10}  {'valid loss':>10}  {'steps':>6}"]
    for r in d["sizes"]:
        lines.append(f"{r['fraction']:>8g}  {r['train_loss']:>10.4g}  {r['valid_loss']:>10.4g}  {r['steps']:>6}")
    lines.append(f"{d['verdict'].replace('_', ' ')}: {d['reason']}")
    lines.append(f"plot: {d['plot']}")
    return "\n".join(lines)
