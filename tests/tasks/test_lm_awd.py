"""The ptb-awd recipe scaled down: variable BPTT batching, AR/TAR, NT-ASGD, and exact resume through all of it."""

from __future__ import annotations

from pathlib import Path

import torch

from rnnkit.tasks import get_task
from rnnkit.tasks.recipes import load_recipe
from rnnkit.train.loop import Trainer
from rnnkit.train.rundir import RunDir

# PTB's validation text split into train / valid / test, a 3-layer AWD-LSTM of 16-24 units: ~90 batches an epoch
TINY_AWD = {
    "model.embedding": 16,
    "model.hidden": 24,
    "train.batch_size": 8,
    "data.bptt": 12,
    "data.train": "ptb/ptb.valid.txt",
    "data.valid": "",
    "data.test": "",
    "data.valid_fraction": 0.1,
    "data.test_fraction": 0.1,
    "data.train_fraction": 0.15,
    "train.log_every": 1,
    "train.tensorboard": False,
    "train.eval_test": False,
    "train.max_epochs": 2,
    "optim.lr": 10.0,
}


def _trainer(run: Path, data_dir: Path, resume: bool = False, **overrides) -> Trainer:
    config = RunDir(run).read_config(overrides) if resume else load_recipe("ptb-awd", {**TINY_AWD, **overrides})
    rd = RunDir(run)
    rd.write_config(config)
    task = get_task("lm")(config, data_dir, torch.device("cpu"))
    trainer = Trainer(task, config, rd, torch.device("cpu"), echo=False)
    trainer.setup(resume=resume)
    return trainer


def test_variable_bptt_batches_cover_the_stream_and_scale_the_lr(data_dir):
    config = load_recipe("ptb-awd", TINY_AWD)
    task = get_task("lm")(config, data_dir, torch.device("cpu"))
    task.prepare(("train",))
    chunks = task._variable_chunks(0)
    rows = task._train_cols.size(0)
    assert chunks[0][0] == 0 and all(a[0] + a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    assert chunks[-1][0] + chunks[-1][1] <= rows - 1 and min(n for _, n in chunks) >= 5
    assert len({n for _, n in chunks}) > 3  # lengths really vary
    task._chunks = None
    assert task._variable_chunks(0) == chunks  # a pure function of (seed, epoch)
    assert task._variable_chunks(1) != chunks
    x, y = next(iter(task.train_batches(0, 3)))
    assert x.shape == y.shape == (chunks[3][1], 8) and task.lr_factor((x, y)) == chunks[3][1] / 12
    assert task.num_train_batches(0) == len(chunks)


def test_awd_training_resumes_bit_identically_while_averaging(tmp_path, data_dir):
    """Weight drop, locked/embedding dropout, AR/TAR, variable BPTT and averaged SGD: stop mid-epoch, resume,
    and get the losses, weights and averages of an uninterrupted run exactly."""
    full = _trainer(tmp_path / "full", data_dir)
    n = full.task.num_train_batches(0)
    full.optimizer.param_groups[0]["avg_steps"] = 0  # average from the start, as if validation had stalled
    full.fit()
    part = _trainer(tmp_path / "part", data_dir, **{"train.max_steps": n + 7})
    part.optimizer.param_groups[0]["avg_steps"] = 0
    part.fit()
    resumed = _trainer(tmp_path / "part", data_dir, resume=True, **{"train.max_steps": 0})
    assert resumed.optimizer.averaging and resumed.state.step == n + 7
    resumed.fit()

    def losses(run: Path) -> dict[int, float]:
        return {r["step"]: r["loss"] for r in RunDir(run).read_metrics() if "split" not in r}

    a, b = losses(tmp_path / "full"), losses(tmp_path / "part")
    assert len(a) == full.state.step > n and a == b
    assert all(torch.equal(p, q) for p, q in zip(full.model.parameters(), resumed.model.parameters()))
    with full.optimizer.averaged(), resumed.optimizer.averaged():
        assert all(torch.equal(p, q) for p, q in zip(full.model.parameters(), resumed.model.parameters()))
    # best.pt holds the averaged weights, not the raw iterate
    best = torch.load(tmp_path / "full" / "checkpoints" / "best.pt", weights_only=True)["model"]
    raw = full.model.state_dict()
    assert not torch.equal(best["decoder.bias"], raw["decoder.bias"])
    valid = [r for r in RunDir(tmp_path / "full").read_metrics() if r.get("split") == "valid"]
    assert len(valid) == 2 and all(r["ppl"] < 2000 for r in valid)  # it learns (vocabulary ~5,000 words)


def test_recipes_carry_the_published_settings():
    ptb, wt2 = load_recipe("ptb-awd"), load_recipe("wt2-awd")
    for c in (ptb, wt2):
        assert (c.model.arch, c.model.embedding, c.model.hidden, c.model.layers, c.model.tie) == (
            "awd",
            400,
            1150,
            3,
            True,
        )
        assert (c.optim.name, c.optim.lr, c.optim.clip, c.optim.weight_decay, c.optim.nonmono) == (
            "ntasgd",
            30.0,
            0.25,
            1.2e-6,
            5,
        )
        assert (c.data.bptt, c.data.variable_bptt, c.optim.ar, c.optim.tar) == (70, True, 2.0, 1.0)
        assert (c.model.dropout, c.model.dropout_e, c.model.weight_drop) == (0.4, 0.1, 0.5)
    assert (ptb.model.dropout_i, ptb.model.dropout_h, ptb.train.batch_size, ptb.train.seed) == (0.4, 0.25, 20, 141)
    assert (wt2.model.dropout_i, wt2.model.dropout_h, wt2.train.batch_size, wt2.train.max_epochs) == (
        0.65,
        0.2,
        80,
        750,
    )
    assert load_recipe("ptb-medium").train.precision == load_recipe("ptb-large").train.precision == "auto"
