"""How far an exported model's outputs are from PyTorch's: ONNX (onnxruntime) and TorchScript, one run per kind of
model rnnkit exports.

    python benchmarks/export_parity.py [--data-dir DIR] [--out-root DIR] [--steps 40] [--json-out FILE]

Trains one small run of each recipe below for ``--steps`` steps (parity does not depend on how well a model is
trained, only on the graph: a language model exported as one step with its state in and out, a bidirectional
classifier, a forecaster, a seq2seq encoder and step-wise decoder), then `rnnkit export RUN --format F --json`
for both formats. The export command itself runs each file on fresh random inputs of other sizes than it was
traced with and reports the largest absolute difference from the PyTorch module over every output (logits,
probabilities, states, attention); it fails above 1e-4. Figures and provenance go to --json-out (the published
file is benchmarks/results/export-parity.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _results import Provenance, write_result
from _train import data_flag, train_summary

# recipe -> what it stands for in the table
RUNS = {
    "ptb-small": "ptb-small LM (2x200 LSTM, 10k words), one step with state in/out",
    "sms-spam": "sms-spam (bidirectional recurrent classifier)",
    "digits-rows": "digits-rows (2x128 LSTM)",
    "airline": "airline forecaster",
    "spa-eng-small": "spa-eng-small (GRU 256, Luong attention): encoder / step-wise decoder",
}
FORMATS = ("onnx", "torchscript")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="a folder laid out like the data cache (default: rnnkit's registry)")
    ap.add_argument("--out-root", help="parent of the run directories (default: runs/bench-export-TIMESTAMP)")
    ap.add_argument("--steps", type=int, default=40, help="training steps of each run (default: %(default)s)")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    root = Path(args.out_root or f"runs/bench-export-{time.strftime('%Y%m%d-%H%M%S')}")
    prov = Provenance.start(data_dir=args.data_dir, threads=1)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rows: list[dict[str, Any]] = []
    for recipe, what in RUNS.items():
        run = root / recipe
        cmd = [sys.executable, "-m", "rnnkit", "train", recipe, *data_flag(args.data_dir), "--out", str(run)]
        cmd += ["--max-steps", str(args.steps), "--json", "--quiet", "--set", "train.threads=1"]
        cmd += ["--set", "train.tensorboard=false"]
        train_summary(cmd, recipe, env)
        row: dict[str, Any] = {"recipe": recipe, "run": what}
        for fmt in FORMATS:
            out = run / "export" / ("model.onnx" if fmt == "onnx" else "model.pt")
            proc = subprocess.run(
                [sys.executable, "-m", "rnnkit", "export", str(run), "--format", fmt, "--out", str(out), "--json"],
                capture_output=True,
                text=True,
                env=env,
            )
            if not proc.stdout.strip():
                sys.stderr.write(proc.stderr[-2000:])
                raise SystemExit(
                    f"export_parity: rnnkit export {recipe} --format {fmt} failed (exit {proc.returncode})"
                )
            report = json.loads(proc.stdout.strip().splitlines()[-1])
            row[fmt] = {"max_abs_diff": report["max_abs_diff"], "worst": report["worst"], "ok": report["ok"]}
            print(f"{recipe:<14} {fmt:<12} worst {report['worst']:.1e}  {report['max_abs_diff']}", flush=True)
        rows.append(row)
    versions = {}
    for name in ("onnx", "onnxruntime"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    result = {"steps": args.steps, "tolerance": 1e-4, "versions": versions, "results": rows}
    write_result(args.json_out or root / "benchmark.json", "export", result, prov)
    return 0 if all(r[f]["ok"] for r in rows for f in FORMATS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
