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


class ArgumentError(UserError):
    """A bad value of one named argument of a call: ``generate(prompt=...) must be a str, got int``.

    It keeps its parts (``call``, ``argument``, ``reason``), so each front end says it in its own words: Python
    users read the call and the argument, the command line the option that set it (``--max-new-tokens: must be
    >= 1, got 0``), the server the JSON field. Raise one of the two concrete kinds below, which are also the
    built-in exception a Python user expects for a bad argument."""

    def __init__(self, argument: str, reason: str, call: str | None = None) -> None:
        self.argument, self.reason, self.call = argument, reason, call
        super().__init__(argument, reason, call)

    def __str__(self) -> str:
        where = f"{self.call}({self.argument}=...)" if self.call else self.argument
        return f"{where} {self.reason}"

    def within(self, call: str) -> ArgumentError:
        """This error as raised by ``call`` (unless it already names one)."""
        if self.call is None:
            self.call = call
        return self


class UserTypeError(ArgumentError, TypeError):
    """An argument of the wrong type (``generate(prompt=123)``)."""


class UserValueError(ArgumentError, ValueError):
    """An argument of the right type and a wrong value (``generate(max_new_tokens=0)``)."""


class RenamedArgumentWarning(FutureWarning):
    """An argument, option or request field under its old name (``words`` for ``max_new_tokens``); it still works for
    one release. A FutureWarning, so Python users see it by default."""


class TrainingDiverged(UserError):
    """The loss became NaN/inf; the last good checkpoint is kept and the message says where it is."""


class PathError(UserError):
    """A path the system cannot look up at all (see ``lookup``): ``reason`` says why."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# errors that looking a path up can give and that say nothing about the file's presence: the path itself is wrong
_LOOKUP_ERRNOS = {errno.ENAMETOOLONG, errno.ELOOP, errno.EACCES, errno.EPERM, errno.EIO, errno.EOVERFLOW}


def lookup(path: object, what: str = "") -> os.stat_result | None:
    """``os.stat(path)``, None when nothing is there (or a part of the path is not a directory), and a UserError
    naming ``what`` (an option, an argument) and the path when the system cannot even look it up: a name over the
    file system's limit, a symbolic-link loop, no permission to search a directory. ``Path.is_dir()`` and friends
    raise those as OSError, which is how a 300-character ``--out`` used to end in a traceback."""
    try:
        return os.stat(os.fspath(path))  # type: ignore[arg-type]
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno in _LOOKUP_ERRNOS:
            raise PathError(f"{what}{': ' if what else ''}{path}: {os_reason(e)}", os_reason(e)) from None
        raise
    except ValueError:  # an embedded NUL byte
        why = "not a valid path (it holds a NUL byte)"
        raise PathError(f"{what}{': ' if what else ''}{path!r}: {why}", why) from None


def is_dir(path: object, what: str = "") -> bool:
    """``Path.is_dir()`` that reports an impossible path as a UserError (see ``lookup``)."""
    import stat

    st = lookup(path, what)
    return st is not None and stat.S_ISDIR(st.st_mode)


def is_file(path: object, what: str = "") -> bool:
    """``Path.is_file()`` that reports an impossible path as a UserError (see ``lookup``)."""
    import stat

    st = lookup(path, what)
    return st is not None and stat.S_ISREG(st.st_mode)


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
