"""Mixed precision: the device decides what `auto` means, fp32 master weights, GradScaler state resumes exactly.

This CPU may lack bf16 hardware, so the training tests use the scratch backend (plain matmuls, which autocast
runs in any dtype) and pretend the probes said yes: they check the wiring, not the speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import expected_choice
from rnnkit.errors import UserError
from rnnkit.tasks import get_task
from rnnkit.tasks.recipes import load_recipe
from rnnkit.train import precision
from rnnkit.train.loop import Trainer
from rnnkit.train.precision import Precision, resolve_precision
from rnnkit.train.rundir import RunDir

CPU = torch.device("cpu")
TINY = {
    "model.embedding": 16,
    "model.hidden": 16,
    "model.backend": "scratch",
    "train.batch_size": 4,
    "data.bptt": 8,
    "data.train": "ptb/ptb.valid.txt",
    "data.valid": "",
    "data.valid_fraction": 0.05,
    "data.train_fraction": 0.2,
    "data.max_vocab": 500,
    "train.log_every": 1,
    "train.tensorboard": False,
    "train.eval_test": False,
}


def _fit(run: Path, data_dir: Path, resume: bool = False, **overrides) -> Trainer:
    config = RunDir(run).read_config(overrides) if resume else load_recipe("ptb-small", {**TINY, **overrides})
    RunDir(run).write_config(config)
    trainer = Trainer(get_task("lm")(config, data_dir, CPU), config, RunDir(run), CPU, echo=False)
    trainer.setup(resume=resume)
    trainer.fit()
    return trainer


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in RunDir(run).read_metrics() if "split" not in r}


def test_auto_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", CPU)[0] == "fp32"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", CPU)[0] == "bf16"
    assert resolve_precision("fp32", CPU) == ("fp32", "requested")
    monkeypatch.setattr(precision, "cpu_bf16_usable", lambda: False)
    with pytest.raises(UserError, match="bfloat16"):
        resolve_precision("bf16", CPU)
    with pytest.raises(UserError, match="CUDA"):
        resolve_precision("fp16", CPU)
    with pytest.raises(UserError, match="train.precision"):
        resolve_precision("int8", CPU)
    p = Precision("fp32", CPU)
    assert p.state_dict() == {} and not torch.is_autocast_enabled("cpu")
    with p.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_bf16_autocast_keeps_fp32_weights_and_state(tmp_path, data_dir, monkeypatch):
    ref = _fit(tmp_path / "fp32", data_dir, **{"train.max_steps": 4})
    monkeypatch.setattr(precision, "cpu_bf16_usable", lambda: True)
    low = _fit(tmp_path / "bf16", data_dir, **{"train.max_steps": 4, "train.precision": "bf16"})
    assert low.precision.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in low.model.parameters())
    assert all(t.dtype == torch.float32 for t in low.task.hidden)  # carried state back in fp32
    a, b = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert a.keys() == b.keys() and all(abs(a[s] - b[s]) / a[s] < 0.02 for s in a)  # bf16: ~3 digits
    assert a != b  # ... and it really ran in bf16
    assert ref.precision.dtype is None


def test_fp16_grad_scaler_state_resumes_exactly(tmp_path, data_dir, monkeypatch):
    real = precision.resolve_precision
    monkeypatch.setattr(
        precision, "resolve_precision", lambda name, device: ("fp16", "test") if name == "fp16" else real(name, device)
    )
    _fit(tmp_path / "full", data_dir, **{"train.max_steps": 6, "train.precision": "fp16"})
    _fit(tmp_path / "part", data_dir, **{"train.max_steps": 3, "train.precision": "fp16"})
    ckpt = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["scaler"]["scale"] > 1  # GradScaler state travels with the checkpoint
    resumed = _fit(tmp_path / "part", data_dir, resume=True, **{"train.max_steps": 6})
    assert resumed.precision.scaler is not None
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "part")
    assert sorted(a) == list(range(1, 7)) and a == b


@pytest.mark.parametrize("name", ["sgd", "adam"])
@pytest.mark.parametrize("clip", [0.05, 100.0])  # clipping active / inactive
def test_fused_step_with_folded_clipping_equals_clip_then_step(name, clip):
    """The fused optimiser takes the clip coefficient as its grad_scale divisor; the update must be the one
    clip_grad_norm_ followed by the plain (foreach) step gives, and NT-ASGD (not fused) keeps the plain path."""
    from rnnkit.config import OptimConfig
    from rnnkit.train.optim import build_optimizer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 30), torch.nn.Tanh(), torch.nn.Linear(30, 5))
    ref = torch.nn.Sequential(torch.nn.Linear(12, 30), torch.nn.Tanh(), torch.nn.Linear(30, 5))
    ref.load_state_dict(model.state_dict())
    cfg = OptimConfig(name=name, lr=0.1)
    opt = build_optimizer(cfg, model)
    assert all(g["fused"] for g in opt.param_groups)
    ref_opt = (torch.optim.SGD if name == "sgd" else torch.optim.Adam)(ref.parameters(), lr=0.1, foreach=True)
    prec = Precision("fp32", CPU)
    x, y = torch.randn(64, 12), torch.randn(64, 5)
    for _ in range(3):
        for m, o in ((model, opt), (ref, ref_opt)):
            o.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(m(x), y).backward()
        prec.step(opt, list(model.parameters()), clip)
        torch.nn.utils.clip_grad_norm_(list(ref.parameters()), clip, foreach=True)
        ref_opt.step()
        assert not hasattr(opt, "grad_scale")
    for a, b in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-6)


def test_bf16_fast_backend_trains_through_the_projected_recurrence_and_resumes_exactly(tmp_path, data_dir, monkeypatch):
    """The fast backend under bf16: the LSTM runs as the projected recurrence on a CPU without oneDNN bf16 (the
    only bf16 LSTM there), as the faster of the two by a timing elsewhere (conftest.expected_choice); losses stay
    within bf16's ~3 digits of fp32, and the run's choices travel in the checkpoint so a resumed run (a new
    Recurrence, as in a new process) continues bit for bit."""
    from rnnkit.cells import select

    select.reset()
    fast = {"model.backend": "fast", "train.max_steps": 6}
    _fit(tmp_path / "fp32", data_dir, **fast)
    monkeypatch.setattr(precision, "cpu_bf16_usable", lambda: True)
    low = _fit(tmp_path / "bf16", data_dir, **fast, **{"train.precision": "bf16"})
    chosen = low.precision.recurrence.choices
    assert chosen and chosen == {k: expected_choice(k) for k in chosen}
    assert select.recurrence_of(low.model) is low.precision.recurrence and not select.choices()
    assert all(p.dtype == torch.float32 for p in low.model.parameters())
    a, b = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert a.keys() == b.keys() and all(abs(a[s] - b[s]) / a[s] < 0.02 for s in a) and a != b
    # each run times for itself, and on a loaded machine two timings may disagree: this one is told low's verdict
    monkeypatch.setattr(select, "_time", lambda k, *args, **kw: chosen[k])
    part = _fit(tmp_path / "part", data_dir, **{**fast, "train.max_steps": 3, "train.precision": "bf16"})
    ckpt = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["scaler"]["recurrence"] == part.precision.recurrence.choices == chosen

    def no_timing(*args, **kwargs):
        raise AssertionError("a resumed run must take its choices from the checkpoint, not time again")

    monkeypatch.setattr(select, "_time", no_timing)
    resumed = _fit(tmp_path / "part", data_dir, resume=True, **{"train.max_steps": 6})
    assert resumed.precision.recurrence is not part.precision.recurrence
    assert resumed.precision.recurrence.choices == chosen
    assert _losses(tmp_path / "part") == b
    select.reset()
