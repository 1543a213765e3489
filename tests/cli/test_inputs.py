"""What a trained run is asked at inference: empty or overlong inputs are one-line errors (exit 2) on the command
line exactly as over HTTP (422 / 413, tests/serve), plots need an existing directory, a busy port is one line."""

from __future__ import annotations

import json
import socket

import pytest

from rnnkit.cli import main


def cli(capsys, *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def user_error(result: tuple[int, str, str], *needles: str) -> None:
    code, _, err = result
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_text_is_an_error_for_classify_translate_and_chat(tiny_run, capsys, text):
    user_error(
        cli(capsys, "classify", tiny_run("text-classify"), text), "text: nothing to classify (the text is empty)"
    )
    user_error(
        cli(capsys, "classify", tiny_run("text-classify"), "win a prize", text),
        "text 2: nothing to classify (the text is empty)",
    )
    user_error(cli(capsys, "classify", tiny_run("sequence-classify"), text), "text: nothing to classify")
    user_error(cli(capsys, "translate", tiny_run("translate"), text), "TEXT: nothing to translate (the text is empty)")
    user_error(cli(capsys, "chat", tiny_run("chat"), "--once", text), "--once: nothing to answer (the text is empty)")


def test_the_servers_input_length_cap_applies_on_the_command_line(tiny_run, capsys):
    long = " ".join(["hola"] * 5000)  # minutes of beam search if it were decoded
    user_error(
        cli(capsys, "translate", tiny_run("translate"), long),
        "TEXT is 24999 characters; the limit is 2000 (--max-input-length)",
    )
    user_error(
        cli(capsys, "classify", tiny_run("text-classify"), "win " * 600),
        "TEXT is 2400 characters; the limit is 2000 (--max-input-length)",
    )
    user_error(
        cli(capsys, "generate", tiny_run("lm"), "--prompt", "the " * 501, "--max-new-tokens", "2"),
        "prompt is 2004 characters; the limit is 2000",
    )
    user_error(cli(capsys, "chat", tiny_run("chat"), "--once", "hi " * 700), "--once is 2100 characters")
    numbers = " ".join(["0.5"] * 2001)  # sequence classifiers count values, as the server does
    user_error(
        cli(capsys, "classify", tiny_run("sequence-classify"), numbers), "TEXT is 2001 values; the limit is 2000"
    )
    code, out, err = cli(capsys, "classify", tiny_run("text-classify"), "win " * 600, "--max-input-length", "3000")
    assert code == 0 and out.count("\n") == 1, err


def test_translate_file_keeps_blank_lines_aligned(tiny_run, capsys, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("hola\n\n  \nbuenos dias\n")
    code, out, err = cli(capsys, "translate", tiny_run("translate"), "--file", src)
    assert code == 0, err
    assert len(out.split("\n")[:-1]) == 4  # one output line per input line
    code, out, err = cli(capsys, "translate", tiny_run("translate"), "--file", src, "--json")
    assert code == 0, err
    results = json.loads(out)
    assert [r["source"] for r in results] == ["hola", "", "", "buenos dias"]
    assert results[1]["translation"] == results[2]["translation"] == "" and results[0]["target_tokens"]
    only_blank = tmp_path / "blank.txt"
    only_blank.write_text("\n \n")
    user_error(cli(capsys, "translate", tiny_run("translate"), "--file", only_blank), "nothing to translate")


def test_plots_into_a_missing_directory_are_refused(tiny_run, capsys, tmp_path):
    target = tmp_path / "missing" / "att.png"
    user_error(
        cli(capsys, "translate", tiny_run("translate"), "hola", "--show-attention", target),
        f"--show-attention {target}: directory {target.parent} does not exist; create it first",
    )
    assert not target.parent.exists()
    code, _, err = cli(capsys, "translate", tiny_run("translate"), "hola", "--show-attention", tmp_path / "att.png")
    assert code == 0 and (tmp_path / "att.png").read_bytes().startswith(b"\x89PNG"), err


def test_a_busy_port_is_one_line(tiny_run, capsys):
    pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'rnnkit[serve]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        user_error(
            cli(capsys, "serve", tiny_run("text-classify"), "--port", port),
            f"cannot listen on 127.0.0.1:{port}: the port is in use (another server?); choose another with --port",
        )
    user_error(
        cli(capsys, "serve", tiny_run("text-classify"), "--host", "203.0.113.7", "--port", port),
        "not an address of this machine; check --host",
    )
