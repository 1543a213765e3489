"""The registry of recurrent cells: one declaration per cell, and everything that needs to know about cells reads it.

Each :class:`Cell` says what a user and the rest of rnnkit need to know about one recurrent cell:

* ``scratch``: how to build its reference implementation - the paper's equations, one time step at a time, the
  implementation every fast one is tested against;
* ``fast``: how to build its fast implementation (PyTorch's kernels for the classic cells, rnnkit's own parallel
  forms for the others), or None where there is none; and ``forms``, the named implementations the fast backend
  may run (the LSTM's ``kernel`` and ``projected``, chosen per shape by ``train.recurrence``);
* ``state``: the names and shapes of its state tensors (:class:`StateTensor`), from which exported graphs name
  their inputs and outputs, ``rnnkit.cells.stack`` slices and joins states per layer, beam search and the server's
  step batching select rows, seq2seq bridges a bidirectional encoder to its decoder, and a language model's
  checkpoint stores the carried state;
* ``options``: the configuration options it supports beyond the ones every cell has (:data:`OPTIONS`): a
  configuration asking a cell for an option it lacks is refused naming the key and the cells that have it;
* ``doc`` (one line) and ``paper``: for the configuration glossary (docs/config.md) and error messages.

Configuration validation (``rnnkit.tasks.fields``), ``make_recurrent``, ``rnnkit diagnose gradients --cells``,
the glossary and the error messages all read this registry, so a cell added here is a cell everywhere. A cell
defined outside rnnkit (or in a test) joins with :func:`register` (:func:`registered` for a scope).

State layout, every cell: a module built from a :class:`~rnnkit.cells.base.RecurrentSpec` of layers of one
size returns its state as one tensor (a cell with one state tensor, e.g. the GRU's ``h``) or a tuple of them in
the declared order (the LSTM's ``(h, c)``), each ``(layers * directions, batch, *dims)`` - dimension 1 is always
the batch, so any code can select, join or repeat rows without knowing the cell. Layers of different sizes make a
:class:`~rnnkit.cells.stack.LayerStack`, whose state is a tuple of one such state per layer. The state comes back
in the parameters' dtype (fp32 masters under autocast), the output in the compute dtype.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from rnnkit.cells.base import RecurrentSpec

BACKENDS = {
    "fast": "the cell's fastest implementation (PyTorch's kernels for the classic cells, parallel forms for the "
    "others)",
    "scratch": "the cell's equations, one step at a time: the reference the fast one is tested against",
}
# Old backend names, accepted one release with a warning: "fused" meant PyTorch's fused kernels (see docs/config.md)
RENAMED_BACKENDS = {"fused": "fast"}
# Options a cell may or may not support -> the configuration key that asks for it and what it means. Every cell
# supports dropout between layers, several layers and autocast; the stack adds those.
OPTIONS = {
    "bidirectional": ("model.bidirectional", "read each sequence in both directions"),
    "layer_sizes": ("model.hidden", "layers of different sizes (a list, one size per layer)"),
    "forget_bias": ("model.forget_bias", "a forget-gate bias added at initialisation"),
    "weight_drop": ("model.weight_drop", "DropConnect on hidden-to-hidden matrices (AWD-LSTM)"),
    "identity_init": ("model.init", "an identity hidden-to-hidden matrix at initialisation (IRNN)"),
}
Builder = Callable[[RecurrentSpec], nn.Module]


@dataclass(frozen=True)
class StateTensor:
    """One tensor of a cell's state: its name, its dimensions after ``(layers * directions, batch)`` for one layer
    (``dims(spec, size)``, ``size`` the layer's hidden size), and how an encoder's final state becomes a decoder's
    first (seq2seq, the seq2seq forecaster): ``"tanh"``/``"linear"``: as it is, and from a bidirectional encoder a
    learned map of ``[forward; backward]`` (vector states only); ``"forward"``: as it is, from a bidirectional
    encoder the forward direction's; ``"zeros"``: the decoder starts it at zero (a convolution's buffer of the
    encoder's own inputs, which the decoder never read)."""

    name: str
    dims: Callable[[RecurrentSpec, int], tuple[int, ...]] = lambda spec, size: (size,)
    bridge: str = "linear"

    def __post_init__(self) -> None:
        if self.bridge not in ("tanh", "linear", "forward", "zeros"):
            raise ValueError(
                f"state tensor {self.name!r}: bridge must be tanh, linear, forward or zeros, not {self.bridge!r}"
            )


Layout = tuple[StateTensor, ...]


@dataclass(frozen=True)
class Cell:
    """The declaration of one recurrent cell (see the module docstring).

    ``state`` and ``output_state`` may depend on the spec (an mLSTM without its convolution has no ``conv`` state;
    a minGRU wider inside than outside has an ``h`` that is not its output): give a function of the spec then.
    """

    name: str
    doc: str  # one line: what it is
    paper: str  # where its equations come from
    state: Layout | Callable[[RecurrentSpec], Layout]
    scratch: Builder | str  # a builder, or "module:attribute" of one (imported on first use)
    fast: Builder | str | None = None  # None: scratch only
    forms: Mapping[str, str] = field(default_factory=dict)  # the fast backend's implementations -> meaning
    default_form: str = ""  # of forms, or "auto" (chosen per shape, rnnkit.cells.select)
    options: frozenset[str] = frozenset()  # of options(): what the cell supports beyond what every cell has
    # the state tensor that equals the output at the last step; None: none does (or a function of the spec)
    output_state: str | None | Callable[[RecurrentSpec], str | None] = "h"
    step: Callable[..., Any] | None = None  # classic cells: the ScratchCell for one layer (spec, input_size)
    own_init: bool = False  # its initialisation matters (gate biases, decay rates): models' uniform init skips it
    # the hidden-to-hidden matrices of a one-layer, one-direction module, by parameter name: what AWD-LSTM's weight
    # drop (DropConnect) masks; none: the cell has no such matrix (its recurrence is elementwise or a scan)
    hidden_to_hidden: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if callable(self.state):
            return
        if not self.state:
            raise ValueError(f"cell {self.name!r} declares no state tensors")
        names = [s.name for s in self.state]
        if len(set(names)) != len(names):
            raise ValueError(f"cell {self.name!r}: state tensor names repeat: {names}")
        if isinstance(self.output_state, str) and self.output_state not in names:
            raise ValueError(f"cell {self.name!r}: output_state {self.output_state!r} is not one of {names}")
        if self.default_form and self.default_form != "auto" and self.default_form not in self.forms:
            raise ValueError(f"cell {self.name!r}: default form {self.default_form!r} is not one of its forms")
        if ("weight_drop" in self.options) != bool(self.hidden_to_hidden):
            raise ValueError(f"cell {self.name!r}: the weight_drop option needs hidden_to_hidden parameters")

    @property
    def backends(self) -> tuple[str, ...]:
        return ("fast", "scratch") if self.fast is not None else ("scratch",)

    def builder(self, backend: str) -> Builder:
        """The function building this cell's module for a spec of layers of one size."""
        backend = canonical_backend(backend)
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        target = self.fast if backend == "fast" else self.scratch
        if target is None:
            raise ValueError(f"cell {self.name!r} has no fast implementation; use backend 'scratch'")
        return _resolve(target)

    def supports(self, option: str) -> bool:
        return option in self.options

    def layout(self, spec: RecurrentSpec) -> Layout:
        """The state tensors of this cell for ``spec``, in the order its state tuple holds them."""
        return self.state(spec) if callable(self.state) else self.state

    def state_names(self, spec: RecurrentSpec) -> tuple[str, ...]:
        return tuple(s.name for s in self.layout(spec))

    def state_dims(self, spec: RecurrentSpec, size: int) -> list[tuple[str, tuple[int, ...]]]:
        """(name, dimensions after (layers * directions, batch)) of each state tensor of a layer of ``size``."""
        return [(s.name, tuple(int(d) for d in s.dims(spec, size))) for s in self.layout(spec)]

    def output_in_state(self, spec: RecurrentSpec) -> str | None:
        """The state tensor that equals the output at the last step, for ``spec``; None when none does."""
        return self.output_state(spec) if callable(self.output_state) else self.output_state


def _resolve(target: Builder | str) -> Builder:
    if callable(target):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


# -- the registry ---------------------------------------------------------------------------------------------------
_CELLS: dict[str, Cell] = {}


def register(cell: Cell, replace: bool = False) -> Cell:
    """Add ``cell`` to the registry (every configuration key, check and builder sees it from then on)."""
    if cell.name in _CELLS and not replace:
        raise ValueError(f"a cell named {cell.name!r} is registered already")
    unknown = {o for o in cell.options if o not in OPTIONS and o not in _cell_specific}
    if unknown:
        raise ValueError(f"cell {cell.name!r}: unknown option(s) {sorted(unknown)}; declare them with add_option")
    _CELLS[cell.name] = cell
    return cell


def unregister(name: str) -> None:
    _CELLS.pop(name, None)


@contextlib.contextmanager
def registered(cell: Cell) -> Iterator[Cell]:
    """``cell`` registered for the duration of a ``with`` block (tests, experiments)."""
    register(cell)
    try:
        yield cell
    finally:
        unregister(cell.name)


_cell_specific: dict[str, tuple[str, str]] = {}


def add_option(option: str, key: str, doc: str) -> None:
    """Declare a cell-specific option (e.g. a head count) and the configuration key that sets it."""
    _cell_specific[option] = (key, doc)


def options() -> dict[str, tuple[str, str]]:
    """Every option a cell may support -> (configuration key, meaning)."""
    return {**OPTIONS, **_cell_specific}


def get(name: str) -> Cell:
    try:
        return _CELLS[name]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}; choose one of {', '.join(_CELLS)}") from None


