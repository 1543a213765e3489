"""Language modelling: word- or character-level, truncated BPTT over carried state, perplexity, sampling.

Two model families share this task: the Zaremba / pytorch-examples stack (``model.arch = "standard"``) and
AWD-LSTM (``model.arch = "awd"``, rnnkit.models.awd). The AWD training tricks that are about the objective or the
batching live here: AR/TAR activation regularisation (``optim.ar``, ``optim.tar``) and variable BPTT lengths with
the learning rate scaled by each batch's length (``data.variable_bptt``). Under distributed training each rank
trains on its own block of the batch columns (``shard``), and the carried hidden state is gathered into the
checkpoint as one global batch so a run resumes with any number of processes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import MAX_SIZE, ConfigError, RunConfig, key
from rnnkit.data.lm import (
    EOS,
    IGNORE,
    StreamBatches,
    batchify,
    build_vocab,
    detokenize,
    eval_columns,
    tokenize,
    window_starts,
)
from rnnkit.data.text import find_data_file, read_text
from rnnkit.data.vocab import Vocabulary
from rnnkit.decode.sampling import SamplingOptions, sample_rows
from rnnkit.decode.stream import Stream, StreamBatch
from rnnkit.errors import UserError
from rnnkit.metrics import bits_per_char, perplexity
from rnnkit.models.lm import RNNLanguageModel
from rnnkit.ops.device import to_device
from rnnkit.ops.loss import softmax_cross_entropy
from rnnkit.seeds import derive_seed
from rnnkit.tasks import fields, register
from rnnkit.tasks.base import MEMORY_DIR, Task

TOKENIZERS = {"word": "whitespace-separated words, <eos> at each line end", "char": "characters"}
BATCHINGS = {
    "stream": "truncated BPTT over the text as continuous columns (Zaremba et al.)",
    "windows": "fixed windows of data.window tokens -> the next token, shuffled",
}
ARCHS = {
    "standard": "embedding -> recurrent stack -> softmax (Zaremba / pytorch-examples)",
    "awd": "AWD-LSTM: one module per layer, the last sized `embedding` when tied; `dropout` is then the locked "
    "dropout on the last layer's output (Merity et al. 2017)",
}


@dataclass
class LMData:
    train: str = fields.split_file("ptb/ptb.train.txt", "train")
    valid: str = fields.split_file("ptb/ptb.valid.txt", "valid")
    test: str = fields.split_file("ptb/ptb.test.txt", "test")
    tokenizer: str = key("word", "how text becomes tokens", choices=TOKENIZERS)
    lowercase: bool = fields.lowercase(False)
    punctuation: bool = key(False, 'word tokenizer: split punctuation off words ("end." -> "end", ".")')
    min_count: int = fields.min_count(1)
    max_vocab: int = fields.max_vocab()
    valid_fraction: float = key(
        0.0,
        'when data.valid is "": the share of the training text carved off its end for validation',
        gt=0,
        lt=0.5,
        special={0: "none (data.valid names a file)"},
    )
    test_fraction: float = key(
        0.0,
        'when data.test is "": likewise for testing (taken before valid)',
        gt=0,
        lt=0.5,
        special={0: "none (data.test names a file)"},
    )
    bptt: int = key(
        35, "truncated back-propagation length (stream batching; also the evaluation chunk)", ge=1, le=MAX_SIZE
    )
    batching: str = key("stream", "how training batches are cut from the text", choices=BATCHINGS)
    window: int = key(20, "windows batching: context length", ge=1, le=MAX_SIZE)
    carry_state: bool = key(True, "stream batching: carry the hidden state from batch to batch (detached)")
    train_fraction: float = key(
        1.0, "keep the first fraction of the training tokens (vocabulary from all of them)", gt=0, le=1
    )
    word_dropout: float = key(
        0.0,
        "training only: replace input tokens by <unk> with this probability",
        ge=0,
        lt=1,
        needs={"data.tokenizer": "word"},
    )
    word_swap: float = key(
        0.0, "training only: swap an input token with the next one with this probability", ge=0, lt=1
    )
    variable_bptt: bool = key(
        False,
        "stream batching: each batch's length ~ N(bptt, bptt_std), or N(bptt / 2, "
        "bptt_std) with probability bptt_half, at least bptt_min; the learning rate is scaled "
        "by length / bptt for that batch (Merity et al.)",
        needs={"data.batching": "stream"},
    )
    bptt_std: float = key(5.0, "variable_bptt: standard deviation of the length", ge=0, le=MAX_SIZE)
    bptt_half: float = key(0.05, "variable_bptt: probability of a half-length batch", ge=0, le=1)
    bptt_min: int = key(5, "variable_bptt: shortest batch", ge=1, le=MAX_SIZE)

    RENAMED: ClassVar[dict[str, str]] = {
        "level": "data.tokenizer",
        "ar": "optim.ar",
        "tar": "optim.tar",
        "loss_over_time": "optim.loss_over_time",
        "eval_batch_size": "train.eval_batch_size",
    }


@dataclass
class LMModel(fields.RecurrentKeys):
    embedding: int = fields.embedding(200)
    hidden: int | list[int] = fields.hidden(200)
    layers: int = fields.layers(2)
    dropout: float = fields.dropout()
    tie: bool = key(
        False,
        "share the input embedding with the output layer (needs embedding = the last layer's size;"
        " awd with one model.hidden: the last layer is sized model.embedding)",
    )
    init_scale: float = fields.init_scale(0.1)
    forget_bias: float = fields.forget_bias(0.0)
    arch: str = key("standard", "model family", choices=ARCHS)
    dropout_h: float = key(0.0, "awd: locked dropout between recurrent layers", ge=0, lt=1, needs={"model.arch": "awd"})
    dropout_i: float = key(0.0, "awd: locked dropout on the embedded input", ge=0, lt=1, needs={"model.arch": "awd"})
    dropout_e: float = key(0.0, "awd: embedding dropout (whole words)", ge=0, lt=1, needs={"model.arch": "awd"})
    weight_drop: float = key(
        0.0, "awd: DropConnect on the hidden-to-hidden matrices", ge=0, lt=1, needs={"model.arch": "awd"}
    )


def _tree_map(fn: Callable[[Tensor], Tensor], state: Any) -> Any:
    """Apply ``fn`` to every tensor of a state: a tensor, a pair (h, c), or a tuple of per-layer states."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    return tuple(_tree_map(fn, s) for s in state)


