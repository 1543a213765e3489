"""quality.py --merge: parts of the grid become one result - a part may run more seeds of some cells only - and
parts that would not be comparable (a cell at another width, a run twice) are refused. Fast: the committed parts,
nothing trains."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import quality  # noqa: E402

PARTS = REPO / "benchmarks" / "results" / "parts"
SEED1, MORE = PARTS / "quality-seed1-cpu.json", PARTS / "quality-shakespeare-s45-cpu.json"


def _seeds(result: dict, task: str, cell: str) -> list[int]:
    return sorted(r["seed"] for r in result["tasks"][task]["runs"] if r["cell"] == cell)


def test_a_part_with_some_cells_adds_their_seeds(tmp_path):
    out = tmp_path / "merged.json"
    assert quality.merge([str(SEED1), f"{MORE}:shakespeare"], str(out), None) == 0
    result = json.loads(out.read_text())["result"]
    assert _seeds(result, "shakespeare", "lstm") == [1, 4, 5] and _seeds(result, "shakespeare", "slstm") == [1, 4, 5]
    assert _seeds(result, "shakespeare", "gru") == [1]
    widths = result["tasks"]["shakespeare"]["widths"]
    assert set(widths) == set(quality.CELLS)  # every cell's width kept, not only the last part's


def test_a_cell_at_another_width_is_refused(tmp_path):
    doc = json.loads(MORE.read_text())
    doc["result"]["tasks"]["shakespeare"]["widths"]["slstm"]["hidden"] += 8
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    with pytest.raises(SystemExit, match="other widths"):
        quality.merge([str(SEED1), str(other)], str(tmp_path / "m.json"), None)


def test_a_run_twice_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="seed 4 twice"):
        quality.merge([str(MORE), str(MORE)], str(tmp_path / "m.json"), None)
