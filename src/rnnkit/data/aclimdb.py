"""The Large Movie Review Dataset (Maas et al. 2011) in its own layout: ``aclImdb/{train,test}/{pos,neg}/*.txt``.

Read straight from the distributed archive (``aclImdb_v1.tar.gz``, 84 MB; no unpacking) or from the unpacked
directory. One review per file; the label is the folder name; ``unsup/`` (unlabelled reviews) is ignored. The
reviews contain HTML line breaks (``<br />``), which become newlines. Files are read in sorted order, so the
examples and hence the split do not depend on the archive's member order.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

from rnnkit.data.labelled_text import Example
from rnnkit.errors import UserError

SPLITS = ("train", "test")
_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/[^/]+\.txt$")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _decode(raw: bytes, where: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{where}: byte {e.start}: not valid UTF-8") from None
    return _BR.sub("\n", text).strip()


def read_aclimdb(path: Path) -> dict[str, list[Example]]:
    """split ("train", "test") -> examples with labels "pos"/"neg", from the archive or its unpacked directory."""
    found: list[tuple[str, str, str, str]] = []  # (split, name, label, text)
    if path.is_dir():
        for p in sorted(path.rglob("*.txt")):
            m = _MEMBER.search(p.relative_to(path).as_posix())
            if m:
                found.append((m.group(1), p.as_posix(), m.group(2), _decode(p.read_bytes(), str(p))))
    else:
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    m = _MEMBER.search(member.name)
                    if not (m and member.isfile()):
                        continue
                    f = tar.extractfile(member)
                    assert f is not None
                    found.append((m.group(1), member.name, m.group(2), _decode(f.read(), f"{path}:{member.name}")))
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UserError(f"{path}: not a readable aclImdb archive: {str(e).splitlines()[0]}") from None
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for split, name, label, text in sorted(found, key=lambda r: (r[0], r[1])):
        out[split].append(Example(text, label, name))
    for split in SPLITS:
        if not out[split]:
            raise UserError(
                f"{path}: no {split}/pos/*.txt or {split}/neg/*.txt reviews; expected the aclImdb layout "
                f"(aclImdb_v1.tar.gz or its unpacked aclImdb/ directory)"
            )
    return out
