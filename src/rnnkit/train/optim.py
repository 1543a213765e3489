"""Optimisers and learning-rate schedules, with state that survives a resume."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from rnnkit.config import SCHEDULES, OptimConfig
from rnnkit.errors import UserError


def build_optimizer(cfg: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    # fused kernels update each parameter in one pass (and take gradient clipping as a divisor, see
    # Precision.step); foreach kernels, a few batched calls instead of a Python loop, where fused ones don't run
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    kernels: dict[str, Any] = {"fused": True} if fused else {"foreach": True}
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **kernels)
    if cfg.name in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        if len(cfg.betas) != 2:
            raise UserError(f"optim.betas: expected two numbers, got {cfg.betas}")
        return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, **kernels)
    if cfg.name == "ntasgd":
        if cfg.momentum:
            raise UserError("optim.momentum: ntasgd is plain SGD before averaging; set optim.momentum = 0")
        if cfg.nonmono < 1:
            raise UserError(f"optim.nonmono: expected a positive integer, got {cfg.nonmono}")
        return NTASGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, nonmono=cfg.nonmono)
    raise UserError(f"optim.name: expected sgd, adam, adamw or ntasgd, got {cfg.name!r}")


class NTASGD(torch.optim.Optimizer):
    """Non-monotonically triggered averaged SGD (Merity, Keskar & Socher 2017, "AWD-LSTM").

    Plain SGD (with L2 ``weight_decay``) until ``observe()`` sees a validation result worse than the best one
    before the last ``nonmono`` evaluations; from then on every step also updates a running (Polyak) average of
    the iterates, ``ax = mean(w_t for t since the switch)``. Evaluation and ``best.pt`` use the average
    (``averaged()``), which is what gives AWD-LSTM its last few points of perplexity.

    Everything - the validation history, whether and since when it averages, the averages themselves - lives in
    ``state_dict()`` (the history in ``param_groups[0]``, ``ax`` per parameter), so a resumed run continues
    exactly. One optimiser object does both phases, so the trainer never has to swap optimisers mid-run.
    """

    def __init__(self, params: Any, lr: float, weight_decay: float = 0.0, nonmono: int = 5) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        g = self.param_groups[0]
        g.setdefault("nonmono", nonmono)
        g.setdefault("val_history", [])  # validation metric after each epoch, oldest first
        g.setdefault("avg_steps", -1)  # -1: plain SGD; otherwise the number of iterates averaged so far

    @property
    def averaging(self) -> bool:
        return self.param_groups[0]["avg_steps"] >= 0

    def observe(self, value: float, higher_is_better: bool = False) -> bool:
        """Feed one end-of-epoch validation result; returns True when this call switched averaging on."""
        g = self.param_groups[0]
        hist: list[float] = g["val_history"]
        n = g["nonmono"]
        worse = (lambda a, b: a < b) if higher_is_better else (lambda a, b: a > b)
        best_before = (max if higher_is_better else min)(hist[:-n]) if len(hist) > n else None
        switched = False
        if not self.averaging and best_before is not None and worse(value, best_before):
            g["avg_steps"] = 0
            switched = True
        hist.append(float(value))
        return switched

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        first = self.param_groups[0]
        averaging = first["avg_steps"] >= 0
        if averaging:
            first["avg_steps"] += 1
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            torch._foreach_add_(params, grads, alpha=-group["lr"])
            if averaging:
                axs = []
                for p in params:
                    st = self.state[p]
                    if "ax" not in st:
                        st["ax"] = p.detach().clone()
                    axs.append(st["ax"])
                # ax += (w - ax) / n: the mean of the n iterates since the switch (the first one is w itself)
                torch._foreach_lerp_(axs, params, 1.0 / first["avg_steps"])
        return loss

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Temporarily load the averaged weights into the parameters (for evaluation and best.pt)."""
        pairs = [
            (p, self.state[p]["ax"])
            for g in self.param_groups
            for p in g["params"]
            if self.averaging and "ax" in self.state[p]
        ]
        if not pairs:
            yield
            return
        with torch.no_grad():
            saved = [p.detach().clone() for p, _ in pairs]
            for p, ax in pairs:
                p.copy_(ax)  # in place: fused modules' flat weight buffers keep pointing at the parameters
        try:
            yield
        finally:
            with torch.no_grad():
                for (p, _), w in zip(pairs, saved):
                    p.copy_(w)


class Schedule:
    """Learning rate as a function of (epoch, step), plus plateau bookkeeping.

    zaremba:  lr * decay ** max(epoch - decay_after, 0)    (epoch 0-based; Zaremba et al. 2014)
    plateau:  lr * decay each time validation fails to improve for more than `patience` evaluations
    cosine:   min_lr + (lr - min_lr) * (1 + cos(pi * epoch / max_epochs)) / 2
    constant: lr
    All of them are multiplied by a linear warm-up over the first `warmup_steps` optimiser steps.
    """

    KINDS = tuple(SCHEDULES)  # declared with optim.schedule (rnnkit.config), checked when a config loads

    def __init__(self, cfg: OptimConfig, max_epochs: int) -> None:
        if cfg.schedule not in self.KINDS:
            raise UserError(f"optim.schedule: expected one of {', '.join(self.KINDS)}, got {cfg.schedule!r}")
        self.cfg = cfg
        self.max_epochs = max(max_epochs, 1)
        self.plateau_scale = 1.0
        self.bad_evals = 0
        self.best: float | None = None

    def lr(self, epoch: int, step: int) -> float:
        c = self.cfg
        if c.schedule == "zaremba":
            lr = c.lr * c.decay ** max(epoch - c.decay_after, 0)
        elif c.schedule == "plateau":
            lr = max(c.lr * self.plateau_scale, c.min_lr)
        elif c.schedule == "cosine":
            progress = min(epoch, self.max_epochs) / self.max_epochs
            lr = c.min_lr + (c.lr - c.min_lr) * (1 + math.cos(math.pi * progress)) / 2
        else:
            lr = c.lr
        if c.warmup_steps and step < c.warmup_steps:
            lr *= (step + 1) / c.warmup_steps
        return lr

    def observe(self, value: float, higher_is_better: bool) -> None:
        """Feed a validation result (plateau schedule)."""
        better = self.best is None or (value > self.best if higher_is_better else value < self.best)
        if better:
            self.best, self.bad_evals = value, 0
            return
        self.bad_evals += 1
        if self.cfg.schedule == "plateau" and self.bad_evals > self.cfg.patience:
            self.plateau_scale *= self.cfg.decay
            self.bad_evals = 0

    def state_dict(self) -> dict[str, Any]:
        return {"plateau_scale": self.plateau_scale, "bad_evals": self.bad_evals, "best": self.best}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.plateau_scale, self.bad_evals, self.best = d["plateau_scale"], d["bad_evals"], d["best"]


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr
