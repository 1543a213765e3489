"""What ``rnnkit export`` writes for each task: small ``nn.Module`` wrappers with plain tensor inputs and outputs.

An exported graph cannot hold Python state, tuples of states, dataclasses or packed sequences, so each task's
model is wrapped into the steps a runtime loops over itself:

* language model: one call per chunk of tokens, the recurrent state in and out (``tokens, h[, c] -> logits, h[, c]``);
  a runtime feeds the prompt, then one sampled token at a time.

The recurrent state is ``h`` and ``c`` (``(layers * directions, batch, hidden)``) for layers of one size, and one
tensor per layer, ``h_l0, c_l0, h_l1, c_l1...`` (``(directions, batch, size of that layer)``), for layers of
different sizes (``model.hidden = [256, 128]``) and AWD-LSTM: those cannot be stacked. Outputs add ``_out``.
* classifier: ``tokens`` (text) or ``features`` (numeric sequences) -> ``logits, probabilities``.
* forecaster: a window in the model's frame -> the horizon's ``mean`` (and ``logvar`` for Gaussian heads); the
  recursive strategy's feedback loop is unrolled over the trained horizon.
* sequence to sequence: an ``encoder`` graph and a step-wise ``decoder`` graph (one target token -> logits, the new
  state and the attention weights), so greedy, sampled or beam decoding runs outside Python.

Padding cannot be expressed (packed sequences do not survive export): every sequence of a batch must have the
same length, e.g. one input at a time. Scratch-backend layers of cells that have a PyTorch kernel are swapped for
the kernel module (same parameter layout, same numbers) so sequence lengths stay dynamic; scratch-only cells
(peephole, layer-normalised LSTM) export with the example's fixed shapes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells.base import RecurrentSpec
from rnnkit.cells.stack import flat_state, state_shapes, unflatten_state
from rnnkit.errors import UserError
from rnnkit.runs import LoadedRun


@dataclass
class Graph:
    """One exported graph: the module, example inputs to trace it with, and other-shaped inputs to check it."""

    name: str  # "" for a task's only graph; "encoder" / "decoder" for seq2seq
    module: nn.Module
    example: tuple[Tensor, ...]
    check: tuple[Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    fixed_shapes: bool = False  # traced through Python loops: only the example's shapes are valid

    def __post_init__(self) -> None:
        # eval mode for the wrapper itself: exporters restore the wrapper's mode onto every child afterwards,
        # and a wrapper left in training mode would switch the model's dropout back on
        self.module.eval()

    def describe(self) -> dict[str, Any]:
        def spec(name: str, t: Tensor) -> dict[str, Any]:
            axes = self.dynamic_axes.get(name, {})
            return {
                "name": name,
                "dtype": str(t.dtype).replace("torch.", ""),
                "shape": [axes.get(i, int(n)) for i, n in enumerate(t.shape)],
            }

        with torch.inference_mode():
            out = self.module(*self.example)
        out = out if isinstance(out, tuple) else (out,)
        return {
            "inputs": [spec(n, t) for n, t in zip(self.inputs, self.example)],
            "outputs": [spec(n, t) for n, t in zip(self.outputs, out)],
            "fixed_shapes": self.fixed_shapes,
        }


# -- preparing a model ------------------------------------------------------------------------------------------
def export_copy(model: nn.Module) -> tuple[nn.Module, bool]:
    """A copy of ``model`` in eval mode whose recurrent layers export: scratch layers of the classic cells swapped
    for PyTorch's kernel module (same parameters, same numbers), which ONNX and TorchScript export with dynamic
    lengths; the modern cells switched to their step form (their fast scans write into slices of preallocated
    buffers and call compiled code, which a trace cannot follow). Also says whether any layer now runs a Python loop
    over time - scratch-only cells, modern cells - whose graphs then hold the example's sequence length."""
    from rnnkit.cells import registry
    from rnnkit.cells.kernel import KERNEL_CELLS, build_kernel
    from rnnkit.cells.layer import ScratchRecurrent
    from rnnkit.cells.modern import ModernRecurrent

    model = copy.deepcopy(model).cpu().eval()
    fixed = False
    for name, module in list(model.named_modules()):
        if isinstance(module, ModernRecurrent):
            module.backend = "scratch"  # the same parameters, the paper's step: plain tensor ops
        if not _recurrent_layer(module) or isinstance(module, nn.RNNBase):
            continue  # PyTorch's kernel exports with dynamic lengths
        if not isinstance(module, ScratchRecurrent):
            fixed = True  # any other cell's module loops over time in Python
            continue
        if module.spec.cell not in KERNEL_CELLS or registry.get(module.spec.cell).fast is None:
            fixed = True
            continue
        kernel = build_kernel(module.spec)
        kernel.load_state_dict(module.state_dict())
        parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        setattr(parent, name.rpartition(".")[2], kernel.eval())
    return model, fixed


