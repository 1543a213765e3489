import gzip

import pytest

from rnnkit.data.text import find_data_file, read_lines, read_text, split_lines
from rnnkit.errors import UserError


def test_reads_utf8_and_gzip(tmp_path):
    (tmp_path / "a.txt").write_text("¿Cómo te llamas?\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("hello\n")
    assert read_text(tmp_path / "a.txt") == "¿Cómo te llamas?\n"
    assert read_text(find_data_file("b.txt", tmp_path, "data.train")) == "hello\n"


def test_non_utf8_names_line_and_column(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("ok line\nsecond ok\nbad caf\xe9 here\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.txt: line 3, column 8: not valid UTF-8 \(byte 0xe9\)"):
        read_text(p)


def test_binary_file_names_line(tmp_path):
    p = tmp_path / "bin.txt"
    p.write_bytes(b"text\nmore\n\x00\x01\x02")
    with pytest.raises(UserError, match="line 3: binary data"):
        read_text(p)


def test_empty_and_missing(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(UserError, match="file is empty"):
        read_text(tmp_path / "empty.txt")
    with pytest.raises(UserError, match="data.train: file not found: nothere.txt"):
        find_data_file("nothere.txt", tmp_path, "data.train")


def test_lines_split_on_newline_only(tmp_path):
    # U+0085 and U+2028 occur inside real sentences; str.splitlines() would break there and shift line numbers
    f = tmp_path / "c.txt"
    f.write_text("one\u0085two\r\nthree\u2028four\n\nlast\n", encoding="utf-8")
    assert read_lines(f) == ["one\u0085two", "three\u2028four", "", "last"]
    assert split_lines("a\nb") == ["a", "b"]
