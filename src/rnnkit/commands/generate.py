"""rnnkit generate: sample text from a trained language model."""

from __future__ import annotations

import argparse

from rnnkit.api import DEFAULT_NEW_TOKENS, MAX_COUNT, MAX_SEED, cli_number
from rnnkit.commands.common import add_device, add_input_limit, add_json, add_max_new_tokens, max_new_tokens, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate text from a language model",
        description="Continue a prompt with a trained language model. Temperature 0 (or --greedy) "
        "picks the most likely word each step.",
    )
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--prompt", default="", help="text to continue (default: start a new sentence)")
    add_max_new_tokens(p, "tokens to generate (words of a word-level model)", "--words", default=DEFAULT_NEW_TOKENS)
    p.add_argument(
        "--temperature",
        type=cli_number(float, "--temperature", ge=0, le=1e6),
        default=1.0,
        help="0 = greedy; <1 sharper, >1 more random",
    )
    p.add_argument(
        "--top-k",
        type=cli_number(int, "--top-k", ge=0, le=MAX_COUNT),
        default=0,
        help="sample among the k most likely (0 = all)",
    )
    p.add_argument(
        "--top-p", type=cli_number(float, "--top-p", gt=0, le=1), default=1.0, help="nucleus sampling mass (1 = off)"
    )
    p.add_argument("--greedy", action="store_true", help="same as --temperature 0")
    p.add_argument(
        "--seed", type=cli_number(int, "--seed", ge=0, le=MAX_SEED), help="fixes the sampling for reproducible output"
    )
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_input_limit(p)
    add_device(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    loaded = api.load(args.run, args.checkpoint, args.device or "auto")
    text = loaded.generate(
        args.prompt,
        max_new_tokens(args),
        temperature=0.0 if args.greedy else args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        max_input_length=args.max_input_length,
    )
    if args.json:
        print_json({"prompt": args.prompt, "text": text})
    else:
        print((args.prompt + " " if args.prompt else "") + text)
    return 0
