"""rnnkit translate: translate sentences with a trained sequence-to-sequence run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rnnkit.api import UserError, cli_number
from rnnkit.commands.common import (
    add_device,
    add_input_limit,
    add_json,
    add_max_new_tokens,
    allow_intermixed,
    max_new_tokens,
    print_json,
)


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
    add_max_new_tokens(p, "most output tokens (2 x the input's + 10 when not given)", "--max-length")
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
    p.set_defaults(
        func=run, arguments={"texts": "TEXT", "text": "TEXT", "path": "--show-attention"}
    )  # API argument -> what the command line calls it
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
        try:
            raw = Path(args.file).read_bytes()
        except OSError as e:
            why = "file not found" if isinstance(e, FileNotFoundError) else (e.strerror or str(e)).lower()
            raise UserError(f"--file {args.file}: cannot read it: {why}") from None
        return decode_lines(raw, args.file)
    lines = decode_lines(sys.stdin.buffer.read(), "stdin")
    while lines and not lines[-1]:
        lines.pop()
    return lines


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    beam = 1 if args.greedy else args.beam
    limit = max_new_tokens(args)
    inputs = read_inputs(args)
    if not inputs:
        raise UserError("nothing to translate: give TEXT arguments, --file FILE or lines on standard input")
    if args.show_attention is not None:
        api.check_output(args.show_attention, "--show-attention")
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
            max_new_tokens=limit,
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
