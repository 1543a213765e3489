"""Errors a user can fix: the CLI prints them as one line and exits with status 2, never a traceback."""

from __future__ import annotations

import errno
import os

# why a file operation failed, in the words a user acts on (anything else: the system's own strerror)
_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "is a directory",
    errno.ENOENT: "no such file or directory",
    errno.ENAMETOOLONG: "file name too long",
}


class UserError(Exception):
    """A mistake in input, data or configuration; the message names the file/line/field at fault."""

    exit_code = 2


class TrainingDiverged(UserError):
    """The loss became NaN/inf; the last good checkpoint is kept and the message says where it is."""


def os_reason(e: BaseException) -> str:
    """A short reason for a failed file operation: the OSError's errno in plain words, wherever in the exception's
    chain it is (PyTorch reports a failed write as a RuntimeError whose context is the OSError)."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno is not None:
            return _REASONS.get(cur.errno, cur.strerror or os.strerror(cur.errno))
        cur = cur.__cause__ or cur.__context__
    return ""


def file_error(path: object, e: BaseException, doing: str = "write") -> UserError:
    """``PATH: cannot write: no space left on device`` - the one-line form of a failed file operation."""
    reason = os_reason(e) or (str(e).strip().splitlines() or [type(e).__name__])[0]
    return UserError(f"{path}: cannot {doing}: {reason}")
