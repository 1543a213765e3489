"""Turning model outputs into tokens: greedy, temperature, top-k and top-p sampling, beam search."""

from rnnkit.decode.sampling import SamplingOptions, sample_next

__all__ = ["SamplingOptions", "sample_next"]