def _tree_to_lists(state: Any) -> Any:
    return state.detach().cpu() if isinstance(state, Tensor) else [_tree_to_lists(s) for s in state]


def _lists_to_tree(saved: Any) -> Any:
    return saved if isinstance(saved, Tensor) else tuple(_lists_to_tree(s) for s in saved)


def _detach_one(t: Tensor) -> Tensor:
    t = t.detach()
    # under autocast the kernels may hand back bf16/fp16 state; carry it between batches in fp32
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def _detach(state: Any) -> Any:
    return _tree_map(_detach_one, state)


@register
class LanguageModelTask(Task[LMData, LMModel]):
    name = "lm"
    metric = "ppl"
    services = ("generate",)
    loss_terms = frozenset({"ar", "tar", "loss_over_time"})
    default_eval_batch_size = 10

    vocab: Vocabulary | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ids: dict[str, Tensor] = {}
        self.hidden: Any = None  # State, or a tuple of per-layer States (AWD)
        self._train_cols: Tensor | None = None
        self.rank, self.world = 0, 1
        self._chunks: tuple[int, list[tuple[int, int]]] | None = None  # (epoch, [(start, length)]) cache

    @classmethod
    def check_config(cls, config: RunConfig[LMData, LMModel]) -> None:
        d, o, m = config.data, config.optim, config.model
        last = fields.last_size(m.hidden)
        fields.check_recurrent(m)  # the cell's registry entry: backend, options (AWD's weight drop among them)
        if m.arch == "awd":
            if m.tie and isinstance(m.hidden, list) and last != m.embedding:
                raise ConfigError(
                    "model.tie",
                    f"needs the last layer's size == model.embedding (model.hidden = "
                    f"{m.hidden}, model.embedding = {m.embedding})",
                )
        else:
            if m.tie and m.embedding != last:
                what = "model.hidden" if isinstance(m.hidden, int) else "the last layer's size"
                raise ConfigError(
                    "model.tie",
                    f'needs model.embedding == {what} (got {m.embedding} and {last}), or model.arch = "awd"',
                )
        for s in ("valid", "test"):
            if not getattr(d, s) and not getattr(d, f"{s}_fraction"):
                raise ConfigError(
                    f"data.{s}",
                    f'is "": name a file, or set data.{s}_fraction in (0, 0.5) to carve it off the training text',
                )
        if (o.ar or o.tar) and d.batching != "stream":
            raise ConfigError("optim.ar" if o.ar else "optim.tar", 'needs data.batching = "stream"')

    @classmethod
    def write_data(cls, data: Any, folder: Path, config: RunConfig) -> dict[str, Any]:
        """A text (or a list of lines) -> a training file; validation and test are carved off its end
        (data.valid_fraction / data.test_fraction, 0.1 each unless set)."""
        from rnnkit.data.memory import text_lines

        lines = text_lines(data)
        (folder / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        d = config.data
        return {
            "data.train": f"{MEMORY_DIR}/train.txt",
            "data.valid": "",
            "data.test": "",
            "data.valid_fraction": d.valid_fraction or 0.1,
            "data.test_fraction": d.test_fraction or 0.1,
        }

    # -- data -------------------------------------------------------------------------------------
    def _read(self, split: str) -> list[str]:
        path = find_data_file(getattr(self.dcfg, split), self.data_dir, f"data.{split}")
        return tokenize(read_text(path), self.dcfg.tokenizer, self.dcfg.lowercase, self.dcfg.punctuation)

    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        d = self.dcfg
        carved = {s for s in ("valid", "test") if not getattr(d, s)}
        need_train = "train" in splits or self.vocab is None or bool(carved & set(splits))
        streams: dict[str, list[str]] = {}
        if need_train:
            train = self._read("train")
            for s in ("test", "valid"):  # carve test first so valid sits just before it
                if s in carved:
                    frac = getattr(d, f"{s}_fraction")
                    cut = int(len(train) * (1 - frac))
                    train, streams[s] = train[:cut], train[cut:]
            streams["train"] = train
            if self.vocab is None:
                self.vocab = build_vocab(train, d.tokenizer, d.min_count, d.max_vocab)
        for s in splits:
            tokens = streams[s] if s in streams else self._read(s)
            if not tokens:
                raise UserError(f"data.{s}: no tokens")
            self.ids[s] = self.vocab.encode(tokens)  # type: ignore[union-attr]
        if "train" in self.ids and d.train_fraction != 1.0:
            self.ids["train"] = self.ids["train"][: max(int(self.ids["train"].numel() * d.train_fraction), 2)]
        if "train" in self.ids and d.batching == "stream":
            cols = batchify(self.ids["train"], self.config.train.batch_size)  # (steps, batch)
            if cols.size(0) <= d.bptt:
                raise UserError(
                    f"data.train: {self.ids['train'].numel()} tokens are too few for "
                    f"train.batch_size={self.config.train.batch_size} and data.bptt={d.bptt}"
                )
            if self.world > 1:  # this rank's block of columns: global batch = train.batch_size
                per = cols.size(1) // self.world
                cols = cols[:, self.rank * per : (self.rank + 1) * per].contiguous()  # (steps, batch / world)
            self._train_cols = cols.to(self.device)

    def artifacts(self) -> dict[str, Any]:
        assert self.vocab is not None
        return {"vocab": self.vocab.to_list(), "tokenizer": self.dcfg.tokenizer}

    def load_artifacts(self, artifacts: dict[str, Any]) -> None:
        kind = artifacts.get("tokenizer", artifacts.get("level"))  # "level": checkpoints of rnnkit 0.1
        self.vocab = (
            build_vocab([], kind)
            if not artifacts["vocab"]
            else Vocabulary(artifacts["vocab"], unk="<unk>" if kind == "word" else None)
        )

    def placeholder_artifacts(self) -> dict[str, Any]:
        words = ["<unk>", EOS] + [f"w{i}" for i in range(30)] if self.dcfg.tokenizer == "word" else list("abc \n")
        return {"vocab": words, "tokenizer": self.dcfg.tokenizer}

    def check_artifacts(self, saved: dict[str, Any]) -> None:
        assert self.vocab is not None
        mine, theirs = self.vocab.to_list(), list(saved["vocab"])
        if mine != theirs:
            i = next((k for k, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
            raise UserError(
                f"the training data gives a different vocabulary than the checkpoint's "
                f"({len(mine)} vs {len(theirs)} tokens, first difference at index {i}); "
                f"resume with the data the run was trained on"
            )

    def shard(self, rank: int, world: int) -> None:
        """Train on columns [rank * B/world, (rank + 1) * B/world) of the global batch B = train.batch_size.

        With equal columns per rank, DDP's gradient average equals the single-process gradient of the mean
        (or time-summed) loss over the whole global batch, so N processes reproduce a 1-process run.
        """
        if self.dcfg.batching != "stream":
            raise UserError('distributed training of a language model needs data.batching = "stream"')
        if self.config.train.batch_size % world:
            raise UserError(
                f"train.batch_size={self.config.train.batch_size} must be divisible by the number "
                f"of processes ({world}): each rank trains on an equal block of the batch columns"
            )
        self.rank, self.world = rank, world

    # -- model and training -----------------------------------------------------------------------
    def make_model(self) -> nn.Module:
        m = self.mcfg
        assert self.vocab is not None
        if m.arch == "awd":
            from rnnkit.models.awd import AWDLanguageModel

            return AWDLanguageModel(
                len(self.vocab),
                m.embedding,
                m.hidden,
                m.layers,
                cell=m.cell,
                backend=m.backend,
                cell_options=fields.cell_options(m),
                dropout=m.dropout,
                tie=m.tie,
                init_scale=m.init_scale,
                dropout_h=m.dropout_h,
                dropout_i=m.dropout_i,
                dropout_e=m.dropout_e,
                weight_drop=m.weight_drop,
            )
        return RNNLanguageModel(
            len(self.vocab),
            m.embedding,
            m.hidden,
            m.layers,
            cell=m.cell,
            backend=m.backend,
            cell_options=fields.cell_options(m),
            dropout=m.dropout,
            tie=m.tie,
            init_scale=m.init_scale,
            forget_bias=m.forget_bias,
        )

    def num_train_batches(self, epoch: int) -> int:
        if self.dcfg.batching == "windows":
            n = self.ids["train"].numel() - self.dcfg.window
            return -(-n // self.config.train.batch_size)
        assert self._train_cols is not None
        if self.dcfg.variable_bptt:
            return len(self._variable_chunks(epoch))
        return len(StreamBatches(self._train_cols, self.dcfg.bptt))

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        if self.dcfg.batching == "windows":
            return self._window_batches(epoch, start)
        assert self._train_cols is not None
        if self.dcfg.variable_bptt:
            return self._variable_batches(epoch, start)
        return StreamBatches(self._train_cols, self.dcfg.bptt).iter_from(start)

    def _variable_chunks(self, epoch: int) -> list[tuple[int, int]]:
        """(start row, length) of every batch of an epoch, a pure function of (train.seed, epoch).

        Merity et al.: length ~ N(bptt, std) with probability 1 - bptt_half, else N(bptt / 2, std), at least
        bptt_min. Drawn up front so the number of batches is known and a resume starts at the same batch.
        """
        if self._chunks is not None and self._chunks[0] == epoch:
            return self._chunks[1]
        d = self.dcfg
        assert self._train_cols is not None
        rows = self._train_cols.size(0)
        rng = random.Random(derive_seed(self.config.train.seed, epoch))
        chunks, i = [], 0
        while i < rows - 2:
            mean = d.bptt if rng.random() >= d.bptt_half else d.bptt / 2
            length = min(max(d.bptt_min, int(rng.gauss(mean, d.bptt_std))), rows - 1 - i)
            chunks.append((i, length))
            i += length
        self._chunks = (epoch, chunks)
        return chunks

    def _variable_batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        data = self._train_cols
        assert data is not None
        for i, length in self._variable_chunks(epoch)[start:]:
            yield data[i : i + length], data[i + 1 : i + 1 + length]  # (length, batch) each

    def lr_factor(self, batch: Any) -> float:
        """Variable BPTT: a batch of length L trains at lr * L / bptt, so short batches do not count as much."""
        if not self.dcfg.variable_bptt or self.dcfg.batching != "stream":
            return 1.0
        return batch[0].size(0) / self.dcfg.bptt

    def _window_batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        ids, w, bs = self.ids["train"], self.dcfg.window, self.config.train.batch_size
        starts = window_starts(ids.numel(), w, self.config.train.seed, epoch)
        offsets = torch.arange(w + 1)
        for b in range(start, -(-starts.numel() // bs)):
            s = starts[b * bs : (b + 1) * bs]
            win = ids[s.unsqueeze(1) + offsets].t()  # (window + 1, batch)
            yield to_device(win[:-1], self.device), to_device(win[-1], self.device)

    def loss_scale(self) -> float:
        summed = self.config.optim.loss_over_time == "sum_time" and self.dcfg.batching == "stream"
        return float(self.dcfg.bptt) if summed else 1.0

    def begin_epoch(self, model: nn.Module, epoch: int) -> None:
        self.hidden = None  # Zaremba: state zeroed at the start of each epoch

    def _noise(self, x: Tensor) -> Tensor:
        """Input noising (word dropout, adjacent swaps) from the global RNG, which checkpoints carry."""
        d = self.dcfg
        if d.word_swap and x.size(0) > 1:
            swap = torch.rand(x.size(0) - 1, x.size(1), device=x.device) < d.word_swap
            swap[1:] &= ~swap[:-1]  # no overlapping swaps: token i <-> i+1 only
            idx = torch.arange(x.size(0), device=x.device).unsqueeze(1).expand_as(x).clone()
            idx[:-1][swap] += 1
            idx[1:][swap] -= 1
            x = x.gather(0, idx)
        if d.word_dropout:
            assert self.vocab is not None
            x = x.masked_fill(torch.rand(x.shape, device=x.device) < d.word_dropout, self.vocab.unk_index)
        return x

    def train_step(self, model: nn.Module, batch: Any) -> tuple[Tensor, ...]:
        d, o = self.dcfg, self.config.optim
        x, y = batch  # stream: (bptt, batch) each; windows: (window, batch) and (batch,)
        if d.word_dropout or d.word_swap:
            x = self._noise(x)
        if d.batching == "windows":
            logits, _ = model(x)  # (window, batch, vocab)
            return softmax_cross_entropy(logits[-1].float(), y), y.numel()
        hidden = _detach(self.hidden) if d.carry_state else None
        # with targets the model returns the mean NLL: decoder + softmax fused in fp32, and under autocast the
        # decoder in bf16/fp16 with the log-softmax in fp32 (rnnkit.ops.loss.linear_cross_entropy)
        if o.ar or o.tar:
            nll, hidden, (raw, dropped) = model(x, hidden, activations=True, targets=y)  # raw: (bptt, batch, h)
        else:
            nll, hidden = model(x, hidden, targets=y)
        self.hidden = _detach(hidden)
        if not (o.ar or o.tar):
            return nll, y.numel()
        objective = nll
        if o.ar:
            objective = objective + o.ar * dropped.float().pow(2).mean()
        if o.tar:
            objective = objective + o.tar * (raw[1:] - raw[:-1]).float().pow(2).mean()
        return objective, y.numel(), nll.detach()

    def loop_state(self) -> dict[str, Any]:
        if self.hidden is None:
            return {}
        h = self.hidden
        if self.world > 1:  # one global batch in the checkpoint, whatever the number of processes
            from rnnkit.distributed import gather_columns

            h = _tree_map(gather_columns, h)
        if isinstance(h, Tensor) or (len(h) == 2 and all(isinstance(t, Tensor) for t in h)):
            return {"hidden": [t.detach().cpu() for t in (h if isinstance(h, tuple) else (h,))]}
        return {"hidden": _tree_to_lists(h), "nested": True}  # per-layer states (AWD)

    def load_loop_state(self, state: dict[str, Any]) -> None:
        h = state.get("hidden")
        if not h:
            self.hidden = None
            return
        if state.get("nested"):
            tree = _lists_to_tree(h)
        else:
            ts = tuple(h)
            tree = ts if len(ts) == 2 else ts[0]
        per = self.config.train.batch_size // self.world

        def local(t: Tensor) -> Tensor:  # (layers, global batch, hidden) -> this rank's columns
            if self.world > 1:
                t = t[:, self.rank * per : (self.rank + 1) * per].contiguous()
            return t.to(self.device)

        self.hidden = _tree_map(local, tree)

    # -- evaluation -------------------------------------------------------------------------------
    @torch.inference_mode()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in self.ids:
            self.prepare((split,))
        model.eval()
        inputs, targets = eval_columns(self.ids[split], self.eval_batch_size)
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        hidden = None
        step = max(self.dcfg.bptt, 1)
        for i in range(0, inputs.size(0), step):
            logits, hidden = model(inputs[i : i + step], hidden)  # (chunk, batch, vocab)
            total += F.cross_entropy(
                logits.view(-1, logits.size(-1)).float(),
                targets[i : i + step].reshape(-1),
                ignore_index=IGNORE,
                reduction="sum",
            ).double()
        n = int((targets != IGNORE).sum())
        mean = float(total) / max(n, 1)
        out = {"loss": mean, "ppl": perplexity(mean), "tokens": n}
        if self.dcfg.tokenizer == "char":
            out["bpc"] = bits_per_char(mean)
        return out

    def evaluate_data(self, model: nn.Module, data: Any, folder: Path) -> dict[str, float]:
        """Perplexity of new text (a file, a text or a list of lines), read with the run's vocabulary."""
        path = self.data_file(data, folder, "train.txt")
        tokens = tokenize(read_text(path), self.dcfg.tokenizer, self.dcfg.lowercase, self.dcfg.punctuation)
        if not tokens:
            raise UserError(f"{path}: no tokens")
        assert self.vocab is not None
        self.ids["new data"] = self.vocab.encode(tokens)
        return self.evaluate(model, "new data")

    def describe_loss(self, loss: float) -> dict[str, float]:
        return {"ppl": perplexity(loss)}

    # -- decoding ---------------------------------------------------------------------------------
    def encode_prompt(self, prompt: str) -> list[int]:
        assert self.vocab is not None
        if self.dcfg.tokenizer == "word":
            words = tokenize(prompt, "word", self.dcfg.lowercase, self.dcfg.punctuation)[:-1] if prompt.strip() else []
            ids = []
            for w in words:
                w = w if w in self.vocab else w.lower()
                ids.append(self.vocab.index(w) if w in self.vocab else self.vocab.unk_index)
            if words and all(i == self.vocab.unk_index for i in ids):
                raise UserError(f"every word of the prompt is unknown to this model's vocabulary: {prompt!r}")
            return [self.vocab.index(EOS)] + ids  # start as after a sentence end
        chars = list(prompt.lower() if self.dcfg.lowercase else prompt)
        ids = [self.vocab.index(c) for c in chars if c in self.vocab]
        if chars and not ids:
            raise UserError(f"no character of the prompt is in this model's vocabulary: {prompt!r}")
        return ids or [self.vocab.index("\n") if "\n" in self.vocab else 0]

    def generation_stream(
        self, model: nn.Module, prompt: str, words: int, opts: SamplingOptions, seed: int | None = None
    ) -> Stream:
        """One generation request as a :class:`~rnnkit.decode.stream.Stream`: the server decodes many of these
        in one :meth:`generation_batch`; :meth:`generate` runs one alone. Checks the prompt (UserError) now."""
        assert self.vocab is not None
        opts.validate()
        return _LMStream(self, model, self.encode_prompt(prompt), words, opts, seed)

    def generation_batch(self, model: nn.Module) -> StreamBatch:
        """An empty batch of generation streams over ``model`` (one token per row per step)."""
        model.eval()
        return StreamBatch(lambda tokens, state: model(tokens, state))

    @torch.inference_mode()
    def generate(
        self, model: nn.Module, prompt: str, words: int, opts: SamplingOptions, seed: int | None = None
    ) -> str:
        """Continue ``prompt`` by ``words`` words (whitespace-separated words for character models)."""
        stream = self.generation_stream(model, prompt, words, opts, seed)
        batch = self.generation_batch(model)
        if not batch.add(stream):
            batch.run()
        return stream.result()

    def describe(self) -> dict[str, Any]:
        # "level": the key clients of rnnkit 0.1 read (word | char)
        return {"level": self.dcfg.tokenizer, "tokenizer": self.dcfg.tokenizer}


class _LMStream(Stream):
    """A prompt's continuation: its own generator and stop rule (``words`` words, at most 4 tokens a word, or 20
    characters a word for character models); one row."""

    def __init__(
        self,
        task: LanguageModelTask,
        model: nn.Module,
        ids: list[int],
        words: int,
        opts: SamplingOptions,
        seed: int | None,
    ) -> None:
        assert task.vocab is not None
        self.task, self.model, self.ids, self.words, self.opts = task, model, ids, words, opts
        self.prompt = ids  # a running batch feeds it (rnnkit.decode.stream)
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.banned = [task.vocab.unk_index] if task.vocab.unk_index >= 0 else None
        self.char_level = task.dcfg.tokenizer == "char"
        self.max_tokens = words * 20 if self.char_level else words * 4
        self.out: list[str] = []
        self.n_words = 0

    def prefill(self) -> tuple[Tensor, Any]:
        self.model.eval()
        logits, hidden = self.model(torch.tensor(self.ids, device=self.task.device).unsqueeze(1))  # (len, 1, V)
        return logits[-1], hidden

    def choose(self, logits: Tensor) -> Tensor:
        return _LMStream.choose_together([self], logits)  # logits: (1, vocab)

    @staticmethod
    def choose_together(streams: list[_LMStream], logits: Tensor) -> Tensor:
        """The next token of every stream (one row each) in one vectorised draw: each row with its own options and
        generator (``sample_rows``), so batched and alone agree."""
        tokens = sample_rows(logits, [s.opts for s in streams], [s.generator for s in streams], streams[0].banned)
        for s, t in zip(streams, tokens.tolist()):
            s._take(t)
        return tokens

    def _take(self, token: int) -> None:
        assert self.task.vocab is not None
        tok = self.task.vocab.itos[token]
        self.out.append(tok)
        if self.char_level:
            self.n_words = len("".join(self.out).split()) if tok.isspace() else self.n_words
        elif tok != EOS:
            self.n_words += 1
        self.done = self.n_words >= self.words or len(self.out) >= self.max_tokens

    def result(self) -> str:
        if self.char_level:
            return "".join(self.out)
        return detokenize(self.out, self.task.dcfg.tokenizer).strip("\n")
