"""Learning-curve PNGs from metrics.jsonl (drawn through rnnkit.figures: no global matplotlib state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.figures import figure, save_png


def plot_curves(records: list[dict[str, Any]], path: Path, metric: str, title: str = "") -> None:
    """Training loss by step and validation loss/metric by step, side by side."""
    train = [r for r in records if "split" not in r and r.get("loss") is not None]
    valid = [r for r in records if r.get("split") == "valid" and r.get("loss") is not None]
    fig = figure((10, 4))
    axes = fig.subplots(1, 2)
    ax = axes[0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train", lw=1)
    if valid:
        ax.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", label="valid")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if train or valid:
        ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[1]
    vals = [(r["step"], r[metric]) for r in valid if isinstance(r.get(metric), (int, float))]
    if vals:
        ax.plot(*zip(*vals), "o-", color="C1")
        if metric == "ppl":
            ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"valid {metric}")
    ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path, dpi=90)
