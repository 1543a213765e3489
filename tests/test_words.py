"""Messages name what their reader can change (issue 23): Python reads the argument of the call it made
(``target=...``, ``overrides={"data.value_columns": NAME}``, ``rnnkit.datasets.list()``), the command line the
option or verb that sets it (``--target``, ``--set data.value_columns=NAME``, ``'rnnkit data list'``). One
mechanism: the API raises in Python's words and ``rnnkit.commands.common.in_cli_words`` says them as the CLI's.

Each family (data, tasks, tune, diagnose, export, runs) is asked once from Python and once from ``rnnkit.cli.main``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rnnkit
from rnnkit.cli import main
from rnnkit.errors import UserError


def api_error(call) -> str:
    """The message of the UserError ``call()`` raises: in Python's words, never an option."""
    with pytest.raises(UserError) as e:
        call()
    text = str(e.value)
    assert "--" not in text and "'rnnkit " not in text, text
    return text


def cli_error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """The one line ``rnnkit ARGS`` fails with (exit status 2): in the command line's words."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("rnnkit: warning:")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rnnkit: error: "), (code, err)
    python = re.search(r"(?<![\w.])[a-z_]+=\.\.\.|overrides=|rnnkit\.(datasets|recipes)", lines[0])
    assert python is None, lines[0]
    return lines[0]


def _csv(tmp_path: Path, text: str, name: str = "series.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


SERIES = "month,passengers,note\n" + "".join(f"2000-{m:02d},{100 + m},x\n" for m in range(1, 13))


# -- data: a series CSV's columns ----------------------------------------------------------------------------------
def test_a_series_column_is_named_as_each_caller_sets_it(tiny_run, capsys, tmp_path):
    """rnnkit.train sets the column keys with overrides=, forecast_report with its own target= and time_column=:
    each message names what that caller can set, and the CLI the option (--set, --target, --time-col)."""
    csv = _csv(tmp_path, SERIES)
    train = {"data.path": [str(csv)], "data.time_column": "month"}
    text = api_error(
        lambda: rnnkit.train(
            "forecast", overrides={**train, "data.value_columns": "nope"}, out=tmp_path / "a", progress=False
        )
    )
    assert text.endswith('choose with overrides={"data.value_columns": NAME}'), text
    text = api_error(lambda: rnnkit.train("forecast", overrides=train, out=tmp_path / "b", progress=False))
    assert "column 'note': not a number: 'x' (choose numeric columns with overrides={\"data.value_columns\"" in text
    line = cli_error(capsys, "train", "forecast", "--set", f"data.path={csv}", "--set", "data.value_columns=nope")
    assert line.endswith("choose with --set data.value_columns=NAME"), line

    run = rnnkit.load(tiny_run("forecast"))
    assert api_error(lambda: run.forecast_report(csv=csv, target="nope")).endswith("; choose with target=...")
    text = api_error(lambda: run.forecast_report(csv=csv, time_column="nope"))
    assert text.endswith("; choose with time_column=...") and "data.time_column='nope'" in text, text
    assert "(choose numeric columns with target=...)" in api_error(lambda: run.forecast_report(csv=csv))
    forecast = ("forecast", tiny_run("forecast"), "--csv", csv)
    assert cli_error(capsys, *forecast, "--target", "nope").endswith("; choose with --target")
    assert cli_error(capsys, *forecast, "--time-col", "nope").endswith("; choose with --time-col")
    assert "(choose numeric columns with --target)" in cli_error(capsys, *forecast)
    # evaluate(data=...) reads a CSV laid out like the run's own data: nothing for its caller to choose
    text = api_error(lambda: run.evaluate(data=csv))
    assert "not a number" in text and "choose" not in text, text


def test_a_value_the_log_transform_cannot_take_says_how_to_train_without_it(tiny_run, capsys, tmp_path):
    months = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(48)]
    csv = _csv(
        tmp_path, "month,passengers\n" + "".join(f"{t},{100 + i if i < 47 else 0}\n" for i, t in enumerate(months))
    )
    run = rnnkit.load(tiny_run("forecast"))
    text = api_error(lambda: run.forecast_report(csv=csv, time_column="month", target="passengers"))
    assert text.endswith('train with data.transform=none (overrides={"data.transform": "none"})'), text
    line = cli_error(capsys, "forecast", tiny_run("forecast"), "--csv", csv, "--target", "passengers")
    assert line.endswith("train with data.transform=none (--set data.transform=none)"), line


def test_a_label_column_of_text_names_the_key_as_the_caller_sets_it(capsys, tmp_path):
    tsv = _csv(tmp_path, "".join(f"message number {i}\tham\n" for i in range(30)), "spam.tsv")
    text = api_error(
        lambda: rnnkit.train("text-classify", overrides={"data.path": [str(tsv)]}, out=tmp_path / "a", progress=False)
    )
    assert 'is the label in column 1? (overrides={"data.label_column": 1}; at most' in text, text
    line = cli_error(capsys, "train", "text-classify", "--set", f"data.path={tsv}", "--out", tmp_path / "b")
    assert "is the label in column 1? (--set data.label_column=1; at most" in line, line


def test_a_file_of_no_data_set_names_the_function_that_lists_them(capsys, tmp_path):
    """'rnnkit data list' is the verb of rnnkit.datasets.list(): Python reads the function, the CLI the verb."""
    over = {"data.path": ["nowhere/x.tsv"]}
    text = api_error(lambda: rnnkit.train("text-classify", overrides=over, out=tmp_path / "a", progress=False))
    assert "see rnnkit.datasets.list()); pass data_dir=... or overrides=" in text, text
    line = cli_error(capsys, "train", "text-classify", "--set", "data.path=nowhere/x.tsv", "--out", tmp_path / "b")
    assert "see 'rnnkit data list'); pass --data-dir or --set data.path=PATH" in line, line


# -- tasks: what a task chose and what it cannot do ---------------------------------------------------------------
def test_what_training_says_while_it_runs_and_after_names_the_callers_setting(capsys, tmp_path):
    """The values chosen from the data (written while training runs), the note on the model losing to a baseline
    and the note of a resume with nothing to do: overrides= / forecaster=... / max_steps=... in Python, --set /
    --forecaster / --max-steps on the command line - in --json too."""
    import math

    values = [100 + 10 * math.sin(i / 2) + i for i in range(80)]
    capsys.readouterr()
    run = rnnkit.train("forecast", data=values, max_steps=2, out=tmp_path / "py")
    err = capsys.readouterr().err
    assert "Set any of them yourself (overrides={KEY: VALUE})" in err and "--" not in err, err
    assert "(forecaster=... model|ensemble|" in run.summary["note"]

    csv = _csv(tmp_path, "t,v\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    out = tmp_path / "cli"
    assert main(["train", "forecast", "--set", f"data.path={csv}", "--max-steps", "2", "--out", str(out)]) == 0
    printed, err = capsys.readouterr()
    assert "Set any of them yourself (--set KEY=VALUE)" in err and "overrides=" not in err, err
    assert "(--forecaster model|ensemble|" in printed and "=..." not in printed, printed
    assert main(["forecast", str(out), "--json"]) == 0
    assert "(--forecaster model|ensemble|" in json.loads(capsys.readouterr().out)["note"]
    assert main(["train", "--resume", str(out), "--max-steps", "2", "--json"]) == 0
    printed, err = capsys.readouterr()
    note = json.loads(printed)["note"]
    assert "train.max_steps (--max-steps) is 2: nothing to train" in note and note in err, (note, err)
    assert "train.max_steps (max_steps=...) is 2" in rnnkit.load(out).resume(max_steps=2).notes[0]


def test_a_task_that_trains_in_one_process_says_so_as_the_caller_asked(capsys, tmp_path):
    text = api_error(lambda: rnnkit.train("parity", nproc=2, device="cpu", out=tmp_path / "a"))
    assert text.endswith("does not support distributed training yet; train in one process (nproc=... 1)"), text
    line = cli_error(capsys, "train", "parity", "--nproc", "2", "--device", "cpu", "--out", tmp_path / "b")
    assert line.endswith("train in one process (--nproc 1)"), line


# -- runs: what starts a run --------------------------------------------------------------------------------------
def test_a_run_directory_given_as_a_recipe_and_no_recipe_at_all(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text("")
    assert api_error(lambda: rnnkit.train(run)).endswith(f"to train it on, use resume=... {run}")
    assert cli_error(capsys, "train", run).endswith(f"to train it on, use --resume {run}")
    assert "(see rnnkit.recipes())" in api_error(lambda: rnnkit.train())
    assert "(see 'rnnkit recipes')" in cli_error(capsys, "train")


# -- tune: a study's options ------------------------------------------------------------------------------------------
def test_a_study_names_its_arguments_in_python_and_its_options_on_the_command_line(capsys, tmp_path):
    pytest.importorskip("optuna", reason="the tune extra is not installed: pip install 'rnnkit[tune]'")
    lr = {"type": "float", "low": 1e-3, "high": 1e-2}
    space = _csv(tmp_path, "[optim.lr]\ntype = 'float'\nlow = 1e-3\nhigh = 1e-2\n", "space.toml")
    text = api_error(lambda: rnnkit.tune("sms-spam", space={"optim.lr": lr}, trials=1, storage="x", out=tmp_path))
    assert text.startswith("storage=...: expected a database URL"), text
    text = api_error(
        lambda: rnnkit.tune("sms-spam", space={"optim.lr": lr}, trials=1, overrides={"optim.lr": 0.1}, out=tmp_path)
    )
    assert text.endswith('the field is both searched and fixed (overrides={"optim.lr": ...})'), text
    assert "(tune's out=...) or a database URL" in api_error(lambda: rnnkit.api.tune_report(tmp_path))
    tune = ("tune", "sms-spam", "--space", space, "--trials", 1, "--out", tmp_path)
    assert cli_error(capsys, *tune, "--storage", "x").startswith("rnnkit: error: --storage: expected a database URL")
    line = cli_error(capsys, *tune, "--set", "optim.lr=0.1")
    assert line.endswith("the field is both searched and fixed (--set optim.lr=...)"), line
    assert "(tune's --out) or a database URL" in cli_error(capsys, "tune", "report", tmp_path)


# -- diagnose, export: a run's reports and files ----------------------------------------------------------------------
def test_diagnose_and_export_name_the_argument_or_the_option(tiny_run, capsys, tmp_path):
    path = tiny_run("forecast")
    run = rnnkit.load(path)
    assert "which fractions=... needs" in api_error(lambda: run.data_size_curve([0.5]))
    assert "which --data-sizes needs" in cli_error(capsys, "diagnose", path, "--data-sizes", "0.5")
    assert cli_error(capsys, "diagnose", path, "--data-sizes", "abc").startswith("rnnkit: error: --data-sizes: ")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    text = api_error(lambda: run.export("torchscript", out=a_file / "model.pt"))
    assert text.startswith(f"out=...: cannot write {a_file}"), text
    line = cli_error(capsys, "export", path, "--format", "torchscript", "--out", a_file / "model.pt")
    assert line.startswith(f"rnnkit: error: --out: cannot write {a_file}"), line


# -- serve: where the server listens ----------------------------------------------------------------------------------
def test_an_address_the_server_cannot_have_names_host_or_its_option(tiny_run, capsys):
    pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'rnnkit[serve]'")
    from rnnkit.api import serve

    path = tiny_run("forecast")
    text = api_error(lambda: serve.serve([str(path)], host="203.0.113.7", port=8765))
    assert text.endswith("not an address of this machine; check host=..."), text
    line = cli_error(capsys, "serve", path, "--host", "203.0.113.7", "--port", 8765)
    assert line.endswith("not an address of this machine; check --host"), line
