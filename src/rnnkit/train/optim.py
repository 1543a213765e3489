"""Optimisers and learning-rate schedules, with state that survives a resume."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from rnnkit.config import OptimConfig
from rnnkit.errors import UserError


def build_optimizer(cfg: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    # foreach kernels update all parameters in a few fused calls instead of a Python loop per tensor
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=True)
    if cfg.name in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        if len(cfg.betas) != 2:
            raise UserError(f"optim.betas: expected two numbers, got {cfg.betas}")
        return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, foreach=True)
    raise UserError(f"optim.name: expected sgd, adam or adamw, got {cfg.name!r}")


class Schedule:
    """Learning rate as a function of (epoch, step), plus plateau bookkeeping.

    zaremba:  lr * decay ** max(epoch - decay_after, 0)    (epoch 0-based; Zaremba et al. 2014)
    plateau:  lr * decay each time validation fails to improve for more than `patience` evaluations
    cosine:   min_lr + (lr - min_lr) * (1 + cos(pi * epoch / max_epochs)) / 2
    constant: lr
    All of them are multiplied by a linear warm-up over the first `warmup_steps` optimiser steps.
    """

    KINDS = ("constant", "zaremba", "plateau", "cosine")

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