def names() -> tuple[str, ...]:
    return tuple(_CELLS)


def cells() -> tuple[Cell, ...]:
    return tuple(_CELLS.values())


def supporting(option: str) -> list[str]:
    """The cells that support ``option`` (for error messages)."""
    return [c.name for c in _CELLS.values() if option in c.options]


def with_backend(backend: str) -> list[str]:
    return [c.name for c in _CELLS.values() if canonical_backend(backend) in c.backends]


def forms() -> dict[str, str]:
    """Every fast form of every cell -> its meaning (the values ``train.recurrence`` takes besides ``auto``)."""
    out: dict[str, str] = {}
    for c in _CELLS.values():
        for name, doc in c.forms.items():
            out.setdefault(name, doc)
    return out


def with_form(form: str) -> list[str]:
    return [c.name for c in _CELLS.values() if form in c.forms]


def canonical_backend(name: str) -> str:
    """``name`` with an old backend name replaced by its new one (and a DeprecationWarning)."""
    new = RENAMED_BACKENDS.get(name)
    if new is None:
        return name
    import warnings

    warnings.warn(
        f"backend {name!r} is now called {new!r} (the old name is accepted until rnnkit 0.3)",
        DeprecationWarning,
        stacklevel=3,
    )
    return new


class CellDocs(Mapping[str, str]):
    """A live view ``cell name -> one-line description``: the ``model.cell`` key's choices, so a cell registered
    later (a plug-in, a test) is accepted by configurations and listed by the glossary like a built-in one."""

    def __getitem__(self, name: str) -> str:
        c = _CELLS[name]
        text = f"{c.doc} ({c.paper})"
        return text if c.fast is not None else text + "; scratch backend only"

    def __iter__(self) -> Iterator[str]:
        return iter(list(_CELLS))

    def __len__(self) -> int:
        return len(_CELLS)


