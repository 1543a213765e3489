"""The FLOP counts the speed benchmarks divide by: a wrong count would misstate every "of peak" and ceiling figure."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import lm_profile  # noqa: E402


def _lstm_macs(widths: list[int], sizes: list[int]) -> int:
    return sum(4 * o * (i + o) for i, o in zip(widths, sizes))


def test_phase_flops_reads_one_size_per_layer():
    """ptb-notebook's layers of 256 and 128: each layer counted at its own input and output width, the softmax at
    the last layer's (a single size for every layer gave a TypeError for this recipe)."""
    tokens, vocab = 1200, 10000
    m = SimpleNamespace(embedding=200, hidden=[256, 128], layers=2, cell="lstm", arch="standard", tie=False)
    f = lm_profile.phase_flops(m, vocab, tokens)
    assert f["recurrence"] == 3 * 2 * _lstm_macs([200, 256], [256, 128]) * tokens
    assert f["output"] == 3 * 2 * 128 * vocab * tokens
    same = SimpleNamespace(embedding=200, hidden=256, layers=2, cell="lstm", arch="standard", tie=False)
    assert (
        lm_profile.phase_flops(same, vocab, tokens)["recurrence"] == 3 * 2 * _lstm_macs([200, 256], [256, 256]) * tokens
    )
