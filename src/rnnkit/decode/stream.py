"""Step-level batching of generation: many requests' sequences decoded together, one token per step, each with its
own sampling options and random generator, each joining after its own prompt and leaving when it is done.

Why: generating one request at a time leaves a CPU (and far more a GPU) mostly idle - a decoder step for one
sequence is a ``(1, hidden) x (hidden, vocab)`` product plus framework overhead, and a step for 16 sequences costs
little more. So the server keeps one :class:`StreamBatch` per model: a new request runs its prompt alone
(``prefill``; prompts differ in length), then its rows join the batch's recurrent state; every step feeds all
rows' last tokens through the model at once and hands each stream its own rows' logits.

Equal results batched or alone: a stream draws its tokens from its own ``torch.Generator`` and always for its own
rows only (``Stream.choose`` sees exactly the logits rows it would see alone), so a seeded request consumes the
same random numbers in the same order whatever else is in the batch. What can differ is float rounding: a
matmul over 16 rows may round differently from one over 1 row, which changes a token only where two
candidates are closer than that rounding. ``generate`` without a server is this same code with a batch of one.

A stream that gives its prompt as token ids (``Stream.prompt``, one row) and arrives while the batch is running
joins at once with a zero state and has its prompt fed one token per step alongside the other rows, instead of a
prefill pass of its own: that pass's output layer (a full read of the decoder's weights, for a vocabulary of 10,000
the bulk of a step) costs as much as a whole batched step, and it was a quarter of a busy server's time. Alone it is
prefilled, which is fastest for one row. The result is the same either way, up to float rounding.

A stream keeps all its rows until every one is finished (a chat request samples several replies at once, and
alone it would keep drawing for finished rows too), then leaves; :meth:`Stream.restart` lets a stream go round
again (a chatbot that wants more distinct replies) with a fresh prefill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

# (tokens (steps, rows), state or None) -> (logits (steps, rows, vocab), state)
StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]


class Stream:
    """One request's decoding: subclasses say how many rows it has, what it feeds first and how it picks tokens."""

    rows: int = 1
    done: bool = False
    prompt: list[int] | None = None  # one-row streams: the prompt's token ids, which may be fed by the batch

    def prefill(self) -> tuple[Tensor, Any]:
        """Run the prompt alone: the logits of the first choice (rows, vocab) and the state after the prompt, in
        the model's layout with a batch of ``rows``."""
        raise NotImplementedError

    def choose(self, logits: Tensor) -> Tensor:
        """Next tokens (rows,) from this stream's logits (rows, vocab); sets ``done`` once every row is finished."""
        raise NotImplementedError

    # A subclass whose streams have one row each may also define ``choose_together(streams, logits) -> tokens``
    # (a staticmethod over several streams' rows at once, each row still with its own options and generator);
    # StreamBatch then makes one vectorised call per step instead of one per stream.

    def restart(self) -> bool:
        """Called once ``done``: True to go round again (a new :meth:`prefill`), False to leave with a result."""
        return False

    def result(self) -> Any:
        raise NotImplementedError


def cat_states(states: Sequence[Any], dim: int = 1) -> Any:
    """Concatenate recurrent states along the batch: tensors ``(layers, batch, hidden)``, pairs (h, c) or nested
    per-layer tuples/lists of them (AWD-LSTM)."""
    first = states[0]
    if first is None:
        return None
    if isinstance(first, Tensor):
        return torch.cat(list(states), dim)
    return type(first)(cat_states([s[i] for s in states], dim) for i in range(len(first)))


def zero_state(state: Any) -> Any:
    """A state of zeros laid out like ``state`` (tensors, pairs or nested tuples/lists of them)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return torch.zeros_like(state)
    return type(state)(zero_state(s) for s in state)


def select_state(state: Any, idx: Tensor, dim: int = 1) -> Any:
    """The rows ``idx`` of a state laid out as in :func:`cat_states`."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(dim, idx)
    return type(state)(select_state(s, idx, dim) for s in state)


