"""Where a config path is read from: the user's own files win and are never downloaded over; a registered path
comes from the cache (or vendored PTB); mistakes are one-line errors naming the field or directory."""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import run_cli
from rnnkit.datasets import drain_log, registry, resolve, store
from rnnkit.datasets.registry import BY_NAME, Dataset, File
from rnnkit.errors import UserError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNKIT_DATA_MIRROR", raising=False)
    return tmp_path / "cache"


def test_a_file_the_user_names_wins(cache, tmp_path, monkeypatch):
    (tmp_path / "d" / "sms-spam").mkdir(parents=True)
    mine = tmp_path / "d" / "sms-spam" / "SMSSpamCollection"
    mine.write_text("ham\thello\n")
    assert resolve("sms-spam/SMSSpamCollection", tmp_path / "d", "data.path") == mine
    assert resolve(str(mine), None, "data.path") == mine
    monkeypatch.chdir(tmp_path / "d")
    assert resolve("sms-spam/SMSSpamCollection", None, "data.path").resolve() == mine
    assert drain_log()["data.path"]["from"] == "path"
    assert not cache.exists()  # nothing fetched, nothing written


def test_registered_paths_come_from_the_cache_or_vendored_ptb(cache, monkeypatch):
    p = resolve("ptb/ptb.valid.txt", None, "data.train")
    assert p.name == "ptb.valid.txt.gz" and "vendor" in str(p)
    assert drain_log()["data.train"] == {"path": str(p.resolve()), "from": "vendored", "dataset": "ptb"}
    monkeypatch.setenv("RNNKIT_OFFLINE", "1")
    (cache / "sms-spam").mkdir(parents=True)  # a wrong file put by hand at the layout path is not adopted
    (cache / "sms-spam" / "SMSSpamCollection").write_text("ham\tnot the real file\n")
    with pytest.raises(UserError, match=r"data set 'sms-spam' could not be fetched \(.*offline.*\); put "):
        resolve("sms-spam/SMSSpamCollection", None, "data.path")
    assert store.read_manifest(BY_NAME["sms-spam"]) is None


def test_files_placed_by_hand_are_adopted_when_their_checksums_match(cache, monkeypatch):
    text = b"ham\thello\n"
    ds = Dataset("hand", "by hand", (File("hand/a.txt", hashlib.sha256(text).hexdigest(), len(text)),))
    monkeypatch.setitem(registry.BY_NAME, "hand", ds)
    monkeypatch.setitem(registry.BY_PATH, "hand/a.txt", ds)
    monkeypatch.setenv("RNNKIT_OFFLINE", "1")
    (cache / "hand").mkdir(parents=True)
    (cache / "hand" / "a.txt").write_bytes(text)
    assert resolve("hand/a.txt", None, "data.path") == cache / "hand" / "a.txt"
    assert store.read_manifest(ds)["source"].startswith("placed by hand")


def test_mistakes_are_one_line_errors(cache, tmp_path):
    with pytest.raises(UserError, match=r"^data_dir=\.\.\. .*nope: no such directory$"):
        resolve("ptb/ptb.train.txt", tmp_path / "nope", "data.train")
    (tmp_path / "adir").mkdir()
    with pytest.raises(UserError, match=r"^data.train: .*adir is a directory; expected a file$"):
        resolve(str(tmp_path / "adir"), None, "data.train")
    with pytest.raises(UserError, match=r"belongs to data set 'sms-spam': leave out data_dir=\.\.\. "):
        resolve("sms-spam/SMSSpamCollection", tmp_path / "adir", "data.path")
    with pytest.raises(
        UserError, match=r'not part of a data set rnnkit knows.*data_dir=\.\.\. or overrides=\{"data.path"'
    ):
        resolve("nowhere/x.txt", None, "data.path")
    with pytest.raises(UserError, match=r'is not set; point it at a file \(overrides=\{"data.path": PATH\}\)$'):
        resolve("", None, "data.path")


def test_the_messages_name_the_python_argument_and_the_cli_says_its_option(cache, tmp_path):
    """Python reads data_dir=... and overrides={...} - the arguments of rnnkit.train; the command line the
    options --data-dir and --set KEY=VALUE (rnnkit.cli says the first in the words of the second)."""
    from rnnkit.commands.common import in_cli_words

    messages = []
    for name, data_dir in (("sms-spam/SMSSpamCollection", tmp_path), ("nowhere/x.txt", tmp_path), ("", None)):
        with pytest.raises(UserError) as e:
            resolve(name, data_dir, "data.path")
        assert "--" not in str(e.value), str(e.value)
        messages.append(in_cli_words(str(e.value), {}))
    assert "leave out --data-dir to fetch it" in messages[0] and "data_dir" not in messages[0]
    assert messages[1].endswith(
        "(looked in --data-dir " + str(tmp_path) + "); pass another --data-dir or --set data.path=PATH"
    )
    assert messages[2] == "data.path is not set; point it at a file (--set data.path=PATH)"


def test_a_missing_data_dir_fails_before_the_run_directory_is_written(tmp_path):
    out = tmp_path / "run"
    proc = run_cli(
        "train",
        "ptb-small",
        "--data-dir",
        str(tmp_path / "missing"),
        "--out",
        str(out),
        "--max-steps",
        "1",
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"rnnkit: error: --data-dir {tmp_path / 'missing'}: no such directory"
    assert not (out / "run.json").exists()


def test_run_json_says_where_the_data_came_from(cache, tmp_path):
    from conftest import TINY_LM  # `cache`: an empty cache and no mirror, so PTB comes from the vendored copy

    out = tmp_path / "run"
    run_cli("train", "ptb-small", "--out", str(out), "--max-steps", "2", "-q", *TINY_LM)
    meta = json.loads((out / "run.json").read_text())
    assert meta["data_dir"] is None
    assert meta["data"]["data.train"]["from"] == "vendored" and meta["data"]["data.train"]["dataset"] == "ptb"
    assert meta["data"]["data.test"]["path"].endswith("ptb.test.txt.gz")
