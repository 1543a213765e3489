"""ONNX files of the export graphs, checked against PyTorch with onnxruntime.

Written with PyTorch's TorchScript-based exporter (``dynamo=False``): it handles the fused LSTM/GRU/RNN modules
with dynamic sequence and batch axes and needs no extra package, where the newer dynamo exporter requires
onnxscript. Opset 17 runs on every onnxruntime of the last years.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from rnnkit.export.graphs import Graph

OPSET = 17


def write(graph: Graph, path: Path) -> None:
    """Export ``graph`` (traced with its example inputs) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes say nothing actionable here
        torch.onnx.export(
            graph.module,
            graph.example,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=graph.inputs,
            output_names=graph.outputs,
            dynamic_axes=None if graph.fixed_shapes else graph.dynamic_axes,
            do_constant_folding=True,
        )


def check(graph: Graph, path: Path) -> float:
    """Largest absolute difference between onnxruntime's and PyTorch's outputs on the check inputs (other shapes
    than the example's, so dynamic axes are exercised)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: t.numpy() for name, t in zip(graph.inputs, graph.check)}
    got = session.run(graph.outputs, feeds)
    with torch.no_grad():
        want = graph.module(*graph.check)
    want = want if isinstance(want, tuple) else (want,)
    return max(
        float(np.abs(np.asarray(a, dtype=np.float64) - w.double().numpy()).max()) if w.numel() else 0.0
        for a, w in zip(got, want)
    )
