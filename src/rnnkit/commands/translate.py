"""rnnkit translate: translate sentences with a trained sequence-to-sequence run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rnnkit.commands.common import (
    add_device,
    add_input_limit,
    add_json,
    allow_intermixed,
    print_json,
)
from rnnkit.config import MAX_SIZE, cli_number
from rnnkit.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate",
        help="translate sentences with a trained seq2seq run",
        description="Translate each TEXT, or each line of --file, or each line of standard input "
        "when neither is given: one translation per line, in order (a blank line of a "
        "file or of standard input gives a blank output line, so the output stays "
        "aligned with the input; an empty TEXT is an error). Accents may be left out "
        "where the run strips them (Spanish sources: 'Como te llamas' reads as "
        "'¿Cómo te llamas?').",
    )
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="sentences to translate (default: lines of stdin)")
    p.add_argument("--file", metavar="FILE", help="translate every line of this UTF-8 file")
    p.add_argument(
        "--beam",
        type=cli_number(int, "--beam", ge=1, le=1000),
        help="beam size (default: the run's model.beam; 1 = greedy)",
    )
    p.add_argument("--greedy", action="store_true", help="same as --beam 1")
    p.add_argument(
        "--length-penalty",
        type=cli_number(float, "--length-penalty", ge=0, le=100),
        metavar="ALPHA",
        help="GNMT length penalty alpha (default: the run's model.length_penalty)",
    )
    p.add_argument(
        "--max-length",
        type=cli_number(int, "--max-length", ge=1, le=MAX_SIZE),
        metavar="N",
        help="most output tokens (default: 2 x input + 10)",
    )
    p.add_argument(
        "--show-attention",
        metavar="PNG",
        help="draw the attention weights (target x source words) into PNG; with several inputs "
        "PNG-1.png, PNG-2.png, ...",
    )
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_input_limit(p)
    add_device(p)
    add_json(p)
    p.set_defaults(func=run)
    allow_intermixed(p)


def decode_lines(raw: bytes, where: str) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UserError(
            f"{where}: line {line}: not valid UTF-8 (byte 0x{raw[e.start]:02x}); convert it to UTF-8"
        ) from None
    return [ln.strip() for ln in text.lstrip("\ufeff").splitlines()]


def read_inputs(args: argparse.Namespace) -> list[str]:
    if args.texts and args.file:
        raise UserError("give TEXT arguments or --file, not both")
    if args.texts:
        return list(args.texts)
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise UserError(f"--file: file not found: {args.file}")
        return decode_lines(path.read_bytes(), str(path))
    lines = decode_lines(sys.stdin.buffer.read(), "stdin")
    while lines and not lines[-1]:
        lines.pop()
    return lines


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    beam = 1 if args.greedy else args.beam
    if beam is not None and beam < 1:
        raise UserError(f"--beam must be >= 1, got {beam}")
    if args.max_length is not None and args.max_length < 1:
        raise UserError(f"--max-length must be >= 1, got {args.max_length}")
    inputs = read_inputs(args)
    if not inputs:
        raise UserError("nothing to translate: give TEXT arguments, --file FILE or lines on standard input")
    if args.show_attention:
        from rnnkit.figures import output_file

        output_file(args.show_attention, "--show-attention")
    if args.texts:  # each TEXT is checked as given: an empty one is a mistake
        for i, text in enumerate(inputs, start=1):
            api.check_text(text, f"TEXT {i}" if len(inputs) > 1 else "TEXT", "translate", args.max_input_length)
    else:  # lines of a file: a blank line stays a blank line of the output
        where = args.file or "stdin"
        for i, text in enumerate(inputs, start=1):
            if text:
                api.check_length(text, f"{where}: line {i}", args.max_input_length)
    loaded = api.load(args.run, args.checkpoint, args.device or "auto")
    todo = [t for t in inputs if t]
    if not todo:
        raise UserError(f"{args.file or 'stdin'}: nothing to translate (only blank lines)")
    done = iter(
        loaded.translate(
            todo,
            beam=beam,
            max_length=args.max_length,
            length_penalty=args.length_penalty,
            details=True,
            max_input_length=args.max_input_length,
        )
    )
    blank = {
        "source": "",
        "translation": "",
        "source_tokens": [],
        "target_tokens": [],
        "unknown": [],
        "score": None,
        "attention": None,
    }
    results = [next(done) if t else dict(blank) for t in inputs]
    if args.show_attention:
        pngs = plot_all(loaded, results, args.show_attention)
        if not args.json:
            for p in pngs:
                print(f"attention: {p}", file=sys.stderr)
    if args.json:
        print_json([{k: v for k, v in r.items() if k != "attention"} for r in results])
        return 0
    for r in results:
        print(r["translation"])
    return 0


def plot_all(loaded: Any, results: list[dict[str, Any]], target: str) -> list[str]:
    out = []
    path = Path(target)
    results = [r for r in results if r["source"]]
    for i, r in enumerate(results, start=1):
        p = path if len(results) == 1 else path.with_name(f"{path.stem}-{i}{path.suffix or '.png'}")
        out.append(str(loaded.plot_attention(r, p)))
    return out