def _recurrent_layer(module: nn.Module) -> bool:
    """Whether ``module`` is one recurrent layer (stack) of a cell: it has a spec and nothing inside it does (a model
    or a LayerStack holds such layers)."""
    has = lambda m: isinstance(getattr(m, "spec", None), RecurrentSpec)  # noqa: E731
    return has(module) and not any(has(m) for m in module.modules() if m is not module)


def _state_names(rnn: nn.Module) -> list[str]:
    return [name for name, _ in state_shapes(rnn, 1)]


def _recurrent(model: nn.Module) -> nn.Module:
    """A language model's recurrent layers: ``rnn`` (one module or a LayerStack), or AWD-LSTM's ``rnns``."""
    return model.rnn if hasattr(model, "rnn") else model.rnns


# -- language model ---------------------------------------------------------------------------------------------
class LanguageModelStep(nn.Module):
    """tokens (seq, batch) int64 and the state -> logits (seq, batch, vocab) and the new state."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        logits, new = self.model(tokens, unflatten_state(_recurrent(self.model), state))
        return (logits, *flat_state(new))


def _lm_state(model: nn.Module, vocab: int, batch: int, gen: torch.Generator) -> tuple[Tensor, ...]:
    """A state the model can reach: after a few random tokens from zeros (random numbers would put, say, an sLSTM's
    normaliser near zero, where its output is ill-conditioned and no two runtimes agree to 1e-5)."""
    with torch.no_grad():
        _, state = model(torch.randint(0, vocab, (4, batch), generator=gen))
    return flat_state(state)


def _lm_graphs(model: nn.Module, vocab: int, fixed: bool) -> list[Graph]:
    """Layers that export with dynamic lengths: a graph over any number of tokens. Layers that run a Python loop
    over time (``fixed``): the one-token step - what a runtime loops over to feed a prompt and generate - with a
    dynamic batch."""
    g = torch.Generator().manual_seed(0)
    rnn = _recurrent(model)
    names = _state_names(rnn)
    seq = (1, 1) if fixed else (5, 9)
    example = (torch.randint(0, vocab, (seq[0], 2), generator=g), *_lm_state(model, vocab, 2, g))
    check = (torch.randint(0, vocab, (seq[1], 3), generator=g), *_lm_state(model, vocab, 3, g))
    axes = {"tokens": {1: "batch"}, "logits": {1: "batch"}} if fixed else {}
    axes = axes or {"tokens": {0: "seq", 1: "batch"}, "logits": {0: "seq", 1: "batch"}}
    axes.update({n: {1: "batch"} for n in names})
    axes.update({f"{n}_out": {1: "batch"} for n in names})
    return [
        Graph(
            "",
            LanguageModelStep(model),
            example,
            check,
            ["tokens", *names],
            ["logits", *(f"{n}_out" for n in names)],
            axes,
            False,  # the step graph's batch is dynamic
        )
    ]


# -- classifiers ------------------------------------------------------------------------------------------------
class ClassifierGraph(nn.Module):
    """inputs (seq, batch) token ids or (seq, batch, features) -> logits and probabilities (batch, classes)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.model(x, None)
        return logits, torch.softmax(logits, dim=-1)


def _classifier_graphs(model: nn.Module, task: Any, fixed: bool) -> list[Graph]:
    g = torch.Generator().manual_seed(0)
    if model.embed is not None:
        vocab = model.embed.num_embeddings
        example = (torch.randint(1, vocab, (7, 2), generator=g),)
        check = example if fixed else (torch.randint(1, vocab, (12, 3), generator=g),)
        name = "tokens"
    else:
        steps = task.shape[0] // task.dcfg.chunk
        feats = model.spec.input_size
        example = (torch.randn(steps, 2, feats, generator=g),)
        check = example if fixed else (torch.randn(steps, 3, feats, generator=g),)
        name = "features"
    axes = {name: {0: "seq", 1: "batch"}, "logits": {0: "batch"}, "probabilities": {0: "batch"}}
    return [Graph("", ClassifierGraph(model), example, check, [name], ["logits", "probabilities"], axes, fixed)]


# -- forecaster -------------------------------------------------------------------------------------------------
class ForecasterGraph(nn.Module):
    """A window (lookback, batch, k) in the model's frame -> mean (batch, horizon, k) [and logvar]."""

    def __init__(self, model: nn.Module, horizon: int) -> None:
        super().__init__()
        self.model = model
        self.horizon = horizon

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if self.model.strategy == "recursive":
            mean, logvar = self.model.unroll(x, self.horizon)
        else:
            mean, logvar = self.model(x)
        return (mean,) if logvar is None else (mean, logvar)


def _forecast_graphs(model: nn.Module, task: Any, fixed: bool) -> list[Graph]:
    g = torch.Generator().manual_seed(0)
    d = task.dcfg
    k = model.k
    example = (torch.randn(d.lookback, 2, k, generator=g),)
    check = example if fixed else (torch.randn(d.lookback, 3, k, generator=g),)
    outputs = ["mean", "logvar"] if model.gaussian else ["mean", "bounds"] if model.quantile else ["mean"]
    axes = {"window": {1: "batch"}, **{o: {0: "batch"} for o in outputs}}
    return [Graph("", ForecasterGraph(model, d.horizon), example, check, ["window"], outputs, axes, fixed)]


