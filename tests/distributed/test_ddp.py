"""Data-parallel training on 2 CPU processes (gloo, through `rnnkit train --nproc 2`) equals 1 process.

Same global batch (8 columns: 4 per rank), no dropout, Zaremba's time-summed loss: DDP's gradient average must
give the single-process gradient, so weights agree to float rounding (1e-5) - including across resumes that
change the number of processes (the carried LSTM state is gathered into the checkpoint and re-sharded).
The 1-process runs go through the Trainer in this process (the same code a 1-process `rnnkit train` runs),
which keeps the test to two torchrun launches.
"""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import TINY_LM, read_metrics, run_cli, train_losses
from rnnkit.config import parse_overrides
from rnnkit.tasks import get_task
from rnnkit.tasks.recipes import load_recipe
from rnnkit.train.loop import Trainer
from rnnkit.train.rundir import RunDir

# validation (rank 0, at each stop) on a small held-out tail of the training text keeps the runs quick
ARGS = [*TINY_LM, "--set", "train.eval_test=false", "--set", "data.valid=", "--set", "data.valid_fraction=0.05"]
CPU = torch.device("cpu")


def _train_here(run: Path, data_dir: Path, max_steps: int, resume: bool = False) -> None:
    """One process, in this process: a fresh run from the ARGS config, or a resume of ``run``."""
    sets = parse_overrides([ARGS[i + 1] for i in range(0, len(ARGS), 2) if ARGS[i] == "--set"])
    sets["train.max_steps"] = max_steps
    rd = RunDir(run)
    config = rd.read_config({"train.max_steps": max_steps}) if resume else load_recipe("ptb-small", sets)
    rd.write_config(config)
    trainer = Trainer(get_task("lm")(config, data_dir, CPU), config, rd, CPU, echo=False)
    trainer.setup(resume=resume)
    trainer.fit()


def _ckpt(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


def _assert_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5, msg=k)


def test_two_processes_match_one_and_resume_with_another_count(tmp_path, data_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    _train_here(one, data_dir, 4)
    one_at_4 = _ckpt(one)
    _train_here(one, data_dir, 8, resume=True)  # the reference: 1 process all along (resume is exact)

    run_cli(
        "train", "ptb-small", "--nproc", "2", "--out", str(two), "--max-steps", "4", "--data-dir", str(data_dir), *ARGS
    )
    two_at_4 = _ckpt(two)
    assert two_at_4["world_size"] == 2 and "world_size" not in one_at_4
    _assert_close(one_at_4["model"], two_at_4["model"])
    h1, h2 = one_at_4["task_loop"]["hidden"], two_at_4["task_loop"]["hidden"]
    assert [t.shape for t in h2] == [(2, 8, 32), (2, 8, 32)]  # the global batch, gathered from both ranks
    for a, b in zip(h1, h2):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)

    _train_here(two, data_dir, 6, resume=True)  # 2 processes -> 1
    run_cli("train", "--resume", str(two), "--nproc", "2", "--max-steps", "8")  # 1 -> 2
    _assert_close(_ckpt(one)["model"], _ckpt(two)["model"])
    a, b = train_losses(one), train_losses(two)
    assert sorted(a) == sorted(b) == list(range(1, 9))
    for s in a:
        assert abs(a[s] - b[s]) < 1e-5, (s, a[s], b[s])
    # rank 0 alone wrote the run: one record per step, tokens/s counted over both processes
    train = [r for r in read_metrics(two) if "split" not in r]
    assert len(train) == 8 and all(r["tokens_per_s"] > 0 for r in train)
    assert '"processes": 2' in (two / "run.json").read_text()


def test_indivisible_batch_is_a_user_error(tmp_path, data_dir):
    proc = run_cli(
        "train",
        "ptb-small",
        "--nproc",
        "3",
        "--out",
        str(tmp_path / "x"),
        "--max-steps",
        "1",
        "--data-dir",
        str(data_dir),
        *ARGS,
        check=False,
    )
    assert proc.returncode == 2 and "divisible" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
