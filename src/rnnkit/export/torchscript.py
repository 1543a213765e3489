"""TorchScript files of the export graphs (``torch.jit.trace``), loadable from C++ (libtorch) or Python without
rnnkit, checked against the eager module."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from rnnkit.export.graphs import Graph


def write(graph: Graph, path: Path) -> None:
    """Trace ``graph`` with its example inputs and save it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python values turned into constants
        traced = torch.jit.trace(graph.module, graph.example, check_trace=False)
        torch.jit.save(traced, str(path))


def check(graph: Graph, path: Path) -> float:
    """Largest absolute difference between the saved module's and the eager module's outputs on the check inputs."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path))
        got = loaded(*graph.check)
        want = graph.module(*graph.check)
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    return max(float((a.double() - w.double()).abs().max()) if w.numel() else 0.0 for a, w in zip(got, want))
