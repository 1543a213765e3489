"""How far back a loss can reach: the gradient of a last-step loss with respect to every earlier hidden state.

A loss at step ``T`` sees ``h_t`` only through the chain ``dh_T/dh_{T-1} ... dh_{t+1}/dh_t``. For a tanh RNN
each factor is ``diag(1 - h^2) W_hh``, and with PyTorch's default init the product shrinks geometrically -
the vanishing gradient. The LSTM's additive cell path (``dc_{t-1} = f_t dc_t``) and the GRU's
interpolation (``h_t = (1 - z) n + z h_{t-1}``) are there to slow that decay; :func:`gradient_flow` measures it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from rnnkit.cells import registry
from rnnkit.cells.base import RecurrentSpec
from rnnkit.cells.factory import make_recurrent
from rnnkit.cells.stack import state_tensor


def gradient_flow(
    cells: Sequence[str] = ("rnn_tanh", "lstm", "gru"),
    steps: int = 100,
    hidden: int = 64,
    input_size: int = 32,
    batch: int = 16,
    seed: int = 0,
    backend: str = "scratch",
) -> dict[str, list[float]]:
    """For each cell, ``||dL/dh_t||`` for ``t = 0 .. steps - 1`` (averaged over the batch), ``L`` at the last step.

    ``h_t`` is the state tensor that holds the output (the registry's ``output_state``); for a cell whose state does
    not hold it (sLSTM, mLSTM, Mamba) it is the first state tensor that is not a convolution's buffer of inputs (its
    norm over all its dimensions), and at the last step the output itself.

    Each cell is a single layer with PyTorch's default init (LSTM ``forget_bias`` 0), fed the same
    ``N(0, 1)`` input sequence; ``L = sum_b (h_T[b] . p)`` for a fixed random ``p``. The module is stepped one
    time step per call, so each step's hidden state is a tensor of its own whose ``.grad`` can be kept; that
    works for either backend. Runs in float64 so the far end of a vanishing gradient does not underflow.

    Returns ``{cell: [norm at t=0, ..., norm at t=steps-1]}`` - plain floats, JSON-serialisable; the last entry
    is 0 steps before the end.
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, input_size, generator=gen, dtype=torch.float64)  # (steps, batch, input)
    proj = torch.randn(hidden, generator=gen, dtype=torch.float64)  # (hidden,)

    result: dict[str, list[float]] = {}
    for cell in cells:
        torch.manual_seed(seed)  # the same init draws for every run of this cell
        module = make_recurrent(RecurrentSpec(cell, input_size, hidden), backend).double()
        module.train()
        state = None
        hs = []
        entry = registry.get(cell)
        spec = RecurrentSpec(cell, input_size, hidden)
        # the state tensor that carries the recurrence: the output where the state holds it, else the first one that
        # is not a convolution's buffer of inputs (sLSTM's h, mLSTM's C, Mamba's ssm)
        carried = entry.output_in_state(spec) or next(p.name for p in entry.layout(spec) if p.bridge != "zeros")
        for t in range(steps):
            out, state = module(x[t : t + 1], state)
            # (1, batch, ...): the state tensor the next step reads - or, where the state does not hold the output
            # (mLSTM, Mamba), the last step's output itself, which the loss reads
            last = t == steps - 1 and entry.output_in_state(spec) is None
            h = out if last else state_tensor(module, state, carried)
            h.retain_grad()
            hs.append(h)
        loss = (hs[-1] @ proj).sum()
        loss.backward()
        result[cell] = [float(h.grad.flatten(2).norm(dim=-1).mean()) for h in hs]
    return result


def _steps_back(norms: Sequence[float]) -> list[float]:
    """Reorder a time-ordered list so that index ``k`` is ``k`` steps before the end."""
    return list(reversed(norms))


def format_gradient_table(result: dict[str, list[float]], every: int = 10) -> str:
    """A plain-text table: one row per ``every`` steps back from the end (0, 10, 20...), one column per cell."""
    if every < 1:
        raise ValueError("every must be at least 1")
    names = list(result)
    steps = max((len(v) for v in result.values()), default=0)
    back = {name: _steps_back(result[name]) for name in names}
    width = max([10, *(len(n) for n in names)])
    lines = ["steps back".rjust(10) + "".join(n.rjust(width + 2) for n in names)]
    for k in range(0, steps, every):
        cells = [f"{back[n][k]:.2e}" if k < len(back[n]) else "-" for n in names]
        lines.append(str(k).rjust(10) + "".join(c.rjust(width + 2) for c in cells))
    return "\n".join(lines)


def plot_gradient_flow(result: dict[str, list[float]], path: str | Path) -> None:
    """Write a PNG of ``||dL/dh_t||`` against steps before the end, log-scale y, one line per cell."""
    from rnnkit.figures import figure, save_png

    fig = figure((6.4, 4.0), dpi=100)
    ax = fig.add_subplot()
    for name, norms in result.items():
        back = _steps_back(norms)
        ax.plot(range(len(back)), back, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("steps before the last step")
    ax.set_ylabel("mean ||dL/dh_t||")
    ax.set_title("Gradient of a last-step loss through time")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_png(fig, Path(path), dpi=100, flag="plot=...")


def decay_ratio(norms: Iterable[float], back: int) -> float:
    """``||dL/dh_{T-back}|| / ||dL/dh_T||``: how much of the gradient survives ``back`` steps."""
    values = _steps_back(list(norms))
    return values[back] / values[0]
