"""A run directory: everything one training run produced, in files other tools can read.

    RUN/config.toml           the resolved configuration (recipe + overrides)
    RUN/run.json              how it was started: data dir, device, rnnkit/torch versions, command line
    RUN/metrics.jsonl         one JSON object per line: training records and evaluation records
    RUN/checkpoints/last.pt   latest state, for exact resume
    RUN/checkpoints/best.pt   best validation metric so far
    RUN/tensorboard/          event files
    RUN/curves.png            learning curves
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rnnkit.config import RunConfig
from rnnkit.errors import UserError
from rnnkit.tasks.recipes import read_config


def _clean(v: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line stays parseable by strict readers."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    config_file = property(lambda self: self.path / "config.toml")
    meta_file = property(lambda self: self.path / "run.json")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints")
    last = property(lambda self: self.path / "checkpoints" / "last.pt")
    best = property(lambda self: self.path / "checkpoints" / "best.pt")
    tensorboard = property(lambda self: self.path / "tensorboard")
    curves = property(lambda self: self.path / "curves.png")

    def exists(self) -> bool:
        return self.config_file.is_file()

    def require(self) -> RunDir:
        if not self.path.is_dir():
            raise UserError(f"{self.path}: run directory not found")
        if not self.exists():
            raise UserError(f"{self.path}: not a run directory (no config.toml)")
        return self

    def write_config(self, config: RunConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(config.to_toml())

    def read_config(self, overrides: dict[str, Any] | None = None) -> RunConfig:
        return read_config(self.config_file, overrides)

    def write_meta(self, meta: dict[str, Any]) -> None:
        self.meta_file.write_text(json.dumps(meta, indent=2) + "\n")

    def read_meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.meta_file.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_file, "a") as f:
            f.write(json.dumps(_clean(record)) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.is_file():
            return []
        out = []
        for line in self.metrics_file.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        return out

    def truncate_metrics(self, step: int) -> None:
        """Drop records after ``step``: on resume they describe work the checkpoint does not contain."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        tmp = self.metrics_file.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        tmp.replace(self.metrics_file)