class StreamBatch:
    """The streams being decoded together by one model, and their batched recurrent state.

    ``step`` runs one token through the model for every row: ``step_fn(tokens (1, rows), state)``. ``cat`` and
    ``select`` join and split states (default: :func:`cat_states` / :func:`select_state`, for plain recurrent
    states; a seq2seq decoder passes its own).
    """

    def __init__(
        self,
        step_fn: StepFn,
        cat: Callable[[Sequence[Any]], Any] = cat_states,
        select: Callable[[Any, Tensor], Any] = select_state,
    ) -> None:
        self.step_fn, self.cat, self.select = step_fn, cat, select
        self.streams: list[Stream] = []
        self.state: Any = None
        self.tokens: Tensor | None = None  # (rows,) the next token of every row
        self.steps = 0  # model steps run (for tests and reports)
        self._feed: dict[int, list[int]] = {}  # id(stream) -> prompt tokens still to feed after this step's input

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.streams)

    def __len__(self) -> int:
        return len(self.streams)

    def add(self, stream: Stream) -> bool:
        """Prefill ``stream`` and let it choose its first tokens; it joins the batch unless that already finished
        it. Returns whether it is finished (then its ``result()`` is ready). A stream with a ``prompt`` joining a
        running batch is not prefilled: it joins with a zero state and the batch feeds its prompt."""
        if (
            stream.prompt
            and stream.rows == 1
            and self.streams
            and self.cat is cat_states
            and self.select is select_state
        ):
            assert self.tokens is not None
            device = self.tokens.device
            one = self.select(self.state, torch.zeros(1, dtype=torch.long, device=device))  # (.., 1, ..) layout
            first = torch.tensor(stream.prompt[:1], dtype=torch.long, device=device)
            self._feed[id(stream)] = list(reversed(stream.prompt[1:]))  # popped from the end
            self._join([stream], [zero_state(one)], [first])
            return False
        while True:
            logits, state = stream.prefill()
            tokens = stream.choose(logits)
            if not stream.done:
                break
            if not stream.restart():
                return True
        self._join([stream], [state], [tokens])
        return False

    def _join(self, streams: list[Stream], states: list[Any], tokens: list[Tensor]) -> None:
        if self.streams:
            states, tokens = [self.state, *states], [self.tokens, *tokens]  # type: ignore[list-item]
        self.state = self.cat(states)
        self.tokens = torch.cat(tokens)
        self.streams.extend(streams)

    def step(self) -> list[Stream]:
        """One token for every row; returns the streams that finished (they have left the batch)."""
        if not self.streams:
            return []
        assert self.tokens is not None
        logits, self.state = self.step_fn(self.tokens.unsqueeze(0), self.state)  # (1, rows, vocab)
        logits = logits[0]
        self.steps += 1
        keep: list[int] = []
        kept: list[Stream] = []
        finished: list[Stream] = []
        restarted: list[Stream] = []
        nxt: list[Tensor] = []
        # a stream still feeding its prompt takes its next prompt token; one whose last prompt token was this
        # step's input chooses from these logits like the others
        feeding = {k for k, s in enumerate(self.streams) if self._feed.get(id(s))}
        for s in self.streams:
            if id(s) in self._feed and not self._feed[id(s)]:
                del self._feed[id(s)]
        choosers = [s for k, s in enumerate(self.streams) if k not in feeding]
        kind = type(choosers[0]) if choosers else None
        together = getattr(kind, "choose_together", None)
        chosen = None
        if together is not None and all(type(s) is kind and s.rows == 1 for s in choosers):
            if feeding:  # every stream has one row here, so stream k is row k
                rows = torch.tensor([k for k in range(len(self.streams)) if k not in feeding], device=logits.device)
                chosen = iter(together(choosers, logits.index_select(0, rows)).split(1))
            else:
                chosen = iter(together(choosers, logits).split(1))  # one vectorised choice for all rows
        row = 0
        for k, s in enumerate(self.streams):
            if k in feeding:
                tok = torch.tensor([self._feed[id(s)].pop()], dtype=torch.long, device=logits.device)
            else:
                tok = next(chosen) if chosen is not None else s.choose(logits[row : row + s.rows])
            if not s.done:
                keep.append(row)
                keep.extend(range(row + 1, row + s.rows))
                kept.append(s)
                nxt.append(tok)
            elif s.restart():
                restarted.append(s)
            else:
                finished.append(s)
            row += s.rows
        if len(kept) != len(self.streams):
            if kept:
                idx = torch.tensor(keep, dtype=torch.long, device=logits.device)
                self.state = self.select(self.state, idx)
                self.tokens = torch.cat(nxt)
            else:
                self.state, self.tokens = None, None
            self.streams = kept
        else:
            self.tokens = torch.cat(nxt)
        for s in restarted:
            if self.add(s):
                finished.append(s)
        return finished

    def run(self) -> None:
        """Step until every stream has finished (generation without a server: a batch of one)."""
        while self.streams:
            self.step()
