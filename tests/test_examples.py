"""Every script in examples/ runs, at toy size, so none of them rots.

Each example reads RNNKIT_EXAMPLES_QUICK=1 (a few steps of a small model) and RNNKIT_EXAMPLES_DATA (where the
data sets are); otherwise it is exactly what a user runs. It runs in a fresh process in a scratch directory, as
``python examples/NAME.py`` would.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLES = sorted((REPO / "examples").glob("*.py"))
# what each example must print: a figure it reports
EXPECT = {
    "ptb_language_model": "validation perplexity",
    "book_generator": "validation perplexity",
    "translation": "Como te llamas ->",
    "chatbot": "> hi, how are you doing?",
    "spam_filter": "test accuracy",
    "sentiment": "test accuracy",
    "har_activity": "confusion matrix",
    "mnist_rows": "predicted",
    "forecasting": "test RMSE",
    "tuning": "best:",
}


def test_every_seed_system_has_an_example():
    assert sorted(p.stem for p in EXAMPLES) == sorted(EXPECT)


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path, data_dir):
    pytest.importorskip("pandas")
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO / "src"),
        RNNKIT_EXAMPLES_QUICK="1",
        RNNKIT_EXAMPLES_DATA=str(data_dir),
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
        MPLBACKEND="agg",
    )
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert EXPECT[script.stem] in proc.stdout, proc.stdout[-2000:]
