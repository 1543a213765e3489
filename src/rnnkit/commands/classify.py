"""rnnkit classify: label and probability for each input of a trained classification run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rnnkit.api import UserError
from rnnkit.commands.common import (
    add_data_dir,
    add_device,
    add_input_limit,
    add_json,
    allow_intermixed,
    print_json,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="classify texts (or sequences) with a trained classifier",
        description="Print the predicted label and its probability for each TEXT, or for each line "
        "of standard input when no TEXT is given. Sequence classifiers (har, "
        "digits-rows) take each input as whitespace- or comma-separated numbers. "
        "--report instead evaluates a split and writes its confusion matrix "
        "(confusion_SPLIT.png) into the run directory.",
    )
    allow_intermixed(p)  # TEXT arguments may come before or after options
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="inputs to classify (default: lines of stdin)")
    p.add_argument(
        "--report",
        action="store_true",
        help="evaluate --split, print per-class precision/recall/F1 and write confusion_SPLIT.png",
    )
    p.add_argument("--split", choices=["valid", "test"], default="test", help="split for --report (default: test)")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_input_limit(p)
    add_data_dir(p, default=None)
    add_device(p)
    add_json(p)
    p.set_defaults(
        func=run, arguments={"inputs": "TEXT", "text": "TEXT"}
    )  # API argument -> what the command line calls it


def read_stdin_lines() -> list[str]:
    raw = sys.stdin.buffer.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UserError(f"stdin: line {line}: not valid UTF-8 (byte 0x{raw[e.start]:02x})") from None
    return [ln.strip() for ln in text.lstrip("\ufeff").splitlines() if ln.strip()]


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    loaded = api.load(args.run, args.checkpoint, args.device or "auto", args.data_dir)
    loaded.require("classify")
    if args.report:
        return _report(args, loaded)
    inputs = list(args.texts) if args.texts else read_stdin_lines()
    if not inputs:
        raise UserError("nothing to classify: give TEXT arguments or lines on standard input")
    results = loaded.classify(inputs, max_input_length=args.max_input_length)
    if args.json:
        print_json(results)
        return 0
    for r in results:
        text = r["text"] if len(r["text"]) <= 80 else r["text"][:77] + "..."
        print(f"{r['label']}\t{r['probability']:.4f}\t{text}")
    return 0


def _report(args: argparse.Namespace, loaded: Any) -> int:
    metrics, png = loaded.report(args.split)
    if args.json:
        print_json({**metrics, "png": str(png)})
        return 0
    labels = metrics["confusion"]["labels"]
    width = max(8, *(len(lab) for lab in labels))
    print(f"{args.split}: {loaded.format_metrics(metrics)}  ({metrics['examples']} examples)")
    print(f"{'class':<{width}} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}")
    for lab in labels:
        print(
            f"{lab:<{width}} {metrics['precision'][lab]:>9.3f} {metrics['recall'][lab]:>7.3f} "
            f"{metrics['f1'][lab]:>6.3f} {metrics['support'][lab]:>7}"
        )
    print(f"confusion matrix (rows true, columns predicted): {png}")
    return 0
