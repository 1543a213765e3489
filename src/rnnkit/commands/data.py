"""rnnkit data: the data sets rnnkit can fetch, verify and cache (list, get, verify, path)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rnnkit.commands.common import add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="list, fetch, verify the data sets recipes use",
        description="Data sets are fetched once (from RNNKIT_DATA_MIRROR if set, else their public "
        "source), checked against pinned checksums and kept in the cache "
        "(RNNKIT_DATA, default the platform cache directory). 'rnnkit train' fetches "
        "what a recipe needs by itself; these verbs do it by hand.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    ls = verbs.add_parser(
        "list",
        help="every registered data set: size, cached or not, recipes, license",
        description="List the registered data sets.",
    )
    add_json(ls)
    ls.set_defaults(func=run_list)

    get = verbs.add_parser(
        "get",
        help="fetch data sets into the cache (once; verified)",
        description="Fetch data sets into the cache and verify them; prints each one's path.",
    )
    get.add_argument("names", nargs="+", metavar="NAME", help="data set name (see 'rnnkit data list')")
    get.add_argument("--force", action="store_true", help="fetch again even if cached")
    get.add_argument("--offline", action="store_true", help="never touch the network (a mirror directory is read)")
    get.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_json(get)
    get.set_defaults(func=run_get)

    ver = verbs.add_parser(
        "verify",
        help="re-hash cached data sets (or a mirror) against their checksums",
        description="Re-hash what is cached (default: every cached data set) against the checksums "
        "recorded when it was fetched; with --dir, check a directory laid out like "
        "the cache (DATASET/FILE paths) against the registry. Exit status 2 if "
        "anything differs.",
    )
    ver.add_argument("names", nargs="*", metavar="NAME", help="data sets to check (default: all)")
    where = ver.add_mutually_exclusive_group()
    where.add_argument("--dir", metavar="DIR", help="check a mirror directory instead of the cache")
    where.add_argument("--mirror", action="store_true", help="check the directory RNNKIT_DATA_MIRROR names")
    add_json(ver)
    ver.set_defaults(func=run_verify)

    pth = verbs.add_parser(
        "path",
        help="where a data set lives in the cache",
        description="Print the folder of a data set in the cache (whether fetched or not).",
    )
    pth.add_argument("name", metavar="NAME")
    pth.set_defaults(func=run_path)


def _size(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def run_list(args: argparse.Namespace) -> int:
    from rnnkit.api import datasets

    rows = datasets.list()
    if args.json:
        print_json(rows)
        return 0
    print(f"cache: {datasets.cache_dir()}")
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        state = "cached" if r["cached"] else "vendored" if r["vendored"] else "-"
        kind = f" (sample of {r['sample_of']})" if r["sample"] else ""
        recipes = ", ".join(r["recipes"]) or "-"
        print(f"{r['name']:<{width}}  {_size(r['size']):>8}  {state:<8}  recipes: {recipes}; {r['license']}{kind}")
    return 0


def run_get(args: argparse.Namespace) -> int:
    from rnnkit.api import datasets

    if args.offline:
        os.environ["RNNKIT_OFFLINE"] = "1"
    datasets.set_progress(False if args.quiet or args.json else None)
    for name in args.names:
        datasets.info(name)  # unknown names fail before anything is fetched
    out = {name: str(datasets.get(name, force=args.force)) for name in args.names}
    if args.json:
        print_json(out)
    else:
        for name, where in out.items():
            print(f"{name}: {where}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from rnnkit.api import UserError, datasets

    root = None
    if args.mirror:
        m = os.environ.get("RNNKIT_DATA_MIRROR", "")
        if not m or m.startswith(("http://", "https://")):
            raise UserError("--mirror: RNNKIT_DATA_MIRROR does not name a directory")
        root = Path(m)
    elif args.dir:
        root = Path(args.dir)
    if root is not None and not root.is_dir():
        raise UserError(f"--dir {root}: no such directory")
    results = datasets.verify(tuple(args.names) or None, root)
    if args.names and root is None:
        missing = [r["name"] for r in results if r["status"] == "not cached"]
        if missing:
            raise UserError(f"not cached: {', '.join(missing)}; fetch with 'rnnkit data get {' '.join(missing)}'")
    failed = [r for r in results if r["status"] == "failed"]
    if args.json:
        print_json({"where": str(root or datasets.cache_dir()), "ok": not failed, "results": results})
    else:
        for r in results:
            print(f"{r['name']}: {r['status']}" + (f" ({'; '.join(r['problems'])})" if r["problems"] else ""))
    if failed:
        raise UserError(f"{len(failed)} data set(s) failed verification: {', '.join(r['name'] for r in failed)}")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from rnnkit.api import datasets

    print(datasets.path(args.name))
    return 0