# -- the built-in cells ---------------------------------------------------------------------------------------------
def _scratch(spec: RecurrentSpec) -> nn.Module:
    from rnnkit.cells.layer import ScratchRecurrent

    return ScratchRecurrent(spec)


def _kernel(spec: RecurrentSpec) -> nn.Module:
    from rnnkit.cells.kernel import build_kernel

    return build_kernel(spec)


def _rnn_step(spec: RecurrentSpec, input_size: int) -> Any:
    from rnnkit.cells.rnn import RNNCell

    return RNNCell(input_size, spec.hidden_size, nonlinearity=spec.cell.split("_")[1], bias=spec.bias)


def _lstm_step(spec: RecurrentSpec, input_size: int) -> Any:
    from rnnkit.cells.lstm import LSTMCell

    peephole = spec.cell == "peephole_lstm"
    return LSTMCell(input_size, spec.hidden_size, bias=spec.bias, peephole=peephole, forget_bias=spec.forget_bias)


def _layernorm_step(spec: RecurrentSpec, input_size: int) -> Any:
    from rnnkit.cells.layernorm_lstm import LayerNormLSTMCell

    return LayerNormLSTMCell(input_size, spec.hidden_size, bias=spec.bias, forget_bias=spec.forget_bias)


def _gru_step(spec: RecurrentSpec, input_size: int) -> Any:
    from rnnkit.cells.gru import GRUCell

    return GRUCell(input_size, spec.hidden_size, bias=spec.bias)


