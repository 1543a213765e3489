"""Recurrent forecasters: a window of ``lookback`` steps in, ``horizon`` steps out.

Three shapes share one class:

* ``direct`` + ``rnn``: an encoder reads the window; a linear head maps its last hidden state to all ``horizon``
  steps at once (multi-output).
* ``direct`` + ``seq2seq``: the encoder's final state starts a decoder that unrolls ``horizon`` steps, each fed the
  previous step's forecast and its position in the horizon; each step predicts the change from the previous one.
* ``recursive``: a one-step model (each step predicts the change to the next value) trained with teacher forcing
  on every position of the window, and unrolled on its own forecasts for multi-step prediction.

With ``gaussian=True`` every step also gets a log-variance, trained with the Gaussian negative log-likelihood,
so forecasts come with prediction intervals. With ``quantile=True`` (direct ``rnn`` only) every step gets a lower
and an upper quantile instead, below and above the mean by construction (softplus gaps), trained with the pinball
loss at the interval's two levels beside the mean's squared error (``quantile_loss``).

Covariates (direct ``rnn`` only): ``exog`` more input channels read with the series at every lookback step
(past-only and known-future covariates alike), and ``future`` known-future covariates the head also reads over
the whole horizon (their values at the forecast's own times, as darts' and neuralforecast's future covariates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import RecurrentSpec, make_recurrent
from rnnkit.cells.dropout import Dropout
from rnnkit.cells.stack import handover, map_state

STRATEGIES = ("direct", "recursive")
ARCHITECTURES = ("rnn", "seq2seq")
LOGVAR_MIN, LOGVAR_MAX = -12.0, 8.0


class Forecaster(nn.Module):
    """See the module docstring. ``hidden``: one size for every layer or one per layer; the seq2seq decoder has
    the encoder's sizes (it starts from the encoder's state, layer by layer)."""

    def __init__(
        self,
        n_series: int,
        horizon: int,
        hidden: int | Sequence[int],
        layers: int = 1,
        cell: str = "lstm",
        backend: str = "fast",
        dropout: float = 0.0,
        strategy: str = "direct",
        arch: str = "rnn",
        gaussian: bool = False,
        forget_bias: float = 0.0,
        quantile: bool = False,
        shared: bool = False,
        cell_options: Mapping[str, Any] | None = None,
        exog: int = 0,
        future: int = 0,
    ) -> None:
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        if arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
        if arch == "seq2seq" and strategy != "direct":
            raise ValueError("arch 'seq2seq' is a direct multi-step model; use strategy 'direct'")
        if quantile and (gaussian or strategy != "direct" or arch != "rnn"):
            raise ValueError("quantile outputs are for a direct 'rnn' model without a Gaussian head")
        if shared and strategy != "direct":
            raise ValueError("a model shared across series (one series at a time) forecasts directly")
        if (exog or future) and (strategy != "direct" or arch != "rnn" or shared):
            raise ValueError("covariates are for a direct 'rnn' model of its own series (not shared)")
        if future > exog:
            raise ValueError("the known-future covariates are among the exog input channels")
        self.k, self.horizon, self.strategy, self.arch = n_series, horizon, strategy, arch
        self.gaussian, self.quantile, self.shared = gaussian, quantile, shared
        self.exog, self.future = exog, future
        self.width = 1 if shared else n_series  # series one recurrence reads: one at a time when shared
        n_series = self.width
        sizes = hidden if isinstance(hidden, int) else tuple(hidden)
        options = dict(cell_options or {})
        self.spec = RecurrentSpec(
            cell, n_series + exog, sizes, layers, dropout=dropout, forget_bias=forget_bias, **options
        )  # reads each step's values and its covariates
        self.rnn = make_recurrent(self.spec, backend)
        self.drop = Dropout(dropout)
        per_step = n_series * (3 if quantile else 2 if gaussian else 1)
        top = self.spec.output_size
        if strategy == "direct" and arch == "rnn":
            self.head = nn.Linear(top + horizon * future, horizon * per_step)
        else:
            self.head = nn.Linear(top, per_step)
        if arch == "seq2seq":
            self.decoder = make_recurrent(
                RecurrentSpec(cell, n_series + 1, sizes, layers, dropout=dropout, forget_bias=forget_bias, **options),
                backend,
            )

    def _split(self, o: Tensor) -> tuple[Tensor, Tensor | None]:
        """Head output -> (mean, log-variance | bounds (..., k, 2): lower, upper | None)."""
        if self.quantile:
            k = self.width
            mean = o[..., :k]
            return mean, torch.stack([mean - F.softplus(o[..., k : 2 * k]), mean + F.softplus(o[..., 2 * k :])], -1)
        if not self.gaussian:
            return o, None
        return o[..., : self.width], o[..., self.width :].clamp(LOGVAR_MIN, LOGVAR_MAX)

    def forward(self, x: Tensor, future: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """x: (lookback, batch, k + exog) -> (mean, log-variance or None); future: (batch, horizon, future), the
        known-future covariates over the horizon (with ``future`` > 0).

        direct: each (batch, horizon, k); recursive: one-step predictions for every input position, (lookback,
        batch, k), where position t predicts the value after x[t]. A shared model reads each of the k series
        alone (as a batch of batch * k univariate windows) with the same weights: one global model.
        """
        if self.shared and self.k > 1:
            L, B, k = x.shape
            mean, extra = self._forward(x.reshape(L, B * k, 1))  # window b's series j is row b * k + j
            return _unshare(mean, B, k), (_unshare(extra, B, k) if extra is not None else None)
        return self._forward(x, future)

    def _forward(self, x: Tensor, future: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        out, state = self.rnn(x)  # out: (lookback, batch, hidden)
        if self.strategy == "recursive":
            mean, logvar = self._split(self.head(self.drop(out)))
            return x + mean, logvar
        if self.arch == "rnn":
            h = self.drop(out[-1])  # (batch, hidden)
            if self.future:
                assert future is not None, "a model with known-future covariates needs them for the horizon"
                h = torch.cat([h, future.reshape(x.size(1), -1)], -1)
            o = self.head(h).view(x.size(1), self.horizon, -1)  # (batch, horizon, per_step)
            return self._split(o)
        prev = x[-1]  # (batch, k)
        state = handover(self.decoder, state)  # the encoder's state starts the decoder (a conv buffer: zeros)
        means, logvars = [], []
        for j in range(self.horizon):
            pos = torch.full((x.size(1), 1), (j + 1) / self.horizon, dtype=x.dtype, device=x.device)
            dout, state = self.decoder(torch.cat([prev, pos], dim=-1).unsqueeze(0), state)
            mean, logvar = self._split(self.head(self.drop(dout[0])))
            prev = prev + mean
            means.append(prev)
            logvars.append(logvar)
        return torch.stack(means, 1), (torch.stack(logvars, 1) if self.gaussian else None)  # type: ignore[arg-type]

    @torch.no_grad()
    def unroll(
        self, x: Tensor, steps: int, repeats: int = 1, generator: torch.Generator | None = None, sample: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Recursive strategy: ``steps`` forecasts, each fed back as the next input -> (batch * repeats, steps, k).

        The window is encoded once; its state is then repeated ``repeats`` times (window-major). With
        ``sample=True`` (Gaussian head) each step feeds back a draw from its predictive distribution instead of the
        mean, so the repeats become sample paths whose spread includes the compounding of errors.
        """
        out, state = self.rnn(x)
        last, h = x[-1], out[-1]
        if repeats > 1:
            last, h = last.repeat_interleave(repeats, 0), h.repeat_interleave(repeats, 0)
            state = map_state(lambda s: s.repeat_interleave(repeats, 1), state)
        means, logvars = [], []
        for j in range(steps):
            mean, logvar = self._split(self.head(h))
            mean = last + mean
            if sample and logvar is not None:
                noise = torch.randn(mean.shape, generator=generator).to(mean.device, mean.dtype)
                mean = mean + noise * torch.exp(0.5 * logvar)
            means.append(mean)
            logvars.append(logvar)
            if j + 1 < steps:
                out, state = self.rnn(mean.unsqueeze(0), state)
                last, h = mean, out[-1]
        return torch.stack(means, 1), (torch.stack(logvars, 1) if self.gaussian else None)  # type: ignore[arg-type]


