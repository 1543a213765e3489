"""The recurrent cells, the projected recurrence, mixed precision and batched generation on a CUDA device.

Skipped without a GPU (this project's CPUs); ``benchmarks/gpu_check.sh`` runs them on a lent GPU machine. TF32 is
switched off where fp32 results are compared to 1e-5, since cuDNN's RNNs use it by default.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
BF16_TOL = 2e-2  # the CPU tests' stated tolerance for bf16 GEMMs against fp32 (tests/cells/test_projected.py)


@pytest.fixture(autouse=True)
def _exact_fp32():
    from rnnkit.cells import select

    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    select.reset()
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
    select.reset()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "peephole_lstm", "layernorm_lstm"])
def test_scratch_cells_run_on_cuda_and_match_cudnn(cell):
    from rnnkit.cells import RecurrentSpec, make_recurrent

    torch.manual_seed(0)
    spec = RecurrentSpec(cell, 12, 16, 2, bidirectional=cell == "gru")
    scratch = make_recurrent(spec, "scratch").to(CUDA)
    x = torch.randn(7, 3, 12, device=CUDA, requires_grad=True)
    lengths = torch.tensor([7, 5, 2])
    out, _ = scratch(x, lengths=lengths)
    out.sum().backward()
    assert out.is_cuda and all(p.grad is not None and p.grad.is_cuda for p in scratch.parameters())
    if cell in ("lstm", "gru", "rnn_tanh"):
        fused = make_recurrent(spec, "fast").to(CUDA)
        fused.load_state_dict(scratch.state_dict())
        ref, _ = fused(x, lengths=lengths)
        assert torch.allclose(out, ref, atol=1e-5)


def test_projected_matches_cudnn_in_fp32_and_bf16():
    from rnnkit.cells.projected import lstm_stack

    torch.manual_seed(1)
    lstm = torch.nn.LSTM(32, 24, 2).to(CUDA)
    x = torch.randn(10, 4, 32, device=CUDA, requires_grad=True)
    ins = [x, *lstm.parameters()]
    ref, _ = lstm(x)
    g_ref = torch.autograd.grad(ref.sum(), ins)
    out, _ = lstm_stack(lstm, x, None, torch.float32)
    assert torch.allclose(out, ref, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(torch.autograd.grad(out.sum(), ins), g_ref))
    low, _ = lstm_stack(lstm, x, None, torch.bfloat16)
    assert low.dtype == torch.bfloat16 and _rel(low, ref) < BF16_TOL
    g_low = torch.autograd.grad(low.float().sum(), ins)
    assert all(g.dtype == torch.float32 for g in g_low)
    assert max(_rel(a, b) for a, b in zip(g_low, g_ref)) < BF16_TOL


def test_bf16_autocast_times_cudnn_against_projected_once_per_shape():
    from rnnkit.cells import RecurrentSpec, select
    from rnnkit.cells.kernel import build_kernel

    m = build_kernel(RecurrentSpec("lstm", 16, 32, 2)).to(CUDA)
    x = torch.randn(9, 5, 16, device=CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y, (h, c) = m(x)
        y2, _ = m(x[:4])  # another sequence length: same configuration, no second timing
    k = select.key(m, x, torch.bfloat16)
    assert list(select.choices()) == [k] and set(select.timings()[k]) == {"kernel", "projected"}
    assert y.dtype == torch.bfloat16 and y2.shape == (4, 5, 32)
    y.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in m.parameters())


@pytest.mark.parametrize("name", ["bf16", "fp16", "auto"])
def test_lm_trains_in_reduced_precision_close_to_fp32(tmp_path, data_dir, name):
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe
    from rnnkit.train.loop import Trainer
    from rnnkit.train.rundir import RunDir

    tiny = {
        "model.embedding": 32,
        "model.hidden": 32,
        "train.batch_size": 8,
        "data.bptt": 10,
        "data.train": "ptb/ptb.valid.txt",
        "data.valid": "",
        "data.valid_fraction": 0.05,
        "data.train_fraction": 0.2,
        "data.max_vocab": 500,
        "train.log_every": 1,
        "train.tensorboard": False,
        "train.eval_test": False,
        "train.max_steps": 6,
    }

    def fit(run: Path, precision: str) -> tuple[Trainer, dict[int, float]]:
        config = load_recipe("ptb-small", {**tiny, "train.precision": precision})
        RunDir(run).write_config(config)
        trainer = Trainer(get_task("lm")(config, data_dir, CUDA), config, RunDir(run), CUDA, echo=False)
        trainer.setup(resume=False)
        trainer.fit()
        return trainer, {r["step"]: r["loss"] for r in RunDir(run).read_metrics() if "split" not in r}

    _, ref = fit(tmp_path / "fp32", "fp32")
    trainer, low = fit(tmp_path / name, name)
    assert trainer.precision.name in ("bf16", "fp16")  # auto: bf16 on any GPU that has it, else fp16
    assert all(p.dtype == torch.float32 and p.is_cuda for p in trainer.model.parameters())
    assert ref.keys() == low.keys() and all(abs(ref[s] - low[s]) / ref[s] < 0.03 for s in ref)


def test_batched_generation_on_cuda_equals_each_request_alone(tiny_run):
    from rnnkit import predict
    from rnnkit.runs import load_run

    lm = load_run(str(tiny_run("lm")), "best", "cuda")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in lm.model.parameters():
            p.copy_(torch.empty(p.shape).uniform_(-1.0, 1.0, generator=g).to(p.device))
    requests = [
        ("the company said", 8, 0.0, 0, 1.0, None),
        ("the market", 5, 1.0, 40, 1.0, 3),
        ("mr. smith", 6, 0.8, 0, 0.9, 7),
    ]
    alone = [predict.generate(lm, *r) for r in requests]
    batch = predict.generation_batch(lm)
    streams = [predict.generation_stream(lm, *r) for r in requests]
    with torch.inference_mode():
        for s in streams:
            batch.add(s)
        batch.run()
    assert [s.result() for s in streams] == alone