KERNEL = "PyTorch's nn.LSTM / nn.GRU / nn.RNN kernel (cuDNN on CUDA, oneDNN on CPU)"
PROJECTED = (
    "rnnkit.cells.projected: the input half of every gate as one GEMM, the recurrence's GEMMs in the autocast "
    "dtype, the cell state and gate arithmetic in fp32"
)
H = StateTensor("h", bridge="tanh")
C = StateTensor("c", bridge="linear")
_CLASSIC = frozenset({"bidirectional", "layer_sizes", "weight_drop", "identity_init"})
HH = ("weight_hh_l0",)
_LSTM = _CLASSIC | {"forget_bias"}


# -- the modern cells (rnnkit.cells.modern: one stack, each cell's module says what one layer computes) -------------
def _modern_builder(module: str, backend: str) -> Builder:
    def build(spec: RecurrentSpec) -> nn.Module:
        return importlib.import_module(f"rnnkit.cells.{module}").build(spec, backend)

    build.__qualname__ = f"{module}.build({backend!r})"
    return build


def _modern_layout(module: str, bridges: Mapping[str, str]) -> Callable[[RecurrentSpec], Layout]:
    """The state tensors the cell's module declares for a spec (``state_layout(spec, batch)``), each with its
    seq2seq bridge (a convolution's buffer ``"zeros"``, the others ``"forward"`` unless named)."""

    def layout(spec: RecurrentSpec) -> Layout:
        shapes = importlib.import_module(f"rnnkit.cells.{module}").state_layout(spec, 1)
        return tuple(
            StateTensor(name, _dims_of(module, name), bridges.get(name, "zeros" if name == "conv" else "forward"))
            for name, _ in shapes
        )

    return layout


def _dims_of(module: str, name: str) -> Callable[[RecurrentSpec, int], tuple[int, ...]]:
    def dims(spec: RecurrentSpec, size: int) -> tuple[int, ...]:
        # spec: the stack's (layers of one size) or one layer's (a LayerStack's); size is its hidden size
        shapes = dict(importlib.import_module(f"rnnkit.cells.{module}").state_layout(spec, 1))
        return tuple(shapes[name][2:])

    return dims


def _h_if_not_expanded(spec: RecurrentSpec) -> str | None:
    """minGRU / minLSTM: the state ``h`` is the output unless the layer runs wider inside (``expand != 1``)."""
    return "h" if spec.expand in (None, 1, 1.0) else None


# cell-specific hyperparameters: RecurrentSpec fields, each set by the [model] key of the same name
for _option, _doc in (
    ("heads", "heads of the recurrence (sLSTM, mLSTM): they divide the hidden size (mLSTM: the inner width)"),
    ("expand", "inner width / hidden size (minGRU, minLSTM: 1; mLSTM, Mamba: 2)"),
    ("state_size", "Mamba: N, the SSM state per channel"),
    ("conv_size", "width of the causal depthwise convolution (Mamba >= 1; sLSTM, mLSTM: 0 = none)"),
    ("dt_rank", "Mamba: rank of the step-size projection"),
):
    add_option(_option, f"model.{_option}", _doc)

MODERN = frozenset({"bidirectional", "layer_sizes"})

