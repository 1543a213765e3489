"""LSTM-FCN (Karim et al. 2017) and MLSTM-FCN (Karim et al. 2019): a recurrent branch beside a fully
convolutional one, for classifying numeric series - and a small ensemble of them trained as one module.

Per member: the convolutional branch is three Conv1d -> BatchNorm -> ReLU blocks (kernels 8, 5, 3 over time) and
global average pooling over each series' valid steps (Wang et al. 2017's FCN); with ``squeeze_excite`` the first
two blocks are followed by a squeeze-and-excite gate (Hu et al. 2018), MLSTM-FCN's addition for several channels.
The recurrent branch reads the same standardised series (an rnnkit recurrent stack, any cell), its last state goes
through a high dropout (0.8 in the papers) and is concatenated with the pooled convolutional features before the
linear classifier. Karim et al. feed the LSTM a "dimension-shuffled" input (channels as steps); here it reads the
series over time, the recurrent layer's natural use and the one that keeps unequal lengths meaningful.

Unequal lengths: the recurrent branch runs over the padded batch in one fused call and takes each series' output at
its last valid step - exact, since one layer reading one way in time has not seen the padding after that step -
instead of packing the batch, which sends PyTorch's CPU LSTM down a per-step path ~7x slower (a 1,344-step set of
537 series: 2.4 -> 0.36 s a step).

Members: ``members = K`` models of that shape live side by side as grouped convolutions (``groups = K``), so one
call trains all of them, each on its own batch: the input is ``(steps, batch, K, channels)`` with lengths
``(batch, K)``. That is how a tiny data set gets a cross-validated ensemble (member k is validated on fold k)
without K times the Python overhead. ``forward`` on plain ``(steps, batch, channels)`` gives every member the
same series and returns the log of the members' mean probability (the ensemble's prediction, a valid input to
cross-entropy); ``member_logits`` returns each member's own logits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import RecurrentSpec, make_recurrent
from rnnkit.cells.stack import final_output

KERNELS = (8, 5, 3)


def _mask(lengths: Tensor, steps: int) -> Tensor:
    """(batch, K) lengths -> (batch, K, 1, steps) float mask of valid steps."""
    t = torch.arange(steps, device=lengths.device)
    return (t < lengths.unsqueeze(-1)).unsqueeze(2).float()


class _Block(nn.Module):
    """K members' Conv1d -> BatchNorm -> ReLU (grouped: member k's channels only see member k's)."""

    def __init__(self, members: int, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.members = members
        # "same" length output; even kernels pad one step more on the right, as Keras does
        self.pad = ((kernel - 1) // 2, kernel // 2)
        self.conv = nn.Conv1d(members * cin, members * cout, kernel, groups=members)
        self.norm = nn.BatchNorm1d(members * cout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        # x: (batch, K * cin, steps); mask: (batch, K, 1, steps)
        b, kc, t = x.shape
        x = (x.view(b, self.members, -1, t) * mask).view(b, kc, t)  # padding contributes nothing
        return F.relu(self.norm(self.conv(F.pad(x, self.pad))))  # (batch, K * cout, steps)


class _SqueezeExcite(nn.Module):
    """Channel gates from the masked mean over time, per member (grouped 1x1 convolutions)."""

    def __init__(self, members: int, channels: int, reduction: int = 16) -> None:
        super().__init__()
        mid = max(channels // reduction, 1)
        self.members = members
        self.down = nn.Conv1d(members * channels, members * mid, 1, groups=members)
        self.up = nn.Conv1d(members * mid, members * channels, 1, groups=members)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, kc, t = x.shape
        z = _masked_mean(x.view(b, self.members, -1, t), mask).view(b, kc, 1)  # (batch, K * c, 1)
        return x * torch.sigmoid(self.up(F.relu(self.down(z))))


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    # x: (batch, K, c, steps); mask: (batch, K, 1, steps) -> (batch, K, c)
    return (x * mask).sum(-1) / mask.sum(-1).clamp(min=1)


class LSTMFCN(nn.Module):
    """``members`` LSTM-FCN classifiers in one module (see the module docstring)."""

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        filters: tuple[int, int, int] | list[int] = (128, 256, 128),
        hidden: int = 8,
        cell: str = "lstm",
        backend: str = "fast",
        dropout: float = 0.8,
        squeeze_excite: bool = False,
        members: int = 1,
        shuffle_steps: int = 0,
        pool: int = 1,
        cell_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(filters) != 3:
            raise ValueError(f"filters must be three sizes (one per convolution block), got {list(filters)}")
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
        self.members = members
        self.num_classes = num_classes
        self.embed = None  # numeric input (what rnnkit.export asks of a classifier)
        sizes = [input_size, *filters]
        self.blocks = nn.ModuleList(_Block(members, sizes[i], sizes[i + 1], KERNELS[i]) for i in range(3))
        self.excite = nn.ModuleList(_SqueezeExcite(members, f) for f in filters[:2]) if squeeze_excite else None
        self.hidden = hidden
        # shuffle_steps > 0: Karim et al.'s "dimension shuffle" - the recurrent branch reads the channels as its
        # steps, each a vector of the series' first shuffle_steps values (zero-padded or cut to that many)
        self.shuffle_steps = shuffle_steps
        # pool > 1: the convolutions read the series averaged over windows of `pool` steps (a long series at a
        # resolution where kernels of 8, 5, 3 span its shapes, at 1/pool of the cost)
        self.pool = pool
        options = dict(cell_options or {})  # the cell's own hyperparameters (heads, state_size, ...)
        self.spec = RecurrentSpec(cell, input_size, max(hidden, 1), 1, **options)  # what the model reads per step
        rnn_spec = RecurrentSpec(cell, shuffle_steps, max(hidden, 1), 1, **options) if shuffle_steps else self.spec
        self.rnns = nn.ModuleList(make_recurrent(rnn_spec, backend) for _ in range(members)) if hidden else None
        self.drop = nn.Dropout(dropout)
        width = filters[-1] + (self.spec.output_size if hidden else 0)
        self.head = nn.Conv1d(members * width, members * num_classes, 1, groups=members)  # K linear heads

    def member_logits(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x: (steps, batch, channels) shared by every member, or (steps, batch, K, channels) one batch per
        member; lengths: (batch,) or (batch, K), None when every series is full length. -> (batch, K, classes)"""
        k = self.members
        if x.dim() == 3:
            x = x.unsqueeze(2).expand(-1, -1, k, -1)
        steps, batch, _, channels = x.shape
        full = lengths is None  # every series full length: its output at the last step is the one (exportable)
        if lengths is None:
            lengths = torch.full((batch, k), steps, dtype=torch.long)
        elif lengths.dim() == 1:
            lengths = lengths.unsqueeze(1).expand(-1, k)
        lengths = lengths.to(x.device)
        mask = _mask(lengths, steps)  # (batch, K, 1, steps)
        h = x.permute(1, 2, 3, 0).reshape(batch, k * channels, steps)  # (batch, K * channels, steps)
        if self.pool > 1:  # mean over each window's valid steps; a window past the end stays masked
            p = self.pool
            h = (h.view(batch, k, channels, steps) * mask).view(batch, k * channels, steps)
            num = F.avg_pool1d(h, p, ceil_mode=True)  # (batch, K * channels, ceil(steps / p))
            den = F.avg_pool1d(mask.view(batch, k, steps), p, ceil_mode=True)  # (batch, K, ceil(steps / p))
            h = (num.view(batch, k, channels, -1) / den.clamp(min=1e-6).unsqueeze(2)).view(batch, k * channels, -1)
            mask = (den > 0).float().unsqueeze(2)
        for i, block in enumerate(self.blocks):
            h = block(h, mask)
            if self.excite is not None and i < 2:
                h = self.excite[i](h, mask)
        feats = _masked_mean(h.view(batch, k, -1, h.shape[-1]), mask)  # (batch, K, filters[-1])
        if self.rnns is not None:
            last_step = (lengths - 1).unsqueeze(0).unsqueeze(-1)  # (1, batch, K, 1): where each series ends
            last = []
            for j, rnn in enumerate(self.rnns):
                if self.shuffle_steps:
                    xs = F.pad(x[: self.shuffle_steps, :, j], (0, 0, 0, 0, 0, max(self.shuffle_steps - steps, 0)))
                    out, state = rnn(xs.permute(2, 1, 0), None, None)  # (channels, batch, shuffle_steps)
                    last.append(final_output(rnn, out, state)[-1])  # (batch, hidden)
                else:
                    out, state = rnn(x[:, :, j], None, None)  # x[:, :, j]: (steps, batch, ch), padding included
                    if full:
                        last.append(final_output(rnn, out, state)[-1])  # (batch, hidden)
                    else:  # one causal direction: each step's output has not read the padding after it
                        idx = last_step[:, :, j].expand(1, batch, out.size(-1))
                        last.append(out.gather(0, idx)[0])  # (batch, hidden)
            feats = torch.cat([feats, self.drop(torch.stack(last, 1))], -1)  # (batch, K, width)
        return self.head(feats.reshape(batch, -1, 1)).view(batch, k, self.num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The ensemble's prediction as log-probabilities (batch, classes): log of the members' mean softmax."""
        logp = torch.log_softmax(self.member_logits(x, lengths).float(), dim=-1)  # (batch, K, classes)
        return torch.logsumexp(logp, dim=1) - torch.log(torch.tensor(float(self.members)))
