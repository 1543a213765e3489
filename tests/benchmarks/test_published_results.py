"""Published figures: every result file follows the schema, docs/results.md is exactly what the generator makes of
the committed files, recipe descriptions state only the bounds reproduce.py checks, and the check itself fails
when a figure moves outside its tolerance. Fast: nothing here trains."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import _results  # noqa: E402
import reproduce  # noqa: E402
import results_tables  # noqa: E402

RESULT_FILES = sorted(_results.RESULTS.glob("*.json"))


@pytest.mark.parametrize("path", RESULT_FILES, ids=[p.stem for p in RESULT_FILES])
def test_every_result_file_follows_the_schema(path):
    doc = _results.read_result(path)
    prov = doc["provenance"]
    assert doc["benchmark"] in results_tables.RENDERERS, f"{path.name}: no renderer for {doc['benchmark']!r}"
    assert prov["software"]["torch"] and prov["machine"]["cpu"] and prov["machine"]["threads"]
    assert prov["git"]["commit"], f"{path.name}: the commit measured is not recorded"
    assert prov["finished"], f"{path.name}: the date is not recorded"
    changed = [f for f in prov["git"].get("dirty_files") or [] if _results.measured(f)]
    assert prov["reconstructed"] or not changed, f"{path.name}: measured on uncommitted changes to {changed}"


def test_the_committed_doc_is_what_the_generator_makes_of_the_committed_files():
    text = results_tables.DOC.read_text()
    assert text == results_tables.generate(text), (
        "docs/results.md differs from the tables generated from benchmarks/results/; "
        "run python benchmarks/results_tables.py (after benchmarks/reproduce.py --quick)"
    )


def test_the_pages_quoting_results_show_what_the_generator_makes():
    for page in results_tables.QUOTING:
        text = page.read_text()
        assert results_tables.BLOCK.search(text), f"{page.name} quotes no generated block"
        assert text == results_tables.generate(text), f"{page.name} is stale: run python benchmarks/results_tables.py"


def test_every_result_file_is_shown_and_every_block_has_its_file():
    shown = results_tables.referenced(results_tables.DOC.read_text())
    assert len(shown) == len(set(shown)), f"a block appears twice: {shown}"
    assert sorted(shown) == sorted(p.stem for p in RESULT_FILES)


def test_a_hand_edited_figure_is_caught_and_restored(tmp_path):
    text = results_tables.DOC.read_text()
    block = results_tables.BLOCK.search(text)
    assert block is not None, "docs/results.md has no generated block"
    figure = re.search(r"\d+\.\d+", block[2])
    assert figure is not None
    start = block.start(2) + figure.start()
    edited = text[:start] + "9" + text[start + 1 :] if text[start] != "9" else text[:start] + "1" + text[start + 1 :]
    doc = tmp_path / "results.md"
    doc.write_text(edited)
    script = REPO / "benchmarks" / "results_tables.py"
    check = subprocess.run([sys.executable, str(script), "--check", "--doc", str(doc)], capture_output=True, text=True)
    assert check.returncode == 1 and block[1] in check.stderr, check.stderr
    subprocess.run([sys.executable, str(script), "--doc", str(doc)], check=True, capture_output=True)
    assert doc.read_text() == text


def _description_percentages(recipe: Path) -> list[float]:
    description = tomllib.loads(recipe.read_text()).get("description", "")
    return [float(x) / 100 for x in re.findall(r"(\d+(?:\.\d+)?)%", description)]


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").glob("*.toml")), ids=lambda p: p.stem)
def test_a_recipe_description_states_only_the_bounds_reproduce_checks(recipe):
    stated = _description_percentages(recipe)
    floors = [
        c.value for c in reproduce.CLAIMS if c.recipe == recipe.stem and c.kind == "floor" and "description" in c.figure
    ]
    assert sorted(stated) == sorted(floors), (
        f"{recipe.name}: the description states {stated}, benchmarks/reproduce.py checks {floors}"
    )


def test_every_quick_recipe_has_a_published_row_and_claims():
    for recipe in reproduce.QUICK:
        row, prov = reproduce.published_row(recipe)
        claims = [c for c in reproduce.CLAIMS if c.recipe == recipe]
        assert claims, recipe
        assert prov["seeds"], f"{recipe}: published without seeds"
        for claim in claims:
            reproduce.lookup(row, claim.key)  # the figure exists in the published file


def test_the_check_passes_the_published_figures_and_fails_outside_the_tolerance():
    row, _ = reproduce.published_row("sms-spam")
    published = [c for c in reproduce.CLAIMS if c.recipe == "sms-spam" and c.kind == "published"]
    assert published
    for claim in published:
        assert reproduce.check(claim, row, row)["ok"]
        moved = copy.deepcopy(row)
        node = moved
        *path, last = claim.key.split(".")
        for part in path:
            node = node[part]
        node[last] = node[last] - 2 * (claim.abs_tol + claim.rel_tol * abs(node[last])) - 1e-6
        result = reproduce.check(claim, moved, row)
        assert not result["ok"] and result["measured"] < result["value"]
    floor = reproduce.Claim("sms-spam", "floor", "accuracy.min", "lowest", value=1.01)
    assert not reproduce.check(floor, row, row)["ok"]


def test_write_result_records_provenance_and_rejects_what_is_not_json(tmp_path):
    prov = _results.Provenance.start(seeds=[7], data_dir=tmp_path, threads=1, argv=["benchmarks/x.py", "--a", "b c"])
    path = _results.write_result(tmp_path / "out" / "x.json", "x", {"figure": 1.5, "bad": float("nan")}, prov)
    doc = _results.read_result(path)
    p = doc["provenance"]
    assert doc["result"] == {"figure": 1.5, "bad": None}  # NaN is not JSON: written as null
    assert p["seeds"] == [7] and p["machine"]["threads"] == 1 and p["data_dir"] == str(tmp_path.resolve())
    assert p["command"].endswith("python benchmarks/x.py --a 'b c'")
    assert p["machine"]["cpus"] >= 1 and p["software"]["python"] and p["wall_s"] >= 0
    if p["git"]["commit"] is not None:  # a checkout: the commit is the one HEAD names
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert p["git"]["commit"] == head.stdout.strip()
    assert not list(path.parent.glob(".*.tmp"))  # written through a temp file, nothing left behind


def test_a_result_file_missing_a_field_is_named(tmp_path):
    prov = _results.Provenance.start(seeds=[], threads=1)
    path = _results.write_result(tmp_path / "x.json", "x", {}, prov)
    doc = json.loads(path.read_text())
    del doc["provenance"]["machine"]["cpu_flags"]
    with pytest.raises(_results.ResultError, match="provenance.machine.cpu_flags"):
        _results.check_result(doc, "x.json")
    doc = json.loads(path.read_text())
    doc["provenance"]["git"]["commit"] = "main"
    with pytest.raises(_results.ResultError, match="40-hex"):
        _results.check_result(doc, "x.json")


def test_a_transcribed_file_says_so_and_how_to_measure_it_again():
    transcribed = [p for p in RESULT_FILES if "transcribed" in _results.read_result(p)["result"]]
    assert transcribed, "the figures of the hand-written page are kept in transcribing result files"
    for path in transcribed:
        doc = _results.read_result(path)
        t = doc["result"]["transcribed"]
        assert doc["provenance"]["reconstructed"], f"{path.name}: a transcription must say it is one"
        assert t["page_commit"] == doc["provenance"]["git"]["commit"] and t["remeasure"] and t["blocks"]
        block = results_tables.render(path.stem)
        assert "Transcribed from the hand-written" in block and "To measure them again:" in block, path.name


def test_a_glob_block_shows_every_file_it_matches_in_one_table(tmp_path):
    for path in _results.RESULTS.glob("load-*c-r?.json"):
        (tmp_path / path.name).write_text(path.read_text())
    names = results_tables.stems("load-*c-r?", tmp_path)
    assert names and all(n.startswith(("load-before-", "load-after-")) for n in names)
    block = results_tables.render("load-*c-r?", tmp_path)
    assert block.count("\n| ") == len(names) // 2  # one row per clients and round (pairs before / after)
    (tmp_path / f"{names[0]}.json").unlink()
    with pytest.raises(_results.ResultError, match="only the"):  # half a pair is not silently dropped
        results_tables.render("load-*c-r?", tmp_path)


import _figures  # noqa: E402

HAND_MADE: set[str] = set()  # figures no benchmark writes (none left: export-parity has benchmarks/export_parity.py)


@pytest.mark.parametrize("path", RESULT_FILES, ids=[p.stem for p in RESULT_FILES])
def test_every_figure_is_one_command_away(path):
    doc = _results.read_result(path)
    run = _figures.rerun(path.stem, doc)
    if path.stem in HAND_MADE:
        assert run is None
        return
    assert run is not None, f"{path.name}: no benchmark command measures it again (add it to _figures.COMMANDS)"
    assert (REPO / run.argv[0]).is_file(), run.argv
    assert path.stem.startswith("reproduce-") or run.minutes is not None, f"{path.name}: how long it takes is unknown"
    if (
        not doc["provenance"]["reconstructed"]
        and "transcribed" not in doc["result"]
        and doc["benchmark"] != "reproduce"
    ):
        assert _figures.headlines(doc), f"{path.name}: no headline figure for reproduce.py --full to compare"


def test_measuring_again_moves_every_output_to_the_scratch_folder(tmp_path):
    argv = ["benchmarks/ptb.py", "ptb-small", "--data-dir", "data-mirror", "--out", "runs/x", "--set", "a=1"]
    argv += ["--json-out=benchmarks/results/ptb-small.json"]
    out = _figures.relocate(argv, tmp_path, tmp_path / "new.json", "/data")
    assert out[:2] == argv[:2] and out[out.index("--data-dir") + 1] == "/data"
    assert out[out.index("--out") + 1] == str(tmp_path / "out") and f"--json-out={tmp_path / 'new.json'}" in out
    assert not any("benchmarks/results" in a for a in out)
    bare = _figures.relocate(["benchmarks/decode_step.py"], tmp_path, tmp_path / "n.json", None)
    assert bare == ["benchmarks/decode_step.py", "--json-out", str(tmp_path / "n.json")]


def test_a_remeasured_figure_outside_its_tolerance_fails(tmp_path):
    doc = _results.read_result(_results.RESULTS / "forecast.json")
    same = _figures.compare(doc, doc)
    assert same and all(r["ok"] for r in same)
    moved = copy.deepcopy(doc)
    moved["result"]["results"][0]["model"]["rmse"] *= 1.25  # tolerance 10%
    rows = _figures.compare(doc, moved)
    assert [r["ok"] for r in rows].count(False) == 1 and not rows[0]["ok"]
    del moved["result"]["results"][0]  # a figure the new file lacks fails too, never passes silently
    assert not _figures.compare(doc, moved)[0]["ok"]


def test_reproduce_figure_measures_one_file_again_and_compares_it(tmp_path):
    """The gradient-flow figure takes seconds: the real command, its table, exit 0, the published file untouched."""
    published = (_results.RESULTS / "gradient-flow.json").read_text()
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "reproduce.py"), "--figure", "gradient-flow"]
        + ["--out-root", str(tmp_path), "--json-out", str(tmp_path / "report.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "lstm gradient ratio" in proc.stdout and "ok" in proc.stdout
    report = _results.read_result(tmp_path / "report.json")["result"]
    assert report["passed"] and len(report["checks"]) == 3
    assert (_results.RESULTS / "gradient-flow.json").read_text() == published
    assert "gradient-flow" in results_tables.render_reproduce({"result": report})


def test_figures_not_remeasured_stay_out_of_the_current_tables(tmp_path):
    text = results_tables.DOC.read_text()
    assert results_tables.HISTORY in text
    assert results_tables.misplaced(text) == []
    historical = [p.stem for p in RESULT_FILES if results_tables.historical(_results.read_result(p))]
    if historical:  # moving one above the heading is caught
        m = next(m for m in results_tables.BLOCK.finditer(text) if m[1] in historical)
        moved = text[: m.start()] + text[m.end() :]
        moved = moved.replace("\n## ", "\n" + m[0] + "\n\n## ", 1)
        assert results_tables.misplaced(moved) == [m[1]]


OURS = re.compile(r"\bours:? (\d[\d,]*(?:\.\d+)?%?)([^|\n]*)")


def _prose_with_figures() -> list[tuple[str, str]]:
    texts = [("README.md", (REPO / "README.md").read_text())]
    for recipe in sorted((REPO / "recipes").glob("*.toml")):
        texts.append((recipe.name, tomllib.loads(recipe.read_text()).get("description", "")))
    return texts


def test_every_measured_figure_in_the_readme_and_recipes_names_its_result_file():
    """'ours N' in the README or a recipe description: the result file it comes from is named beside it, and the
    page's block for that file shows N."""
    found = 0
    for name, text in _prose_with_figures():
        for m in OURS.finditer(text):
            found += 1
            ref = re.search(r"benchmarks/results/([\w.-]+)\.json", m[2])
            assert ref, f"{name}: 'ours {m[1]}' does not name the result file it comes from"
            path = _results.RESULTS / f"{ref[1]}.json"
            assert path.is_file(), f"{name}: {path.name} does not exist"
            assert m[1].rstrip("%") in results_tables.render(ref[1]), f"{name}: {ref[1]} does not show {m[1]}"
    assert found, "the README and recipes state no measured figure: drop this test or the pattern is stale"
