"""The human-readable forms of the API's reports, as the command line prints them (``rnnkit diagnose``, ``rnnkit
tune report``): each turns the dict the API returns into lines of text. ``progress_words``: the lines training
writes while it runs (the values chosen from the data), said as the command line says them."""

from __future__ import annotations

from rnnkit.diagnose.gradients import format_gradient_table
from rnnkit.diagnose.run import format_diagnosis, format_sizes
from rnnkit.train.progress import words as progress_words
from rnnkit.tune.report import format_report

__all__ = ["format_diagnosis", "format_gradient_table", "format_report", "format_sizes", "progress_words"]
