"""LM data options: word dropout and swaps (training only, exact on resume) and a training-set fraction."""

from __future__ import annotations

from conftest import TINY_LM, train_losses
from rnnkit.cli import main

# validation on 2% of the text carved off the end keeps the evaluations at each stop cheap
SMALL = [*TINY_LM, "--set", "train.eval_test=false", "--set", 'data.valid=""', "--set", "data.valid_fraction=0.02"]
NOISY = [*SMALL, "--set", "data.word_dropout=0.2", "--set", "data.word_swap=0.1"]


def test_noising_changes_training_and_resumes_exactly(tmp_path, data_dir):
    common = ["--data-dir", str(data_dir), "--quiet"]
    full, part, clean = tmp_path / "full", tmp_path / "part", tmp_path / "clean"
    assert main(["train", "ptb-small", "--out", str(full), "--max-steps", "8", *common, *NOISY]) == 0
    assert main(["train", "ptb-small", "--out", str(part), "--max-steps", "4", *common, *NOISY]) == 0
    assert main(["train", "--resume", str(part), "--max-steps", "8", "--quiet"]) == 0
    assert main(["train", "ptb-small", "--out", str(clean), "--max-steps", "8", *common, *SMALL]) == 0
    a, b, c = train_losses(full), train_losses(part), train_losses(clean)
    assert [a[s] for s in range(1, 9)] == [b[s] for s in range(1, 9)]  # bit-identical after resume
    assert a[1] != c[1]  # the noise reaches the model (same init, same batch)


def test_train_fraction_keeps_the_first_tokens(tmp_path, data_dir):
    from rnnkit.tasks.lm import LanguageModelTask
    from rnnkit.tasks.recipes import load_recipe

    def task(fraction: float) -> LanguageModelTask:
        overrides = {"data.train": "ptb/ptb.valid.txt", "data.train_fraction": fraction, "train.batch_size": 8}
        t = LanguageModelTask(load_recipe("ptb-small", overrides), data_dir, device="cpu")
        t.prepare(("train",))
        return t

    whole, quarter = task(1.0), task(0.25)
    n = whole.ids["train"].numel()
    assert quarter.ids["train"].numel() == int(n * 0.25)
    assert (quarter.ids["train"] == whole.ids["train"][: int(n * 0.25)]).all()
    assert quarter.vocab.to_list() == whole.vocab.to_list()  # same vocabulary: losses stay comparable
