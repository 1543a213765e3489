"""rnnkit recipes: what can be trained, one line each."""

from __future__ import annotations

import argparse

from rnnkit.commands.common import add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list the shipped recipes", description="List the shipped recipes.")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rnnkit.tasks.recipes import list_recipes

    rows = list_recipes()
    if args.json:
        print_json([{"name": n, "description": d} for n, d in rows])
        return 0
    width = max((len(n) for n, _ in rows), default=0)
    for name, desc in rows:
        print(f"{name:<{width}}  {desc}")
    return 0
