"""docs/config.md is generated from the declarations in the code, and every key is declared with a meaning."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rnnkit.config import OptimConfig, TrainConfig, declaration
from rnnkit.tasks import get_task, task_names
from rnnkit.tasks.glossary import glossary

DOC = Path(__file__).resolve().parent.parent / "docs" / "config.md"


def test_committed_glossary_is_what_the_code_generates():
    assert DOC.read_text() == glossary(), "docs/config.md is stale: python -m rnnkit.tasks.glossary > docs/config.md"


def test_every_key_of_every_task_is_declared_and_listed():
    text = DOC.read_text()
    sections = [("optim", OptimConfig), ("train", TrainConfig)]
    for name in task_names():
        task = get_task(name)
        sections += [("data", task.DataConfig), ("model", task.ModelConfig)]
    for section, cls in sections:
        for f in dataclasses.fields(cls):
            assert declaration(cls, f.name).doc, f"{cls.__name__}.{f.name} has no meaning declared"
            assert f"| `{section}.{f.name}` |" in text, f"{section}.{f.name} missing from docs/config.md"