# -- sequence to sequence ---------------------------------------------------------------------------------------
class Seq2SeqEncoder(nn.Module):
    """src (S, batch) ids, no padding -> memory, keys, mask and the decoder's first state."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor) -> tuple[Tensor, ...]:
        st = self.model.encode(src, None)
        keys = st.keys if st.keys is not None else st.memory
        out = (st.memory, keys, st.mask, *flat_state(st.rnn))
        return (*out, st.feed) if st.feed is not None else out


class Seq2SeqDecoderStep(nn.Module):
    """One target token per sentence (batch,) and the state -> logits (batch, vocab), the new state, attention."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, memory: Tensor, keys: Tensor, mask: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        from rnnkit.models.seq2seq import DecoderState

        m = self.model
        n = len(_state_names(m.decoder))
        rnn, feed = unflatten_state(m.decoder, rest[:n]), (rest[n] if m.carries_feed else None)
        st = DecoderState(rnn, memory, keys if m.attn is not None else None, mask, feed)
        feat, new, weights = m.step(tokens, st)
        out = (m.logits(feat), *flat_state(new.rnn))
        if new.feed is not None:
            out = (*out, new.feed)
        if weights is None:
            weights = torch.zeros_like(mask, dtype=memory.dtype)
        return (*out, weights)


def _seq2seq_graphs(model: nn.Module, task: Any, fixed: bool) -> list[Graph]:
    g = torch.Generator().manual_seed(0)
    src_vocab, tgt_vocab = model.src_emb.num_embeddings, model.tgt_emb.num_embeddings
    state = _state_names(model.decoder)
    feed = ["feed"] if model.carries_feed else []
    enc = Seq2SeqEncoder(model)
    src = torch.randint(4, src_vocab, (6, 2), generator=g)
    src_check = src if fixed else torch.randint(4, src_vocab, (8, 3), generator=g)
    enc_out = ["memory", "keys", "mask", *state, *feed]
    enc_axes = {
        "src": {0: "src_len", 1: "batch"},
        "memory": {0: "batch", 1: "src_len"},
        "keys": {0: "batch", 1: "src_len"},
        "mask": {0: "batch", 1: "src_len"},
        **{n: {1: "batch"} for n in state},
        **{n: {0: "batch"} for n in feed},
    }
    with torch.no_grad():  # not inference_mode: these become inputs of a trace
        start = enc(src)
        # the decoder is one step either way (no loop over time): its batch and source length stay dynamic
        start_check = enc(torch.randint(4, src_vocab, (8, 3), generator=g))

    def dec_inputs(enc_outputs: tuple[Tensor, ...], batch: int) -> tuple[Tensor, ...]:
        toks = torch.randint(4, tgt_vocab, (batch,), generator=g)
        return (toks, *(t.clone() for t in enc_outputs))

    dec_in = ["tokens", "memory", "keys", "mask", *state, *feed]
    dec_out = ["logits", *(f"{n}_out" for n in state), *(f"{n}_out" for n in feed), "attention"]
    dec_axes = {
        "tokens": {0: "batch"},
        "memory": {0: "batch", 1: "src_len"},
        "keys": {0: "batch", 1: "src_len"},
        "mask": {0: "batch", 1: "src_len"},
        "logits": {0: "batch"},
        "attention": {0: "batch", 1: "src_len"},
        **{n: {1: "batch"} for n in state},
        **{f"{n}_out": {1: "batch"} for n in state},
        **{n: {0: "batch"} for n in feed},
        **{f"{n}_out": {0: "batch"} for n in feed},
    }
    return [
        Graph("encoder", enc, (src,), (src_check,), ["src"], enc_out, enc_axes, fixed),
        Graph(
            "decoder",
            Seq2SeqDecoderStep(model),
            dec_inputs(start, 2),
            dec_inputs(start_check, 3),
            dec_in,
            dec_out,
            dec_axes,
            False,
        ),
    ]


def graphs_for(loaded: LoadedRun) -> list[Graph]:
    """The graphs to export for a run, by what its task does (see the module docstring)."""
    from rnnkit import predict

    model, fixed = export_copy(loaded.model)
    task = loaded.task
    if predict.can(loaded, "generate") and hasattr(model, "decoder") and hasattr(model, "encoder"):
        return _lm_graphs(model, model.encoder.num_embeddings, fixed)
    if predict.can(loaded, "classify") and hasattr(model, "head"):
        return _classifier_graphs(model, task, fixed)
    if predict.can(loaded, "forecast"):
        return _forecast_graphs(model, task, fixed)
    if predict.can(loaded, "translate"):
        return _seq2seq_graphs(model, task, fixed)
    raise UserError(
        f"{loaded.run.path}: task {loaded.config.task!r} has no export (language models, classifiers, "
        f"forecasters and seq2seq models do)"
    )
