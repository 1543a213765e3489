"""rnnkit export: a trained run as ONNX or TorchScript, checked against PyTorch."""

from __future__ import annotations

import argparse

from rnnkit.commands.common import add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a run to ONNX or TorchScript (checked against PyTorch)",
        description="Write the run's model as ONNX (--format onnx: needs onnx and onnxruntime, "
        "pip install 'rnnkit[serve]') or TorchScript, plus a JSON file beside it with "
        "the inputs and outputs, vocabulary/labels/scaler and configuration. Language "
        "models export one step with the state in and out; seq2seq models an encoder "
        "and a step-wise decoder (FILE.encoder.onnx, FILE.decoder.onnx). Each file is "
        "run on fresh inputs and compared with PyTorch; the largest absolute difference "
        "is printed, and the exit status is 1 if it exceeds 1e-4.",
    )
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="(default: %(default)s)")
    p.add_argument("--out", metavar="FILE", help="output file (default: RUN_DIR/export/model.onnx or model.pt)")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    report = api.load(args.run, args.checkpoint, "cpu").export(args.format, args.out)
    if args.json:
        print_json(report)
    else:
        for f in report["files"]:
            print(f"wrote {f}")
        print(f"wrote {report['metadata']}")
        for name, d in report["max_abs_diff"].items():
            print(f"{name}: max abs diff vs PyTorch {d:.3g} ({'ok' if d <= report['tolerance'] else 'TOO LARGE'})")
    return 0 if report["ok"] else 1