for _cell in (
    Cell(
        "lstm",
        "long short-term memory",
        "Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000",
        (H, C),
        _scratch,
        _kernel,
        {"kernel": KERNEL, "projected": PROJECTED},
        "auto",
        _LSTM,
        step=_lstm_step,
        hidden_to_hidden=HH,
    ),
    Cell(
        "gru",
        "gated recurrent unit",
        "Cho et al. 2014",
        (H,),
        _scratch,
        _kernel,
        {"kernel": KERNEL},
        "kernel",
        _CLASSIC,
        step=_gru_step,
        hidden_to_hidden=HH,
    ),
    Cell(
        "rnn_tanh",
        "simple (Elman) RNN, tanh",
        "Elman 1990",
        (H,),
        _scratch,
        _kernel,
        {"kernel": KERNEL},
        "kernel",
        _CLASSIC,
        step=_rnn_step,
        hidden_to_hidden=HH,
    ),
    Cell(
        "rnn_relu",
        "simple RNN, ReLU",
        "Elman 1990; with identity init (IRNN): Le et al. 2015",
        (H,),
        _scratch,
        _kernel,
        {"kernel": KERNEL},
        "kernel",
        _CLASSIC,
        step=_rnn_step,
        hidden_to_hidden=HH,
    ),
    Cell(
        "peephole_lstm",
        "LSTM with peephole connections",
        "Gers & Schmidhuber 2000",
        (H, C),
        _scratch,
        options=_LSTM,
        step=_lstm_step,
        hidden_to_hidden=HH,
    ),
    Cell(
        "layernorm_lstm",
        "layer-normalised LSTM",
        "Ba, Kiros & Hinton 2016",
        (H, C),
        _scratch,
        options=_LSTM,
        step=_layernorm_step,
        hidden_to_hidden=HH,
    ),
    Cell(
        "mingru",
        "minGRU: a GRU whose gates see only the input, a linear recurrence trained as a scan",
        "Feng et al. 2024",
        _modern_layout("mingru", {"h": "linear"}),
        _modern_builder("mingru", "scratch"),
        _modern_builder("mingru", "fast"),
        options=MODERN | {"expand"},
        output_state=_h_if_not_expanded,
        own_init=True,
    ),
    Cell(
        "minlstm",
        "minLSTM: an LSTM whose gates see only the input, normalised forget and input gates, a scan",
        "Feng et al. 2024",
        _modern_layout("minlstm", {"h": "linear"}),
        _modern_builder("minlstm", "scratch"),
        _modern_builder("minlstm", "fast"),
        options=MODERN | {"forget_bias", "expand"},
        output_state=_h_if_not_expanded,
        own_init=True,
    ),
    Cell(
        "slstm",
        "sLSTM: exponential gating with normaliser and stabiliser states, per-head recurrence (xLSTM)",
        "Beck et al. 2024",
        _modern_layout("slstm", {"h": "tanh"}),
        _modern_builder("slstm", "scratch"),
        _modern_builder("slstm", "fast"),
        options=MODERN | {"forget_bias", "heads", "conv_size", "weight_drop"},
        output_state=None,  # the output is the state's h group-normalised
        own_init=True,
        hidden_to_hidden=("layers.0.0.recurrent",),  # R, one block per head
    ),
    Cell(
        "mlstm",
        "mLSTM: a matrix memory with exponential gating, chunkwise-parallel in training (xLSTM)",
        "Beck et al. 2024",
        _modern_layout("mlstm", {}),
        _modern_builder("mlstm", "scratch"),
        _modern_builder("mlstm", "fast"),
        options=MODERN | {"heads", "expand", "conv_size"},
        output_state=None,
        own_init=True,
    ),
    Cell(
        "mamba",
        "Mamba: the selective state-space block (input-dependent step, B and C; causal convolution; gating)",
        "Gu & Dao 2023",
        _modern_layout("mamba", {}),
        _modern_builder("mamba", "scratch"),
        _modern_builder("mamba", "fast"),
        options=MODERN | {"expand", "state_size", "conv_size", "dt_rank"},
        output_state=None,
        own_init=True,
    ),
):
    register(_cell)
del _cell, _option, _doc
