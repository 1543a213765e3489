"""What a study found: the best trial and its configuration, a table of every trial, and plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rnnkit.errors import UserError
from rnnkit.tune.study import _safe_url, cut_trials, import_optuna, open_storage, study_summary


def open_study(target: str, study_name: str | None = None) -> tuple[Any, Path | None]:
    """A study from a directory (its ``study.db``) or a database URL; returns (study, the directory or None)."""
    optuna = import_optuna()
    if "://" in target:
        url, directory = target, None
    else:
        directory = Path(target)
        db = directory / "study.db"
        if not directory.is_dir():
            raise UserError(f"{target}: study directory not found")
        if not db.is_file():
            raise UserError(
                f"{target}: not a study directory (no study.db); give a study directory (tune's out=...) or a "
                f"database URL"
            )
        url = f"sqlite:///{db.resolve()}"
    storage = open_storage(url)
    names = optuna.get_all_study_names(storage)
    if study_name is None:
        if len(names) != 1:
            raise UserError(
                f"{_safe_url(url)} holds {len(names)} studies"
                + (f" ({', '.join(sorted(names))}); choose one (study=...)" if names else "")
            )
        study_name = names[0]
    elif study_name not in names:
        raise UserError(
            f"{_safe_url(url)}: no study named {study_name!r}"
            + (f" (it has: {', '.join(sorted(names))})" if names else "")
        )
    return optuna.load_study(study_name=study_name, storage=storage), directory


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return "-" if v is None else str(v)


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    trials = study.get_trials(deepcopy=False)
    cut = cut_trials(trials)
    for t in trials:
        if t.user_attrs.get("surplus"):  # a slot given back at once (see rnnkit.tune.study): nothing ran
            continue
        dur = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        steps = sorted(t.intermediate_values)
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "last_step": steps[-1] if steps else t.user_attrs.get("step"),
                "duration_s": round(dur, 1) if dur is not None else None,
                "params": dict(t.params),
                "run_dir": t.user_attrs.get("run_dir"),
                "worker": t.user_attrs.get("worker"),
                **({"error": t.user_attrs["error"]} if "error" in t.user_attrs else {}),
                **({"baseline": True} if t.user_attrs.get("baseline") else {}),
                **({"retry_of": t.user_attrs["retry_of"]} if "retry_of" in t.user_attrs else {}),
                **({"retried_as": cut[t.number]} if t.number in cut else {}),
            }
        )
    return rows


def _note(row: dict[str, Any]) -> str:
    notes = []
    if row.get("baseline"):
        notes.append("recipe default")
    if "retry_of" in row:
        notes.append(f"rerun of {row['retry_of']}")
    if "retried_as" in row:
        notes.append(f"cut short; rerun as {row['retried_as']}")
    if row.get("error"):
        err = row["error"]
        notes.append(err if len(err) <= 60 else err[:57] + "...")
    return "; ".join(notes)


def format_table(rows: list[dict[str, Any]], metric: str) -> str:
    names = sorted({k for r in rows for k in r["params"]})
    head = ["trial", "state", metric or "value", "step", "s"] + names + ["note"]
    body = [
        [str(r["number"]), r["state"], _fmt(r["value"]), _fmt(r["last_step"]), _fmt(r["duration_s"])]
        + [_fmt(r["params"].get(n)) for n in names]
        + [_note(r)]
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(line.rstrip() for line in lines)


def write_plots(study: Any, directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Optimisation history, parameter importances, parallel coordinates and slices (those that can be drawn).

    Returns ({name: path} of the PNGs written, {name: why not} of those skipped: too few complete trials).
    """
    import warnings

    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    from rnnkit.figures import pyplot_figures, save_png

    directory.mkdir(parents=True, exist_ok=True)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    varied = {k for k in {k for t in complete for k in t.params} if len({repr(t.params.get(k)) for t in complete}) > 1}
    plots: dict[str, Any] = {
        "history": (ovm.plot_optimization_history, 1),
        "importances": (ovm.plot_param_importances, 2),
        "parallel": (ovm.plot_parallel_coordinate, 2),
        "slice": (ovm.plot_slice, 1),
    }
    written: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, (fn, need) in plots.items():
        if len(complete) < need or (name != "history" and not varied):
            skipped[name] = (
                f"needs {need}+ complete trials"
                if len(complete) < need
                else "needs a parameter that varies across complete trials"
            )
            continue
        path = directory / f"tune-{name}.png"
        try:
            # Optuna draws through pyplot: the user's backend stays, and its figures are closed afterwards
            with warnings.catch_warnings(), pyplot_figures():
                warnings.simplefilter("ignore")
                ax = fn(study)
                first = ax.flat[0] if hasattr(ax, "flat") else ax
                fig = first.figure
                fig.set_size_inches(max(fig.get_size_inches()[0], 8), max(fig.get_size_inches()[1], 5))
                fig.tight_layout()
                save_png(fig, path, dpi=90)
            written[name] = str(path)
        except Exception as e:  # noqa: BLE001 - report what could be drawn
            skipped[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return written, skipped


def report(
    target: str, study_name: str | None = None, plots_dir: str | None = None, plots: bool = True
) -> dict[str, Any]:
    study, directory = open_study(target, study_name)
    out = study_summary(study)
    out["study"] = study.study_name
    rows = trial_rows(study)
    out["trials"] = rows
    best_run = out.get("best_run")
    if best_run and (Path(best_run) / "config.toml").is_file():
        out["best_config"] = str(Path(best_run) / "config.toml")
    if plots:
        where = (
            Path(plots_dir)
            if plots_dir
            else (directory if directory is not None else Path(f"tune-report-{study.study_name}"))
        )
        out["plots"], out["plots_skipped"] = write_plots(study, where)
    return out


def format_report(rep: dict[str, Any]) -> str:
    metric = rep.get("metric") or "value"
    lines = [
        f"study {rep['study']} ({rep.get('recipe')}, {rep['direction']} {metric}): {rep['n_trials']} complete, "
        f"{rep['n_pruned']} pruned, {rep['n_failed']} failed"
        + (f", {rep['n_retried']} cut short and rerun" if rep.get("n_retried") else "")
        + (f", {rep['n_running']} running" if rep["n_running"] else "")
        + (f", {rep['n_waiting']} queued" if rep["n_waiting"] else "")
    ]
    if rep["best_trial"] is not None:
        params = " ".join(f"{k}={_fmt(v)}" for k, v in rep["best_params"].items())
        lines.append(f"best: trial {rep['best_trial']}  {metric} {_fmt(rep['best_value'])}  {params}")
        if rep.get("best_run"):
            lines.append(
                f"best run: {rep['best_run']}" + (f"  (config: {rep['best_config']})" if rep.get("best_config") else "")
            )
    else:
        lines.append("best: no complete trial yet")
    lines.append("")
    lines.append(format_table(rep["trials"], metric))
    if rep.get("plots"):
        lines.append("")
        lines.append("plots: " + "  ".join(rep["plots"].values()))
    if rep.get("plots_skipped"):
        lines.append("not drawn: " + "; ".join(f"{k} ({v})" for k, v in rep["plots_skipped"].items()))
    return "\n".join(lines)
