"""The classic toy: read a random bit string, output how many ones it holds (or its parity).

Counting needs the network to carry an integer across 50 steps, which a simple RNN can do and which makes a
fast, deterministic smoke test for the whole training system.

Two things make it slow to learn in the textbook set-up (one 24-unit simple RNN, a linear softmax on the last
state, Adam), and the recipe fixes both:

* The head. A ReLU RNN with W_hh = I (IRNN) is an exact integrator, so the final state holds the count ``c``
  almost from the start; but a linear softmax can only pick class ``c`` from a single count feature as
  ``logit_j = a (j c - j^2 / 2)``, with biases quadratic in ``j`` (hundreds for counts near 25). Adam moves
  each parameter by about ``lr`` per step, so growing them takes tens of thousands of steps. ``model.head =
  "count"`` (``CountHead``) builds that quadratic in and learns only a read-out of ``c``.
* Precision. A recurrent weight of ``1 + d`` instead of 1 miscounts by about ``T c d / 2`` (~600 d here), so
  one Adam step of 1e-2 on W_hh moves the answer by several counts: once the network counts, its predictions
  still swing between right and off by one (validation accuracy jumping between ~0 and 1) until the learning
  rate has fallen to a few 1e-3 (at a constant 2e-3 it keeps swinging). A cosine schedule to ``min_lr =
  1e-4``, with enough epochs that the last ones run near it, is what turns "nearly counts" into 100% accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import MAX_SEED, ConfigError, RunConfig, key
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.seeds import derive_seed
from rnnkit.tasks import fields, register
from rnnkit.tasks.base import Task

LABELS = {"count": "how many ones (classes 0..data.bits)", "parity": "whether the count is odd (2 classes)"}
INITS = {
    "default": "PyTorch's initialisation",
    "identity": "IRNN (Le et al. 2015): W_hh = I, biases 0; lets a ReLU RNN add",
}
HEADS = {
    "linear": "softmax over a linear map of the last state",
    "count": "CountHead: classes are the integers 0..K-1, scored by distance from one learned read-out of the "
    "count (100% accuracy after ~1-2k Adam steps where a linear head needs ~20k for ~97%)",
}


@dataclass
class ParityData:
    size: int = key(100_000, "random bit strings generated in all", ge=10, le=10_000_000)
    bits: int = key(50, "bits per string (time steps)", ge=1, le=100_000)
    label: str = key("count", "what the network outputs for a string", choices=LABELS)
    valid_fraction: float = fields.fraction(0.1, "share of the strings held out for validation")
    test_fraction: float = fields.fraction(0.1, "share of the strings held out for testing")
    synthetic_seed: int = key(
        0,
        "synthetic data: seed of the random strings and of their split (train.seed only orders them)",
        ge=0,
        le=MAX_SEED,
    )

    RENAMED: ClassVar[dict[str, str]] = {"target": "data.label", "length": "data.bits", "seed": "data.synthetic_seed"}


@dataclass
class ParityModel(fields.RecurrentKeys):
    cell: str = fields.cell("rnn_tanh")
    hidden: int | list[int] = fields.hidden(24)
    layers: int = fields.layers(1)
    init: str = key("default", "recurrent weight initialisation", choices=INITS)
    head: str = key("linear", "output layer", choices=HEADS)


class CountHead(nn.Module):
    """Classes 0..K-1 taken as numbers: one read-out ``c = w . h + b`` and ``logit_j = -beta (c - j)^2 / 2``.

    The softmax over these logits is a Gaussian of precision ``beta`` (learned, as ``log beta``, from 1) centred
    on ``c`` and discretised to the integers, so cross-entropy trains ``c`` to be the count and the argmax is the
    integer nearest ``c``. A linear head can express the same scores only as ``a j c - a j^2 / 2 + const`` with
    biases quadratic in ``j``, which gradient descent grows slowly; here that quadratic is fixed and only ``w``,
    ``b`` and ``beta`` are learned. With two classes it reduces to logistic regression on ``c``.
    """

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.read = nn.Linear(features, 1)
        self.log_precision = nn.Parameter(torch.zeros(()))
        self.register_buffer("values", torch.arange(num_classes, dtype=torch.float32), persistent=False)

    def forward(self, h: Tensor) -> Tensor:
        c = self.read(h)  # (batch, 1): the count as a real number
        return -0.5 * self.log_precision.exp() * (c - self.values) ** 2  # (batch, classes)


@register
class ParityTask(Task[ParityData, ParityModel]):
    name = "parity"
    metric = "accuracy"
    higher_is_better = True
    count_unit = "sequences"
    default_eval_batch_size = 4096

    @classmethod
    def check_config(cls, config: RunConfig[ParityData, ParityModel]) -> None:
        fields.check_recurrent(config.model)
        d = config.data
        for s in ("valid", "test"):
            if int(d.size * getattr(d, f"{s}_fraction")) < 1:
                raise ConfigError(f"data.{s}_fraction", f"of data.size = {d.size} strings leaves the {s} split empty")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.splits_data: dict[str, tuple[Tensor, Tensor]] = {}

    @property
    def num_classes(self) -> int:
        return self.dcfg.bits + 1 if self.dcfg.label == "count" else 2

    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        d = self.dcfg
        g = torch.Generator().manual_seed(d.synthetic_seed)
        bits = torch.randint(0, 2, (d.size, d.bits), generator=g)
        y = bits.sum(1) if d.label == "count" else bits.sum(1) % 2
        n_test, n_valid = int(d.size * d.test_fraction), int(d.size * d.valid_fraction)
        n_train = d.size - n_test - n_valid
        cuts = {"train": (0, n_train), "valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, d.size)}
        for s in splits:
            a, b = cuts[s]
            # (seq, batch, 1) floats: the bit at each step is the input feature
            self.splits_data[s] = (bits[a:b].t().unsqueeze(-1).float().to(self.device), y[a:b].to(self.device))

    def placeholder_artifacts(self) -> dict[str, Any]:
        return {}

    def make_model(self) -> nn.Module:
        m = self.mcfg
        model = SequenceClassifier(
            self.num_classes,
            m.hidden,
            m.layers,
            cell=m.cell,
            backend=m.backend,
            cell_options=fields.cell_options(m),
            input_size=1,
        )
        if m.head == "count":
            model.head = CountHead(model.spec.output_size, self.num_classes)
        if m.init == "identity":
            with torch.no_grad():
                for name, p in model.rnn.named_parameters():
                    leaf = name.rpartition(".")[2]  # "weight_hh_l0", or "1.weight_hh_l0" with per-layer sizes
                    if leaf.startswith("weight_hh"):
                        p.copy_(torch.eye(p.size(0), p.size(1)).repeat(p.size(0) // p.size(1), 1)[: p.size(0)])
                    elif leaf.startswith("bias"):
                        p.zero_()
        return model

    def num_train_batches(self, epoch: int) -> int:
        n = self.splits_data["train"][1].numel()
        return -(-n // self.config.train.batch_size)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        x, y = self.splits_data["train"]
        bs = self.config.train.batch_size
        g = torch.Generator().manual_seed(derive_seed(self.config.train.seed, epoch))
        order = torch.randperm(y.numel(), generator=g).to(y.device)
        for b in range(start, self.num_train_batches(epoch)):
            idx = order[b * bs : (b + 1) * bs]
            yield x[:, idx], y[idx]

    def train_step(self, model: nn.Module, batch: Any) -> tuple[Tensor, int]:
        x, y = batch
        return F.cross_entropy(model(x), y), y.numel()

    @torch.inference_mode()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in self.splits_data:
            self.prepare((split,))
        model.eval()
        x, y = self.splits_data[split]
        loss, correct, bs = 0.0, 0, self.eval_batch_size
        for i in range(0, y.numel(), bs):
            logits = model(x[:, i : i + bs])
            loss += float(F.cross_entropy(logits, y[i : i + bs], reduction="sum"))
            correct += int((logits.argmax(-1) == y[i : i + bs]).sum())
        return {"loss": loss / y.numel(), "accuracy": correct / y.numel(), "examples": y.numel()}
