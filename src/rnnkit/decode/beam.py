"""Batched greedy, beam and sampled decoding for any step-wise decoder.

A decoder is given as ``step(tokens, state) -> (logits, state, attention)``: ``tokens`` (N,) the previous
outputs, ``logits`` (N, V), ``attention`` (N, S) or None, and ``reorder(state, index)`` which picks/duplicates
rows of the state (index (M,) into the N rows). Every sentence of the batch is decoded independently; padding
the batch changes nothing.

Beam search keeps ``beam`` hypotheses per sentence. Candidates are ranked by their summed log-probability
divided by the GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al. 2016; alpha 0 = plain sum,
larger alpha favours longer outputs). A finished hypothesis (it produced ``eos``) stays in the beam with its
score frozen, so it competes with the open ones at every step (as TensorFlow's BeamSearchDecoder does).
With ``beam = 1`` this is exactly greedy decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rnnkit.decode.sampling import SamplingOptions, filter_logits

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any, Tensor | None]]
ReorderFn = Callable[[Any, Tensor], Any]


@dataclass
class Hypothesis:
    tokens: list[int]  # without go/eos
    score: float  # log-probability / length penalty (beam), plain log-probability otherwise
    logprob: float
    attention: Tensor | None = None  # (len(tokens) + 1, S): one row per output incl. eos (if produced)
    finished: bool = True  # produced eos within the length limit


def length_penalty(length: Tensor, alpha: float) -> Tensor:
    if alpha == 0:
        return torch.ones_like(length, dtype=torch.float32)
    return ((5.0 + length.float()) / 6.0) ** alpha


def _mask_logp(logp: Tensor, banned: Sequence[int], eos: int, allow_eos: bool) -> Tensor:
    if banned:
        logp[:, list(banned)] = float("-inf")
    if not allow_eos:
        logp[:, eos] = float("-inf")
    return logp


def _trim(seq: list[int], eos: int) -> tuple[list[int], bool]:
    if eos in seq:
        return seq[: seq.index(eos)], True
    return seq, False


@torch.no_grad()
def greedy_search(
    step: StepFn,
    state: Any,
    batch: int,
    go: int,
    eos: int,
    max_len: int,
    device: torch.device,
    banned: Sequence[int] = (),
    min_len: int = 0,
) -> list[Hypothesis]:
    """The most likely next token at every step, for ``batch`` sentences at once."""
    tokens = torch.full((batch,), go, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    logprob = torch.zeros(batch, dtype=torch.float64, device=device)
    out: list[Tensor] = []
    attn: list[Tensor] = []
    for t in range(max_len):
        logits, state, w = step(tokens, state)
        logp = _mask_logp(torch.log_softmax(logits.float(), -1), banned, eos, t >= min_len)
        best, tokens = logp.max(-1)
        logprob += torch.where(done, torch.zeros_like(best), best).double()
        tokens = torch.where(done, torch.full_like(tokens, eos), tokens)
        out.append(tokens)
        if w is not None:
            attn.append(w.float())
        done |= tokens == eos
        if bool(done.all()):
            break
    seqs = torch.stack(out, 1).tolist() if out else [[] for _ in range(batch)]
    weights = torch.stack(attn, 1).cpu() if attn else None  # (batch, T, S)
    hyps = []
    for i, s in enumerate(seqs):
        toks, fin = _trim(s, eos)
        a = weights[i, : len(toks) + (1 if fin else 0)] if weights is not None else None
        hyps.append(Hypothesis(toks, float(logprob[i]), float(logprob[i]), a, fin))
    return hyps


@torch.no_grad()
def beam_search(
    step: StepFn,
    state: Any,
    reorder: ReorderFn,
    batch: int,
    beam: int,
    go: int,
    eos: int,
    max_len: int,
    device: torch.device,
    alpha: float = 0.0,
    banned: Sequence[int] = (),
    min_len: int = 0,
    n_best: int = 1,
) -> list[list[Hypothesis]]:
    """The ``n_best`` (<= beam) best hypotheses per sentence, best first. ``state`` has ``batch`` rows."""
    if beam < 1:
        raise ValueError(f"beam size must be >= 1, got {beam}")
    K, B = beam, batch
    n_best = max(1, min(n_best, K))
    state = reorder(state, torch.arange(B, device=device).repeat_interleave(K))  # row b*K + k
    tokens = torch.full((B * K,), go, dtype=torch.long, device=device)
    score = torch.full((B, K), float("-inf"), device=device)
    score[:, 0] = 0.0  # only the first copy of each sentence expands at step 0
    length = torch.zeros(B, K, dtype=torch.long, device=device)
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)
    attn_hist: Tensor | None = None
    base = (torch.arange(B, device=device) * K).unsqueeze(1)  # (B, 1)
    for t in range(max_len):
        logits, state, w = step(tokens, state)
        V = logits.size(-1)
        logp = _mask_logp(torch.log_softmax(logits.float(), -1), banned, eos, t >= min_len)
        fin = finished.view(-1)
        if bool(fin.any()):  # a finished hypothesis can only "continue" with eos, at no cost
            logp[fin] = float("-inf")
            logp[fin, eos] = 0.0
        total = score.view(-1, 1) + logp  # (B*K, V)
        new_len = (length + (~finished).long()).view(-1, 1).expand(-1, V)  # (B*K, V)
        ranked = (total / length_penalty(new_len, alpha)).view(B, K * V)
        _, top = ranked.topk(K, dim=-1)  # (B, K)
        src_beam, tok = top // V, top % V
        rows = (base + src_beam).view(-1)  # (B*K,) rows of the previous step
        score = total.view(B, K * V).gather(1, top)
        length = new_len.reshape(B, K * V).gather(1, top)
        finished = finished.view(-1)[rows].view(B, K) | (tok == eos)
        tokens = tok.view(-1)
        history = torch.cat([history[rows], tokens.unsqueeze(1)], 1)
        if w is not None:
            w = w.float()[rows].unsqueeze(1)
            attn_hist = w if attn_hist is None else torch.cat([attn_hist[rows], w], 1)
        state = reorder(state, rows)
        if bool(finished.all()):
            break
    final = score / length_penalty(length, alpha)
    final = torch.where(torch.isfinite(score), final, torch.full_like(final, float("-inf")))
    order = final.argsort(dim=1, descending=True)
    hist = history.view(B, K, -1).tolist()
    attn_cpu = attn_hist.view(B, K, attn_hist.size(1), -1).cpu() if attn_hist is not None else None
    results: list[list[Hypothesis]] = []
    for b in range(B):
        hyps: list[Hypothesis] = []
        for k in order[b].tolist():
            if not torch.isfinite(final[b, k]) and hyps:
                continue
            toks, fin = _trim(hist[b][k], eos)
            a = attn_cpu[b, k, : len(toks) + (1 if fin else 0)] if attn_cpu is not None else None
            hyps.append(Hypothesis(toks, float(final[b, k]), float(score[b, k]), a, fin))
            if len(hyps) == n_best:
                break
        results.append(hyps)
    return results


@torch.no_grad()
def sample_search(
    step: StepFn,
    state: Any,
    batch: int,
    go: int,
    eos: int,
    max_len: int,
    device: torch.device,
    opts: SamplingOptions,
    generator: torch.Generator | None = None,
    banned: Sequence[int] = (),
    min_len: int = 0,
) -> list[Hypothesis]:
    """One sampled output per row (temperature / top-k / top-p), e.g. several candidate replies."""
    opts.validate()
    tokens = torch.full((batch,), go, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    logprob = torch.zeros(batch, dtype=torch.float64, device=device)
    out: list[Tensor] = []
    for t in range(max_len):
        logits, state, _ = step(tokens, state)
        logp = _mask_logp(torch.log_softmax(logits.float(), -1), banned, eos, t >= min_len)
        if opts.greedy:
            nxt = logp.argmax(-1)
        else:
            probs = torch.softmax(filter_logits(logp, opts), -1)
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(device)
        chosen = logp.gather(1, nxt.unsqueeze(1)).squeeze(1)
        logprob += torch.where(done, torch.zeros_like(chosen), chosen).double()
        tokens = torch.where(done, torch.full_like(nxt, eos), nxt)
        out.append(tokens)
        done |= tokens == eos
        if bool(done.all()):
            break
    seqs = torch.stack(out, 1).tolist() if out else [[] for _ in range(batch)]
    hyps = []
    for i, s in enumerate(seqs):
        toks, fin = _trim(s, eos)
        hyps.append(Hypothesis(toks, float(logprob[i]), float(logprob[i]), None, fin))
    return hyps
