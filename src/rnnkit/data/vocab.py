"""Token <-> index maps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor


class Vocabulary:
    """An ordered list of tokens; index 0.. in order. Specials come first and keep their indices."""

    def __init__(self, tokens: Sequence[str], unk: str | None = "<unk>") -> None:
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate tokens in vocabulary")
        self.unk = unk if unk in self.stoi else None
        self.unk_index = self.stoi[unk] if self.unk is not None else -1

    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        specials: Sequence[str] = (),
        min_count: int = 1,
        max_size: int = 0,
        unk: str | None = "<unk>",
    ) -> Vocabulary:
        """Specials first, then tokens by descending frequency (ties by first appearance, for determinism)."""
        counts = Counter(tokens)
        ordered = [t for t, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= min_count and t not in specials]
        if max_size:
            ordered = ordered[: max(0, max_size - len(specials))]
        return cls(list(specials) + ordered, unk=unk)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def index(self, token: str) -> int:
        i = self.stoi.get(token, self.unk_index)
        if i < 0:
            raise KeyError(token)
        return i

    def encode(self, tokens: Iterable[str]) -> Tensor:
        stoi, unk = self.stoi, self.unk_index
        return torch.tensor([stoi.get(t, unk) for t in tokens], dtype=torch.long)

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in indices]

    def to_list(self) -> list[str]:
        return list(self.itos)
