"""The data sets recipes use, as the API offers them (``rnnkit data ...`` calls these): ``rnnkit.datasets``'s
listing, fetch, verification and cache, re-exported so the command line reaches them through the API."""

from __future__ import annotations

from rnnkit.datasets import cache_dir, get, info, path, set_progress, verify
from rnnkit.datasets import list as list  # noqa: A004 - the registry's public name, as `rnnkit data list`

__all__ = ["cache_dir", "get", "info", "list", "path", "set_progress", "verify"]
