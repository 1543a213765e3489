"""``rnnkit export``: a trained run as ONNX or TorchScript files that run without rnnkit's training code.

``export_run`` writes the task's graphs (``rnnkit.export.graphs``), checks each against PyTorch on inputs of other
shapes than it was traced with (onnxruntime for ONNX), and writes a JSON file beside them with everything a runtime
needs besides the weights: the graphs' inputs and outputs, the vocabulary, labels or scaler (the run's
checkpoint artifacts), the resolved configuration and the measured differences.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rnnkit.errors import UserError
from rnnkit.runs import LoadedRun
from rnnkit.version import __version__

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
TOLERANCE = 1e-4

NOTES = {
    "lm": "Feed the prompt's token ids (vocab) as tokens (seq, 1) with zero states (the graphs' state inputs, named "
    "as the cell's state tensors), then one sampled token at a time with the returned states. Where the tokens "
    "input has a fixed length of 1 (cells that loop over time), feed the prompt one token per call.",
    "text-classify": "tokens: the text's word ids (lowercased per config.data, unknown words -> <unk>), one text "
    "per batch or texts of equal length; probabilities follow artifacts.labels.",
    "sequence-classify": "features: (steps, batch, channels x chunk), standardised with artifacts.mean/std; "
    "probabilities follow artifacts.labels.",
    "forecast": "window: the last lookback values after config.data.transform, artifacts.scaler and "
    "config.data.window_norm (the model's frame); invert the same steps on mean.",
    "seq2seq": "Encode the source ids once (no padding), then call the decoder with <go> (id 1) and each chosen "
    "token, passing memory, keys, mask and the returned states; stop at <eos> (id 2).",
}


def _plain(value: Any, dropped: list[str], where: str) -> Any:
    """JSON-ready copy of checkpoint artifacts; tensors and other binary values are left out (and listed)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, (torch.Tensor, bytes)):
                dropped.append(f"{where}.{k}")
            else:
                out[str(k)] = _plain(v, dropped, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, dropped, where) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def export_run(loaded: LoadedRun, fmt: str, out: str | Path | None = None) -> dict[str, Any]:
    """Write ``loaded``'s graphs in ``fmt`` (onnx | torchscript) at ``out`` (default ``RUN/export/model.EXT``) and
    return a report: files, metadata file, max abs difference per graph, and whether all are within 1e-4."""
    from rnnkit.export import graphs as G

    if fmt not in FORMATS:
        raise UserError(f"format=...: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401 - torch.onnx.export needs it
            import onnxruntime  # noqa: F401
        except ImportError as e:
            raise UserError(
                f"ONNX export needs onnx and onnxruntime ({e.name} is missing): pip install 'rnnkit[serve]'"
            ) from None
        from rnnkit.export import onnx as writer
    else:
        from rnnkit.export import torchscript as writer  # type: ignore[no-redef]
    ext = FORMATS[fmt]
    path = Path(out) if out else loaded.run.path / "export" / f"model{ext}"
    if path.suffix != ext:
        path = path.with_name(path.name + ext)
    graphs = G.graphs_for(loaded)
    files, diffs, described = [], {}, {}
    for g in graphs:
        p = path.with_name(f"{path.stem}.{g.name}{ext}") if g.name else path
        try:
            writer.write(g, p)
        except OSError as e:
            raise UserError(f"out=...: cannot write {p}: {e}") from None
        diffs[g.name or "model"] = writer.check(g, p)
        described[g.name or "model"] = {"file": p.name, **g.describe()}
        files.append(str(p))
    dropped: list[str] = []
    meta = {
        "rnnkit": __version__,
        "torch": torch.__version__,
        "format": fmt,
        "task": loaded.config.task,
        "recipe": loaded.config.recipe,
        "run": str(loaded.run.path),
        "graphs": described,
        "opset": getattr(writer, "OPSET", None),
        "notes": NOTES.get(loaded.config.task, ""),
        "max_abs_diff": diffs,
        "tolerance": TOLERANCE,
        "artifacts": _plain(loaded.checkpoint.get("artifacts", {}), dropped, "artifacts"),
        "config": json.loads(json.dumps(loaded.config.to_dict(), default=str)),
    }
    meta["omitted"] = dropped
    meta_path = path.with_suffix(".json")
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    worst = max(diffs.values())
    return {
        "format": fmt,
        "files": files,
        "metadata": str(meta_path),
        "max_abs_diff": diffs,
        "worst": worst,
        "tolerance": TOLERANCE,
        "ok": worst <= TOLERANCE,
    }
