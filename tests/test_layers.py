"""The import contracts of pyproject.toml ([tool.importlinter]): layers point one way, every package is placed, the
command line imports rnnkit.api only; and no module inside rnnkit imports the root package.

`make lint` runs the same check as `lint-imports`; this test makes `make test` (what CI runs) enforce it too.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_layers_point_one_way():
    code = (
        "from importlinter.cli import lint_imports; "
        "raise SystemExit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout, proc.stdout[-2000:]


def test_no_module_imports_the_root_package():
    """``from rnnkit import __version__`` (or ``import rnnkit``) inside the package ties every layer to the top one,
    the lazy public names; import-linter does not see a name imported from the root, so this walks the sources.
    Importing a submodule by ``from rnnkit import predict`` is a submodule import, allowed."""
    src = REPO / "src" / "rnnkit"
    submodules = {p.stem for p in src.glob("*.py")} | {p.name for p in src.iterdir() if (p / "__init__.py").is_file()}
    found = []
    for path in sorted(src.rglob("*.py")):
        if path == src / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "rnnkit":
                found += [
                    f"{path.relative_to(src)}:{node.lineno}: {a.name}" for a in node.names if a.name not in submodules
                ]
            if isinstance(node, ast.Import) and any(a.name == "rnnkit" for a in node.names):
                found.append(f"{path.relative_to(src)}:{node.lineno}: import rnnkit")
    assert not found, found
