"""rnnkit recipes: what can be trained, one line each."""

from __future__ import annotations

import argparse

from rnnkit.commands.common import add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list the shipped recipes", description="List the shipped recipes.")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    rows = api.recipes()
    if args.json:
        print_json(rows)
        return 0
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['description']}")
    return 0
