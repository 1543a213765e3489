"""Errors a user can fix: the CLI prints them as one line and exits with status 2, never a traceback."""


class UserError(Exception):
    """A mistake in input, data or configuration; the message names the file/line/field at fault."""

    exit_code = 2


class TrainingDiverged(UserError):
    """The loss became NaN/inf; the last good checkpoint is kept and the message says where it is."""
