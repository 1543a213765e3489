"""The probe suite: classes of bad input a user can give, walked over every command, every API method and every
endpoint. Nothing a user can cause may end in a traceback: the command line answers one line naming the file,
field or option and exits 2; the Python API raises ``rnnkit.errors.UserError`` - for a bad argument a
``UserTypeError`` / ``UserValueError``, also the ``TypeError`` / ``ValueError`` a Python user catches, naming the
call and the argument (``generate(prompt=...) must be a str, got int``); the server answers JSON of one shape.

The cases are classes, not single values: each is tried for every command (or method) it applies to, and the
texts and JSON bodies are drawn by Hypothesis. Everything runs in this process on the session's tiny runs
(conftest.tiny_run), so the whole file stays within a few seconds of work beyond them.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit.cli import main
from rnnkit.errors import ArgumentError, RenamedArgumentWarning, UserError, UserTypeError, UserValueError

LONG = "x" * 300  # a path component over every file system's 255-byte limit
PROBE = settings(
    max_examples=20, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(result: tuple[int, str, str], *needles: str) -> str:
    """Exit status 2 and one line on stderr (``rnnkit: error: ...``) holding every needle."""
    code, _, err = result
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("rnnkit: warning:")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rnnkit: error: "), (code, err)
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# -- damaged run directories: every command that opens a run -----------------------------------------------------------
def _damage(run: Path, how: str) -> Path:
    if how == "missing":
        return run / "nothing-here"
    if how == "a file":
        return run / "config.toml"
    if how == "too long":
        return run.parent / LONG
    if how == "empty directory":
        (run / "empty").mkdir(exist_ok=True)
        return run / "empty"
    copy = run.parent / f"damaged-{how.replace(' ', '-')}"
    if copy.exists():
        return copy
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("tensorboard", "*.png", "export"))
    best, last = copy / "checkpoints" / "best.pt", copy / "checkpoints" / "last.pt"
    if how == "config not TOML":
        (copy / "config.toml").write_text("task = [unclosed\n")
    elif how == "no checkpoints":
        best.unlink()
        last.unlink()
    elif how == "checkpoint cut short":
        for p in (best, last):
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif how == "checkpoint parts missing":
        for p, part in ((best, "artifacts"), (last, "loop")):
            ckpt = torch.load(p, weights_only=True)
            del ckpt[part]
            torch.save(ckpt, p)
    elif how == "model of another size":  # config.toml edited after training
        text = (copy / "config.toml").read_text()
        assert "hidden = 32" in text
        (copy / "config.toml").write_text(text.replace("hidden = 32", "hidden = 48", 1))
    return copy


DAMAGE = [
    "missing",
    "a file",
    "too long",
    "empty directory",
    "config not TOML",
    "no checkpoints",
    "checkpoint cut short",
    "checkpoint parts missing",
    "model of another size",
]
# every command that opens a run directory, with what else it needs
OPENERS = {
    "eval": [],
    "generate": ["--max-new-tokens", "2"],
    "translate": ["hola"],
    "chat": ["--once", "hi"],
    "classify": ["hello"],
    "export": ["--format", "torchscript"],
    "serve": ["--port", "1"],
    "train --resume": ["--max-steps", "25"],
    "diagnose": [],
}
NEEDS_CHECKPOINT = {"eval", "generate", "translate", "chat", "classify", "export", "serve", "train --resume"}


@pytest.mark.parametrize("how", DAMAGE)
def test_every_command_answers_a_damaged_run_in_one_line(tiny_run, capsys, how):
    run = _damage(tiny_run("translate"), how)  # a seq2seq run: hidden = 32, served as a translator
    for verb, extra in OPENERS.items():
        if verb == "serve" and how not in ("missing", "a file", "too long", "empty directory", "config not TOML"):
            continue  # a server whose model loads would start listening (port 1 then refuses in one line anyway)
        if verb == "diagnose" and how in ("no checkpoints", "checkpoint cut short", "checkpoint parts missing"):
            continue  # reads the records, not the checkpoints
        if verb == "chat" and how not in ("missing", "a file", "too long", "empty directory", "config not TOML"):
            continue  # a translator refuses to chat: checked below
        head = ["train", "--resume"] if verb == "train --resume" else [verb]
        code, out, err = cli(capsys, *head, run, *extra)
        if code == 0:
            assert verb not in NEEDS_CHECKPOINT or how not in DAMAGE[4:], (verb, how, out)
            continue
        one_line((code, out, err), str(run) if how != "too long" else "file name too long")


def test_a_run_of_another_kind_is_refused_by_what_it_was_trained_for(tiny_run, capsys):
    one_line(cli(capsys, "chat", tiny_run("translate"), "--once", "hola"), "was trained for translate, not for chat")
    one_line(cli(capsys, "translate", tiny_run("chat"), "hi"), "was trained for chat, not for translate")
    one_line(cli(capsys, "generate", tiny_run("text-classify")), "does not generate text")
    one_line(cli(capsys, "forecast", tiny_run("lm")), "does not forecast")


# -- files a command writes: every option that names one --------------------------------------------------------------
@pytest.mark.parametrize("where", ["missing directory", "a directory", "under a file", "too long", "empty"])
def test_every_output_option_answers_an_impossible_path_in_one_line(tiny_run, capsys, tmp_path, where):
    target = {
        "missing directory": tmp_path / "missing" / "out.png",
        "a directory": tmp_path,
        "under a file": tiny_run("lm") / "config.toml" / "out.png",
        "too long": tmp_path / f"{LONG}.png",
        "empty": "",
    }[where]
    lm, fc, tr = tiny_run("lm"), tiny_run("forecast"), tiny_run("translate")
    writers = [
        ["diagnose", lm, "--plot", target],
        ["diagnose", "gradients", "--steps", "3", "--hidden", "2", "--plot", target],
        ["forecast", fc, "--plot", target],
        ["translate", tr, "hola", "--show-attention", target],
    ]
    said = {"under a file": "config.toml is a file, not a directory", "missing directory": "create it first"}
    for argv in writers:
        one_line(cli(capsys, *argv), "--plot" if "--plot" in argv else "--show-attention", said.get(where, ""))
    if where in ("under a file", "too long"):  # a missing directory is made; an existing one may hold a new run
        one_line(cli(capsys, "train", "parity", "--out", target, "--max-steps", "1"))
        one_line(cli(capsys, "export", lm, "--out", target))
    if where not in ("empty", "a directory"):  # (a directory is a fine --data-dir)
        one_line(cli(capsys, "eval", lm, "--data-dir", target), "--data-dir")


def test_paths_the_system_cannot_look_up_are_one_line_everywhere(tiny_run, capsys, tmp_path):
    long = tmp_path / LONG
    one_line(cli(capsys, "train", "parity", "--out", long / "run", "--max-steps", "1"), "file name too long")
    one_line(cli(capsys, "train", "parity", "--data-dir", long, "--max-steps", "1"), "file name too long")
    one_line(cli(capsys, "train", f"{long}.toml", "--check"), "file name too long")
    one_line(cli(capsys, "train", "sms-spam", "--set", f"data.path={long}", "--check"), f"--set data.path={long}")
    one_line(cli(capsys, "forecast", tiny_run("forecast"), "--csv", f"{long}.csv"), "file name too long")
    one_line(cli(capsys, "translate", tiny_run("translate"), "--file", long), "file name too long")
    one_line(cli(capsys, "tune", "parity", "--space", long, "--trials", "1"), "file name too long")


def test_misleading_messages_now_say_what_is_wrong(tiny_run, capsys, tmp_path, monkeypatch):
    one_line(cli(capsys, "train", "ptb-small", "--set", "model.hidden=", "--check"), "model.hidden is empty")
    one_line(cli(capsys, "train", tmp_path, "--check"), "is a directory, not a recipe")
    one_line(cli(capsys, "train", tiny_run("lm"), "--check"), f"to train it on, use --resume {tiny_run('lm')}")
    one_line(cli(capsys, "diagnose", "gradients", "--cells", " , "), "--cells names no cell")
    one_line(cli(capsys, "diagnose", tiny_run("lm"), "--data-sizes", ","), "no fractions given")
    one_line(cli(capsys, "forecast", tiny_run("forecast"), "--target", " , "), "--target names no column")
    monkeypatch.setenv("RNNKIT_DATA_RETRIES", "-1")
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("RNNKIT_DATA_MIRROR", "http://127.0.0.1:9/")  # read before any connection is tried
    monkeypatch.delenv("RNNKIT_OFFLINE", raising=False)
    one_line(cli(capsys, "data", "get", "sms-spam", "--quiet"), "RNNKIT_DATA_RETRIES: expected a whole number")


def test_a_read_only_data_cache_is_one_line(capsys, tmp_path, monkeypatch):
    """Nothing can be fetched into a cache rnnkit cannot write (here its lock folder cannot be made: a file is in
    the way, as a read-only mount refuses it): the fetch is refused naming the cache, not a traceback."""
    cache = tmp_path / "cache"
    (cache / ".rnnkit").mkdir(parents=True)
    (cache / ".rnnkit" / "locks").write_text("")
    monkeypatch.setenv("RNNKIT_DATA", str(cache))
    monkeypatch.setenv("RNNKIT_OFFLINE", "1")
    one_line(cli(capsys, "data", "get", "sms-spam", "--quiet"), "rnnkit cannot fetch it there", str(cache))


def test_resume_refuses_what_it_would_ignore(tiny_run, capsys, tmp_path):
    run = tiny_run("lm")
    one_line(cli(capsys, "train", "--resume", run, "--out", tmp_path / "elsewhere"), "stays in its own directory")
    one_line(
        cli(capsys, "train", "sms-spam", "--resume", run), "RECIPE 'sms-spam': ", "trained with recipe 'ptb-small'"
    )
    assert not (tmp_path / "elsewhere").exists()


def test_python_users_read_the_argument_not_the_option(tiny_run, capsys, tmp_path):
    """A path the API refuses names the Python argument (``train(data_dir=...)``), the command line its option
    (``--data-dir``): a missing data directory, a name the system cannot look up, a resume given --out or a recipe."""
    run, long = tiny_run("lm"), tmp_path / LONG
    cases = [
        (lambda: rnnkit.train("ptb-small", data_dir=tmp_path / "nope"), r"train\(data_dir=\.\.\.\) .*nope: no such"),
        (
            lambda: rnnkit.check("ptb-small", data_dir=tmp_path / "nope"),
            r"check\(data_dir=\.\.\.\) .*no such directory",
        ),
        (lambda: rnnkit.load(run, data_dir=long), r"load\(data_dir=\.\.\.\) .*: file name too long"),
        (lambda: rnnkit.train("ptb-small", out=long / "run"), r"train\(out=\.\.\.\) .*: file name too long"),
        (lambda: rnnkit.train(resume=long), r"train\(resume=\.\.\.\) .*: file name too long"),
        (lambda: rnnkit.train(resume=run, out=tmp_path / "x"), r"train\(out=\.\.\.\) .*stays in its own directory"),
        (lambda: rnnkit.train("sms-spam", resume=run), r"train\(recipe=\.\.\.\) 'sms-spam': .*'ptb-small'"),
        (lambda: rnnkit.load(tiny_run("forecast")).forecast(forecaster="best"), r"forecast\(forecaster=\.\.\.\)"),
    ]
    too_long = (lambda: rnnkit.load(tiny_run("text-classify")).classify("a" * 50, max_input_length=10), "limit is 10")
    for call, message in [*cases, too_long]:
        with pytest.raises(UserValueError, match=message) as e:
            call()
        assert "--" not in str(e.value), str(e.value)
    one_line(cli(capsys, "train", "ptb-small", "--data-dir", tmp_path / "nope", "--check"), "--data-dir ", "no such")
    one_line(cli(capsys, "train", "ptb-small", "--out", long, "--max-steps", "1"), f"--out {long}: file name too long")
    one_line(cli(capsys, "eval", run, "--data-dir", long), f"--data-dir {long}: file name too long")
    text = cli(capsys, "classify", tiny_run("text-classify"), "a" * 50, "--max-input-length", "10")
    one_line(text, "TEXT is 50 characters; the limit is 10 (--max-input-length)")


def test_an_input_over_the_limit_is_named_as_the_caller_gave_it(tiny_run, capsys):
    """Run.classify's inputs are ``inputs`` and Run.translate's ``texts``, not ``text``: the length error names the
    Python argument (and which item of a list, from 0); the command line says TEXT, as for the other errors of it."""
    spam, spa, digits = (rnnkit.load(tiny_run(k)) for k in ("text-classify", "translate", "sequence-classify"))
    cases = [
        (lambda: spam.classify("a" * 50, max_input_length=10), r"^classify\(inputs=\.\.\.\) is 50 characters"),
        (lambda: spam.classify(["hi", "a" * 50], max_input_length=10), r"^classify\(inputs\[1\]=\.\.\.\) is 50"),
        (lambda: spam.predict(["a" * 50], max_input_length=10), r"^classify\(inputs=\.\.\.\) is 50 characters"),
        (lambda: digits.classify(np.zeros((8, 8)), max_input_length=10), r"^classify\(inputs=\.\.\.\) is 64 values"),
        (lambda: spa.translate("hola " * 10, max_input_length=10), r"^translate\(texts=\.\.\.\) is 50 characters"),
        (lambda: spa.translate(["hola", "hola " * 10], max_input_length=10), r"^translate\(texts\[1\]=\.\.\.\)"),
    ]
    for call, message in cases:
        with pytest.raises(UserValueError, match=message) as e:
            call()
        assert "text=" not in str(e.value) and "--" not in str(e.value), str(e.value)
    two = cli(capsys, "classify", tiny_run("text-classify"), "hi", "a" * 50, "--max-input-length", "10")
    one_line(two, "TEXT[1] is 50 characters; the limit is 10 (--max-input-length)")
    one_line(cli(capsys, "translate", tiny_run("translate"), "hola " * 10, "--max-input-length", "10"), "TEXT is 50")


def test_deep_messages_name_the_python_argument_and_the_cli_option(tiny_run, capsys, tmp_path):
    """A data file not found under the data directory, a forecast horizon longer than the series: Python reads the
    argument (data_dir=..., horizon=...), the command line the option (--data-dir, --horizon)."""
    run = rnnkit.load(tiny_run("forecast"))
    cases = [
        (
            lambda: rnnkit.train("sms-spam", data_dir=tmp_path, max_steps=1, progress=False),
            r"leave out data_dir=\.\.\.",
        ),
        (lambda: run.forecast_report(horizon=100_000), r"horizon=\.\.\. 100000 is longer than the series"),
        (lambda: run.forecast_report(horizon=100_000, holdout=True), r"holdout=\.\.\. needs history before"),
    ]
    for call, message in cases:
        with pytest.raises(UserError, match=message) as e:
            call()
        assert "--" not in str(e.value), str(e.value)
    out = tmp_path / "run"
    one_line(cli(capsys, "train", "sms-spam", "--data-dir", tmp_path, "--out", out), "leave out --data-dir to fetch")
    text = one_line(
        cli(capsys, "forecast", tiny_run("forecast"), "--horizon", "100000", "--holdout"), "--horizon 100000"
    )
    assert "--holdout needs history before the last --horizon points" in text and "=..." not in text


def test_json_output_is_strict_json(capsys):
    from rnnkit.commands.common import print_json

    capsys.readouterr()
    print_json({"ppl": math.nan, "inf": -math.inf, "n": np.int64(3), "x": np.float32(0.5), "a": np.arange(2)})
    out = capsys.readouterr().out
    assert json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == {
        "ppl": None,
        "inf": None,
        "n": 3,
        "x": 0.5,
        "a": [0, 1],
    }


# -- the Python API: every method, every argument ----------------------------------------------------------------------
NOT_INT = [None, "5", 2.5, True, [1], math.nan]
NOT_NUMBER = ["0.5", True, [1], math.nan, math.inf]
NOT_TEXT = [None, 123, 1.5, b"bytes", ["a"], {"a": 1}]
RESULT = {"source": "hola", "translation": "hi", "source_tokens": ["hola"], "target_tokens": ["hi"], "attention": None}
# method -> the tiny run it needs, the arguments that make a call valid, and per argument values it must refuse
API: dict[str, tuple[str, dict[str, Any], dict[str, list[Any]]]] = {
    "generate": (
        "lm",
        {"prompt": "the", "max_new_tokens": 1},
        {
            "prompt": NOT_TEXT,
            "max_new_tokens": [*NOT_INT, 0, -1, 10**12],
            "temperature": [*NOT_NUMBER, -1.0],
            "top_k": [*NOT_INT[1:], -1],
            "top_p": [*NOT_NUMBER, 0.0, 1.5],
            "seed": ["1", 1.0, -1, 2**40],
            "max_input_length": ["9", 0, 1.5],
        },
    ),
    "classify": ("text-classify", {"inputs": "win a prize"}, {"inputs": [None, 123, b"x", [], ["ok", 5]]}),
    "translate": (
        "translate",
        {"texts": "hola"},
        {
            "texts": [None, 5, [], ["hola", None]],
            "beam": [*NOT_INT[1:], 0],
            "max_new_tokens": [*NOT_INT[1:], 0],
            "length_penalty": [*NOT_NUMBER, -1.0],
            "details": [None, 1, "yes"],
        },
    ),
    "chat": (
        "chat",
        {"text": "hi"},
        {
            "text": NOT_TEXT,
            "history": ["one turn", [1], 5],
            "replies": [*NOT_INT[1:], 0],
            "decoding": [5, "nucleus"],
            "top_k": [*NOT_INT[1:], -1],
            "temperature": [*NOT_NUMBER, -0.5],
            "beam": [*NOT_INT[1:], 0],
            "seed": ["1", -1],
            "max_new_tokens": [*NOT_INT[1:], 0],
        },
    ),
    "forecast": (
        "forecast",
        {},
        {
            "history": ["abc", b"x", {"a": 1}, [], [1, "x"], [[1, 2], [3]], [math.nan], [[[1.0]]], 5],
            "horizon": [*NOT_INT[1:], 0],
            "level": [*NOT_NUMBER, 0.0, 1.0],
            "seed": ["0", None, -1],
        },
    ),
    "forecast_report": (
        "forecast",
        {},
        {
            "csv": [5, ""],
            "target": [5, " , "],
            "horizon": [*NOT_INT[1:], 0],
            "holdout": [None, 1],
            "level": NOT_NUMBER,
            "plot": [5, "/nonexistent-dir/x.png"],
        },
    ),
    "evaluate": ("text-classify", {}, {"split": [5, "train", ""]}),
    "report": ("text-classify", {}, {"split": [5, "train"]}),
    "diagnose": ("lm", {}, {"target_loss": [*NOT_NUMBER, -1.0], "plot": [5, "", "/nonexistent-dir/d.png"]}),
    "data_size_curve": (
        "lm",
        {"fractions": [0.5]},
        {"fractions": ["0.5", [], [0.0], [2], ["a"]], "overrides": ["x", 5], "plot": [5, "/nonexistent-dir/s.png"]},
    ),
    "resume": (
        "lm",
        {},
        {
            "max_steps": [*NOT_INT[1:], 0],
            "max_time": [*NOT_NUMBER, 0.0],
            "max_epochs": [*NOT_INT[1:], 0],
            "overrides": ["model.hidden=3", 5, {5: 1}, {"nosection": 1}],
            "callbacks": [print, 5, [5]],
            "progress": ["yes", 1],
            "device": [5, "gpu"],
        },
    ),
    "export": ("lm", {}, {"format": [5, "tflite"], "out": [5, ""]}),
    "plot_attention": ("translate", {"result": RESULT, "path": "a.png"}, {"result": [None, {}, "x"], "path": [5, ""]}),
    "can": ("lm", {"service": "generate"}, {"service": [None, "fly"]}),
    "require": ("lm", {"service": "generate"}, {"service": [None, "fly"]}),
    "format_metrics": ("lm", {"metrics": {}}, {"metrics": [None, [1], "ppl"]}),
}


@pytest.fixture(scope="module")
def runs(tiny_run):
    return {kind: rnnkit.load(tiny_run(kind), device="cpu") for kind in {kind for kind, _, _ in API.values()}}


@pytest.mark.parametrize("method", list(API))
def test_every_api_argument_is_checked_where_it_comes_in(runs, method):
    """Each bad value of each argument is one UserTypeError / UserValueError naming ``method(argument=...)``: never
    a TypeError from deep inside, never a message that speaks of command-line flags."""
    kind, valid, bad = API[method]
    fn = getattr(runs[kind], method)
    for name, values in bad.items():
        for value in values:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RenamedArgumentWarning)
                with pytest.raises(UserError) as info:
                    fn(**{**valid, name: value})
            e = info.value
            assert isinstance(e, ArgumentError), (method, name, value, repr(e))
            assert isinstance(e, (UserTypeError, UserValueError)) and isinstance(e, (TypeError, ValueError))
            assert e.argument.split("[")[0] == name, (method, name, value, str(e))
            assert str(e).startswith(f"{method if method != 'resume' else 'resume'}({e.argument}=...) "), str(e)
            assert "--" not in e.reason.split("(rnnkit serve")[0] or name == "overrides", str(e)


def test_the_issues_cases_name_the_argument(runs):
    lm, fc = runs["lm"], runs["forecast"]
    for call, message in (
        (lambda: lm.generate(None), "generate(prompt=...) must be a str, got NoneType"),
        (lambda: lm.generate(123), "generate(prompt=...) must be a str, got int"),
        (lambda: lm.generate("the", words="5"), "generate(max_new_tokens=...) must be an int, got str ('5')"),
        (lambda: fc.forecast(horizon=2.5), "forecast(horizon=...) must be an int, got float (2.5)"),
        (lambda: fc.forecast(history="abc"), "forecast(history=...) must be numbers"),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RenamedArgumentWarning)
            with pytest.raises((TypeError, ValueError)) as info:
                call()
        assert isinstance(info.value, UserError) and str(info.value).startswith(message), str(info.value)


def test_module_functions_check_their_arguments(tiny_run, tmp_path):
    cases = [
        (lambda: rnnkit.train(5), "train(recipe=...)"),
        (lambda: rnnkit.train("parity", max_steps="5"), "train(max_steps=...) must be an int"),
        (lambda: rnnkit.train("parity", out=5), "train(out=...)"),
        (lambda: rnnkit.train("parity", callbacks=print), "train(callbacks=...)"),
        (lambda: rnnkit.train("parity", progress="no"), "train(progress=...)"),
        (lambda: rnnkit.train("parity", nproc=0), "train(nproc=...)"),
        (lambda: rnnkit.load(5), "load(path=...)"),
        (lambda: rnnkit.load(tiny_run("lm"), checkpoint="first"), "load(checkpoint=...)"),
        (lambda: rnnkit.load(tiny_run("lm"), device="gpu"), "load(device=...)"),
        (lambda: rnnkit.check("parity", overrides=["model.hidden=3"]), "check(overrides=...)"),
        (lambda: rnnkit.tune("parity", space={}, trials="3"), "tune(trials=...)"),
        (lambda: rnnkit.tune("parity", space={}, trials=1, sampler="bayes"), "tune(sampler=...)"),
        (lambda: rnnkit.api.gradient_flow(["lstm", "elman"]), "gradient_flow(cells=...) unknown cell(s) elman"),
        (lambda: rnnkit.api.gradient_flow([]), "gradient_flow(cells=...) names no cell"),
        (lambda: rnnkit.api.tune_report(5), "tune_report(target=...)"),
    ]
    for call, message in cases:
        with pytest.raises((TypeError, ValueError)) as info:
            call()
        assert isinstance(info.value, UserError) and message in str(info.value), str(info.value)
    assert not (tmp_path / "runs").exists()


@PROBE
@given(text=st.text(max_size=60))
def test_any_text_is_answered_or_refused_in_one_line(runs, text):
    """Any Unicode text (empty, whitespace, control characters, lone surrogates, unknown words) as every text input."""
    for call in (
        lambda: runs["lm"].generate(text, max_new_tokens=1),
        lambda: runs["text-classify"].classify(text),
        lambda: runs["translate"].translate(text, max_new_tokens=2, beam=1),
        lambda: runs["chat"].chat(text, max_new_tokens=2, replies=1),
    ):
        try:
            call()
        except UserError as e:
            assert str(e) and "\n" not in str(e).strip(), repr(e)


@PROBE
@given(
    history=st.one_of(
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=40),
        st.lists(st.integers(-(10**6), 10**6), min_size=30, max_size=40),
        st.text(max_size=5),
        st.none(),
    ),
    horizon=st.one_of(st.none(), st.integers(-2, 30), st.floats(allow_nan=True)),
)
def test_any_history_is_forecast_or_refused(runs, history, horizon):
    try:
        runs["forecast"].forecast(history=history, horizon=horizon)
    except UserError as e:
        assert str(e) and "\n" not in str(e).strip(), repr(e)


def test_the_old_argument_names_work_for_one_release_with_a_warning(runs):
    with pytest.warns(RenamedArgumentWarning, match=r"generate\(words=\.\.\.\) is now generate\(max_new_tokens"):
        old = runs["lm"].generate("the", words=3, temperature=0.0)
    assert old == runs["lm"].generate("the", max_new_tokens=3, temperature=0.0)
    with pytest.warns(RenamedArgumentWarning, match="max_length"):
        assert runs["translate"].translate("hola", max_length=2) == runs["translate"].translate(
            "hola", max_new_tokens=2
        )
    with pytest.warns(RenamedArgumentWarning, match="max_words"):
        runs["chat"].chat("hi", max_words=2, seed=1)
    with pytest.raises(UserValueError, match="give only max_new_tokens"):
        runs["lm"].generate("the", max_new_tokens=5, words=3)


def test_the_old_options_work_for_one_release_with_a_warning(tiny_run, capsys):
    code, out, err = cli(capsys, "generate", tiny_run("lm"), "--prompt", "the", "--words", "3", "--greedy")
    assert code == 0 and "rnnkit: warning: --words is now --max-new-tokens" in err, err
    assert out == cli(capsys, "generate", tiny_run("lm"), "--prompt", "the", "--max-new-tokens", "3", "--greedy")[1]
    code, out, err = cli(capsys, "translate", tiny_run("translate"), "hola", "--max-length", "2")
    assert code == 0 and "--max-length is now --max-new-tokens" in err, err
    code, out, err = cli(capsys, "chat", tiny_run("chat"), "--once", "hi", "--max-words", "2", "--seed", "1")
    assert code == 0 and "--max-words is now --max-new-tokens" in err, err
    one_line(cli(capsys, "generate", tiny_run("lm"), "--words", "3", "--max-new-tokens", "3"), "old name")


# -- a callback that raises ------------------------------------------------------------------------------------------
PARITY = {"data.size": 200, "data.bits": 6, "train.batch_size": 20, "train.log_every": 2, "train.tensorboard": False}


@pytest.mark.parametrize("raised", [RuntimeError("my callback broke"), KeyboardInterrupt()])
def test_a_callback_that_raises_stops_after_saving_the_step(tmp_path, raised):
    """Training stops as a budget stop does - last.pt holds the step the callback saw - then the exception is
    raised (a KeyboardInterrupt is a Ctrl-C: the run stops "interrupted" and says how to resume)."""

    def callback(record: dict[str, Any]) -> None:
        if record.get("step") == 4 and "split" not in record:
            raise raised

    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(raised, KeyboardInterrupt):
            run = rnnkit.train("parity", out=out, overrides=PARITY, max_steps=8, callbacks=[callback], progress=False)
            assert run.summary["stopped"] == "interrupted" and run.summary["resume"].endswith(str(out))
        else:
            with pytest.raises(RuntimeError, match="my callback broke"):
                rnnkit.train("parity", out=out, overrides=PARITY, max_steps=8, callbacks=[callback], progress=False)
    last = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert last["loop"]["step"] == 4  # the step the callback saw, saved
    assert not (out / ".lock.json").exists()
    again = rnnkit.train(resume=out, max_steps=6, progress=False)  # and it resumes from there
    assert again.summary["step"] == 6


# -- the server: every endpoint, any body --------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["prompt", "max_new_tokens", "text", "texts", "sequence", "history", "horizon", "beam", "seed", "model"]


@pytest.fixture(scope="module")
def client(tiny_run):
    testclient = pytest.importorskip("fastapi.testclient", reason="the serve extra is not installed")
    kinds = {"lm": "lm", "spam": "text-classify", "airline": "forecast", "spa": "translate", "chat": "chat"}
    app = rnnkit.api.serve.app([f"{name}={tiny_run(kind)}" for name, kind in kinds.items()], max_input_length=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with testclient.TestClient(app, raise_server_exceptions=False) as c:
            yield c


def error_shape(r: Any) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"detail", "errors"} and isinstance(body["detail"], str) and body["detail"], body
        assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"]), body


@PROBE
@given(body=st.one_of(JSON, st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4)))
def test_any_json_body_is_answered_in_the_one_shape(client, body):
    for endpoint in ("generate", "translate", "chat", "classify", "forecast"):
        error_shape(client.post(f"/v1/{endpoint}", json=body))


@PROBE
@given(raw=st.binary(max_size=64) | st.sampled_from([b"[" * 5000, b'{"prompt": "\xc3\x28"}', b"{", b"", b"null"]))
def test_any_bytes_are_a_json_422(client, raw):
    r = client.post("/v1/generate", content=raw, headers={"content-type": "application/json"})
    error_shape(r)
    assert r.status_code == 422, r.text


def test_a_body_python_will_not_parse_is_said_in_the_clients_words(client):
    body = b'{"prompt": "a", "max_new_tokens": 1' + b"0" * 5000 + b"}"
    r = client.post("/v1/generate", content=body, headers={"content-type": "application/json"})
    error_shape(r)
    assert r.status_code == 422 and "a number too long to read (over 4300 digits)" in r.json()["detail"], r.text
    assert "sys." not in r.text


def test_strict_types_and_the_server_limits_for_every_length(client):
    for body in (
        {"prompt": "the", "max_new_tokens": "5"},
        {"prompt": "the", "max_new_tokens": 5.0},
        {"prompt": "the", "max_new_tokens": True},
        {"prompt": 5, "max_new_tokens": 5},
    ):
        r = client.post("/v1/generate", json=body)
        error_shape(r)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"], r.text
    for endpoint, body in (
        ("generate", {"prompt": "the", "max_new_tokens": 10**6}),
        ("translate", {"text": "hola", "max_new_tokens": 10**6}),
        ("chat", {"text": "hi", "max_new_tokens": 10**6}),
    ):
        r = client.post(f"/v1/{endpoint}", json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["max_new_tokens"], r.text
    assert client.post("/v1/translate", json={"text": "hola", "max_new_tokens": 2}).status_code == 200
    for method, path in (("GET", "/v1/generate"), ("GET", "/v2/nothing"), ("DELETE", "/healthz")):
        error_shape(client.request(method, path))