def _unshare(t: Tensor, batch: int, k: int) -> Tensor:
    """(batch * k, horizon, 1, ...) of a shared model -> (batch, horizon, k, ...)."""
    t = t.reshape(batch, k, *t.shape[1:])  # (batch, k, horizon, 1, ...)
    return t.transpose(1, 2).squeeze(3)


def pinball(pred: Tensor, target: Tensor, q: float) -> Tensor:
    """The pinball (quantile) loss of a ``q``-quantile forecast, elementwise: q (y - f) above, (1 - q) (f - y) below."""
    diff = target - pred
    return torch.maximum(q * diff, (q - 1) * diff)


def quantile_loss(mean: Tensor, bounds: Tensor, target: Tensor, level: float, reduction: str = "mean") -> Tensor:
    """The mean's squared error plus the pinball losses of the lower and upper bounds (bounds[..., 0 / 1]) at the
    quantiles (1 - level) / 2 and (1 + level) / 2 of a ``level`` central interval."""
    lo, hi = (1 - level) / 2, (1 + level) / 2
    terms = (mean - target) ** 2 + pinball(bounds[..., 0], target, lo) + pinball(bounds[..., 1], target, hi)
    return terms.mean() if reduction == "mean" else terms.sum()


def forecast_loss(mean: Tensor, logvar: Tensor | None, target: Tensor, reduction: str = "mean") -> Tensor:
    """MSE for point forecasts; the full Gaussian negative log-likelihood (with its 0.5 log 2 pi) otherwise."""
    if logvar is None:
        return F.mse_loss(mean, target, reduction=reduction)
    nll = 0.5 * (logvar + (target - mean) ** 2 * torch.exp(-logvar) + math.log(2 * math.pi))
    return nll.mean() if reduction == "mean" else nll.sum()
