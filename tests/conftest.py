"""Shared fixtures: the data the suite trains on, and running the CLI in-process or as a subprocess.

Data: with ``RNNKIT_DATA_MIRROR`` set (CI: the shared data directory), the real data sets are fetched through
rnnkit's own registry (checksums verified) into a per-session cache; without it, the small in-repo samples in
tests/fixtures/data (same layout, plus the vendored PTB) stand in, so a bare clone tests most of rnnkit. Tests
whose assertions need the full data sets carry ``@pytest.mark.needs_data("name", ...)``: skipped without a mirror,
all named in one summary line. With ``RNNKIT_REQUIRE_DATA=1`` (set by .ci/run) such a skip fails the session.
The suite never writes the user's cache: ``RNNKIT_DATA`` is a fresh temporary directory per session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURE_DATA = REPO / "tests" / "fixtures" / "data"
# the data sets the suite trains on (registry names); tests/fixtures/data holds a small sample of each (PTB: vendor/)
SUITE_DATA = (
    "ptb",
    "tinyshakespeare",
    "sms-spam",
    "sentiment-sentences",
    "har-subset",
    "timeseries",
    "spa-eng",
    "dialogs",
)

_session_cache = tempfile.mkdtemp(prefix="rnnkit-test-data-")
os.environ["RNNKIT_DATA"] = _session_cache  # before any test imports rnnkit.datasets; subprocesses inherit it
_skipped_for_data: set[str] = set()

# A tiny but real language model: PTB's validation text as training data keeps steps fast.
TINY_LM = [
    "--set",
    "model.embedding=32",
    "--set",
    "model.hidden=32",
    "--set",
    "train.batch_size=8",
    "--set",
    "data.bptt=10",
    "--set",
    "data.train=ptb/ptb.valid.txt",
    "--set",
    "train.log_every=1",
    "--set",
    "train.tensorboard=false",
]


def mirror() -> str | None:
    return os.environ.get("RNNKIT_DATA_MIRROR") or None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_data(*names): needs these full data sets (from RNNKIT_DATA_MIRROR)")


_NEEDS = "needs full data sets from RNNKIT_DATA_MIRROR: "  # + the names; read back from the report below


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("needs_data")
    if marker is not None and mirror() is None:
        pytest.skip(_NEEDS + ", ".join(marker.args))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the data sets skipped tests needed from their reports, not from the skipping process: with
    ``pytest -n`` (xdist) tests run in workers and only their reports reach the process that prints the summary."""
    if report.skipped and isinstance(report.longrepr, tuple) and _NEEDS in str(report.longrepr[2]):
        _skipped_for_data.update(str(report.longrepr[2]).split(_NEEDS, 1)[1].split(", "))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest's hook
    if _skipped_for_data:
        terminalreporter.write_line(
            f"data: tests skipped without RNNKIT_DATA_MIRROR need: {', '.join(sorted(_skipped_for_data))}"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_for_data and os.environ.get("RNNKIT_REQUIRE_DATA") == "1":
        print(
            f"\nRNNKIT_REQUIRE_DATA=1 but tests were skipped for lack of data: {sorted(_skipped_for_data)}",
            file=sys.stderr,
        )
        session.exitstatus = 1


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_session_cache, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """What tests pass as ``--data-dir``: the session cache holding the real data sets (fetched from the mirror
    through rnnkit.datasets, verified), or the in-repo samples when there is no mirror."""
    if mirror() is None:
        return FIXTURE_DATA
    from rnnkit import datasets

    for name in SUITE_DATA:
        datasets.get(name)
    return datasets.cache_dir()


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess: exit codes and stderr exactly as a user sees them."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"rnnkit {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def train_losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run) if "split" not in r}


# One tiny run per servable kind, trained in-process once per session (about 10 s for all five on one core):
# the serving and export tests load them. Each recipe is the real one on its real data, shrunk.
_QUICK = ["--set", "train.log_every=1", "--set", "train.tensorboard=false", "--set", "train.eval_test=false", "-q"]
TINY_RUNS: dict[str, list[str]] = {
    "lm": [
        "ptb-small",
        "--max-steps",
        "20",
        *TINY_LM,
        "--set",
        "optim.lr=1.0",
        "--set",
        "data.valid=",
        "--set",
        "data.valid_fraction=0.05",
    ],
    "text-classify": [
        "sms-spam",
        "--max-steps",
        "20",
        "--set",
        "model.embedding=16",
        "--set",
        "model.hidden=16",
        "--set",
        "train.batch_size=32",
        "--set",
        "optim.lr=0.01",
    ],
    "sequence-classify": ["digits-rows", "--max-steps", "10", "--set", "model.hidden=16", "--set", "model.layers=1"],
    "forecast": ["airline", "--max-steps", "20", "--set", "model.hidden=16"],
    "translate": [
        "spa-eng-small",
        "--max-steps",
        "20",
        "--set",
        "data.max_pairs=2000",
        "--set",
        "model.hidden=32",
        "--set",
        "model.embedding=16",
        "--set",
        "train.batch_size=32",
        "--set",
        "data.valid_bleu_sentences=50",
        "--set",
        "model.beam=2",
    ],
    "chat": [
        "chatbot",
        "--max-steps",
        "20",
        "--set",
        "model.hidden=32",
        "--set",
        "model.embedding=16",
        "--set",
        "model.layers=1",
        "--set",
        "train.batch_size=32",
        "--set",
        "data.max_pair_tokens=12",
        "--set",
        "model.beam=2",
    ],
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, data_dir):
    """``tiny_run(kind)`` -> a trained run directory (kinds: the keys of TINY_RUNS), trained on first use."""
    from rnnkit.cli import main

    made: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in made:
            out = tmp_path_factory.mktemp(f"tiny-{kind}") / "run"
            recipe, *rest = TINY_RUNS[kind]
            assert main(["train", recipe, "--data-dir", str(data_dir), "--out", str(out), *rest, *_QUICK]) == 0
            made[kind] = out
        return made[kind]

    return make


def expected_choice(k: str) -> str:
    """What ``select`` must have chosen for configuration ``k`` on this CPU kind - one answer per kind, never
    "either": where oneDNN has no bf16 LSTM (AVX2 only) the projected layer, without a timing; where it has one
    (AVX-512 with or without bf16 units, or AMX) the faster of the two by the recorded timing."""
    from rnnkit.cells import select

    if not select._oneDNN_has_bf16_lstm():
        assert k not in select.timings(), "nothing to time where only one implementation runs"
        return "projected"
    timed = select.timings()[k]
    return min(timed, key=timed.__getitem__)
