"""The figures of the prediction verbs: a forecast with its interval, a translation's attention weights.

Drawn through ``rnnkit.figures`` (a Figure on the Agg canvas), so a notebook's or a program's matplotlib
backend and pyplot state are never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.figures import figure, save_png


def plot_forecast(
    hist_times: list[str],
    history: Any,
    out_times: list[str],
    fc: dict[str, Any],
    truth: Any,
    columns: list[str],
    path: str | Path,
    level: float,
    title: str = "",
    flag: str = "plot=...",
) -> Path:
    """History (the last few hundred points), forecast, interval band and the truth where known."""
    horizon = len(out_times)
    show = min(len(hist_times), max(5 * horizon, 120))
    hx = np.arange(-show, 0)
    fx = np.arange(horizon)
    k = len(columns)
    fig = figure((10, 3.2 * k))
    axes = fig.subplots(k, 1, squeeze=False)
    for j, ax in enumerate(axes[:, 0]):
        ax.plot(hx, history[-show:, j], color="C0", lw=1, label="history")
        if truth is not None:
            ax.plot(
                np.concatenate([[-1], fx]),
                np.concatenate([history[-1:, j], truth[:, j]]),
                color="k",
                lw=1,
                ls="--",
                label="truth",
            )
        ax.plot(
            np.concatenate([[-1], fx]),
            np.concatenate([history[-1:, j], fc["mean"][:, j]]),
            color="C3",
            lw=1.5,
            label="forecast",
        )
        ax.fill_between(fx, fc["lower"][:, j], fc["upper"][:, j], color="C3", alpha=0.2, label=f"{level:.0%} interval")
        labels = list(hist_times[-show:]) + list(out_times)
        xs = np.concatenate([hx, fx])
        ticks = np.linspace(0, len(xs) - 1, num=min(8, len(xs))).astype(int)
        ax.set_xticks(xs[ticks])
        ax.set_xticklabels([labels[i] for i in ticks], rotation=20, fontsize=8)
        ax.set_ylabel(columns[j])
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, path, dpi=90, flag=flag)


def plot_attention(
    weights: Any,
    source: list[str],
    target: list[str],
    path: str | Path,
    src_text: str = "",
    tgt_text: str = "",
    flag: str = "path=...",
) -> Path:
    """Heatmap of attention weights: one row per output word, one column per input word."""
    w = weights.float().numpy() if hasattr(weights, "numpy") else np.asarray(weights)
    fig = figure((max(3.0, 0.6 * len(source) + 2), max(2.5, 0.5 * len(target) + 1.5)))
    ax = fig.subplots()
    im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), source, rotation=45, ha="right")
    ax.set_yticks(range(len(target)), target)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if src_text:
        ax.set_title(f"{src_text} -> {tgt_text}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return save_png(fig, path, dpi=120, flag=flag)
