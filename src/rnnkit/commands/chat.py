"""rnnkit chat: talk to a trained sequence-to-sequence chatbot."""

from __future__ import annotations

import argparse
import sys

from rnnkit.api import MAX_COUNT, MAX_SEED, cli_number
from rnnkit.commands.common import add_device, add_input_limit, add_json, add_max_new_tokens, max_new_tokens, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat",
        help="talk to a trained chatbot (seq2seq run)",
        description="An interactive conversation with a trained seq2seq run (type a message, get "
        "replies; an empty line or Ctrl-D ends it). The conversation so far is kept "
        "and given to the model as context when its recipe reads earlier turns "
        "(data.context_turns). --once TEXT prints the replies to one message and exits.",
    )
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--once", metavar="TEXT", help="reply to this message and exit")
    p.add_argument(
        "--replies",
        type=cli_number(int, "--replies", ge=1, le=100),
        help="candidate replies per message (default: the run's model.replies)",
    )
    p.add_argument(
        "--decoding",
        choices=["sample", "beam", "greedy"],
        help="how replies are chosen (default: the run's model.reply_decoding)",
    )
    p.add_argument(
        "--top-k",
        type=cli_number(int, "--top-k", ge=0, le=MAX_COUNT),
        help="sample among the k most likely words (default: model.top_k)",
    )
    p.add_argument(
        "--temperature",
        type=cli_number(float, "--temperature", ge=0, le=1e6),
        help="sampling temperature (default: model.temperature)",
    )
    p.add_argument(
        "--beam",
        type=cli_number(int, "--beam", ge=1, le=1000),
        help="beam size for --decoding beam (default: model.beam)",
    )
    add_max_new_tokens(p, "longest reply in tokens (the run's model.decode_length when not given)", "--max-words")
    p.add_argument(
        "--seed", type=cli_number(int, "--seed", ge=0, le=MAX_SEED), help="fixes the sampling for reproducible replies"
    )
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_input_limit(p)
    add_device(p)
    add_json(p)
    p.set_defaults(
        func=run, arguments={"text": "--once", "history": "the conversation"}
    )  # API argument -> what the command line calls it


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    limit = max_new_tokens(args)
    if args.once is not None:  # before loading the model: an empty message costs nothing
        api.check_text(args.once, "--once", "answer", args.max_input_length)
    loaded = api.load(args.run, args.checkpoint, args.device or "auto")
    loaded.require("chat")

    def answer(text: str, history: list[str], seed: int | None) -> list[str]:
        return loaded.chat(
            text,
            history,
            replies=args.replies,
            decoding=args.decoding,
            top_k=args.top_k,
            temperature=args.temperature,
            beam=args.beam,
            seed=seed,
            max_new_tokens=limit,
            max_input_length=args.max_input_length,
        )

    if args.once is not None:
        replies = answer(args.once, [], args.seed)
        if args.json:
            print_json({"message": args.once, "replies": replies})
        else:
            for r in replies:
                print(r)
        return 0
    history: list[str] = []
    interactive = sys.stdin.isatty()
    if interactive:
        print("(empty line or Ctrl-D to leave)", file=sys.stderr)
    turn = 0
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            break
        text = line.strip()
        if not text:
            break
        replies = answer(text, history, None if args.seed is None else args.seed + turn)
        turn += 1
        if args.json:
            print_json({"message": text, "replies": replies})
        else:
            for r in replies:
                print(r)
        sys.stdout.flush()
        history += [text, replies[0]]  # the first candidate is taken as the bot's turn
    return 0
