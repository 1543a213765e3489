"""LSTM-FCN: K members in grouped layers compute exactly what K separate models would, and padding changes
nothing."""

import pytest
import torch

from rnnkit.cells import registry
from rnnkit.models.lstm_fcn import LSTMFCN


def _member(model: LSTMFCN, j: int) -> LSTMFCN:
    """A one-member model holding member j's weights, sliced out of the grouped layers."""
    single = LSTMFCN(
        model.spec.input_size,
        model.num_classes,
        filters=[b.conv.out_channels // model.members for b in model.blocks],
        hidden=model.hidden,
        dropout=0.0,
        squeeze_excite=model.excite is not None,
        members=1,
        shuffle_steps=model.shuffle_steps,
    )
    k = model.members
    state = {}
    for name, t in model.state_dict().items():
        if name.startswith("rnns."):
            if name.startswith(f"rnns.{j}."):
                state["rnns.0." + name.split(".", 2)[2]] = t
            continue
        if t.dim() == 0:  # BatchNorm's num_batches_tracked
            state[name] = t
            continue
        size = t.shape[0] // k
        state[name] = t[j * size : (j + 1) * size]
    single.load_state_dict(state)
    return single.eval()


@pytest.mark.parametrize("shuffle_steps", [0, 12], ids=["over-time", "dimension-shuffle"])
def test_members_are_separate_models(shuffle_steps):
    torch.manual_seed(0)
    model = LSTMFCN(3, 4, filters=[6, 10, 5], hidden=4, squeeze_excite=True, members=3, shuffle_steps=shuffle_steps)
    x = torch.randn(2, 9, 3)  # a training step on random data moves the BatchNorm statistics off their start
    model.member_logits(torch.randn(11, 5, 3, 3), None).sum().backward()
    model.eval()
    x = torch.randn(12, 5, 3)  # (steps, batch, channels)
    lengths = torch.tensor([12, 7, 9, 3, 12])
    together = model.member_logits(x, lengths)  # (batch, K, classes)
    for j in range(3):
        alone = _member(model, j).member_logits(x, lengths)[:, 0]
        torch.testing.assert_close(together[:, j], alone, atol=1e-5, rtol=1e-5)
    mean_prob = torch.softmax(together, -1).mean(1)
    torch.testing.assert_close(model(x, lengths).exp(), mean_prob, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cell", registry.names())
def test_padding_changes_nothing(cell):
    """The recurrent branch runs over the padding and reads each series' output at its last valid step: exact
    for every cell, each reading one way in time, and for series of different lengths in one batch."""
    torch.manual_seed(1)
    options = {"heads": 1} if cell in ("slstm", "mlstm") else {}
    backend = "fast" if registry.get(cell).fast is not None else "scratch"
    model = LSTMFCN(2, 3, filters=[4, 8, 4], hidden=4, cell=cell, backend=backend, members=2, cell_options=options)
    model.eval()
    x = torch.randn(10, 3, 2)  # (steps, batch, channels)
    lengths = torch.tensor([10, 4, 7])
    alone = torch.cat([model(x[: int(n), i : i + 1]) for i, n in enumerate(lengths)])
    garbage = x.clone()
    for i, n in enumerate(lengths):
        garbage[int(n) :, i] = 100 * torch.randn(10 - int(n), 2)  # past each series' end
    padded = torch.cat([garbage, 100 * torch.randn(6, 3, 2)])
    torch.testing.assert_close(model(padded, lengths), alone, atol=1e-5, rtol=1e-5)
