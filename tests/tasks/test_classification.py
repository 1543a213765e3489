"""Many-to-one classification on real data: SMS spam, sentence sentiment, UCI HAR and digits read row by row.

Every recipe trains a few steps with tiny models (the loss must fall), then `eval --json` and `classify` are
checked against the contract that outside scripts rely on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, read_metrics, run_cli, train_losses
from rnnkit.tasks.recipes import load_recipe

QUICK = ["--set", "train.log_every=1", "--set", "train.tensorboard=false", "--set", "optim.lr=0.01"]
TINY_TEXT = ["--set", "model.embedding=16", "--set", "model.hidden=16", "--set", "train.batch_size=32", *QUICK]
TINY_SEQ = ["--set", "model.hidden=16", "--set", "train.batch_size=32", *QUICK]
SPAM = "Free entry in a weekly competition to win FA Cup final tkts. Text FA to 87121 to receive entry!"
HAM = "Ok lar, see you at home tonight"


def classify(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", "classify", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def loss_fell(run, window: int = 5) -> tuple[float, float]:
    losses = train_losses(run)
    steps = sorted(losses)
    first = sum(losses[s] for s in steps[:window]) / window
    last = sum(losses[s] for s in steps[-window:]) / window
    return first, last


@pytest.fixture(scope="module")
def spam_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("spam") / "run"
    run_cli("train", "sms-spam", "--data-dir", str(data_dir), "--out", str(run), "--max-steps", "40", *TINY_TEXT)
    return run


def _rows(data_dir, rel: str) -> list[str]:
    """The data's own lines (the full data set, or the bare clone's sample): counts are read, not assumed."""
    return [ln for ln in (data_dir / rel).read_text(encoding="utf-8").splitlines() if ln.strip()]


SMS = "sms-spam/SMSSpamCollection"


def test_sms_spam_trains_and_eval_json_has_the_contract_keys(spam_run, data_dir):
    first, last = loss_fell(spam_run)
    assert last < first - 0.05, (first, last)
    out = json.loads(run_cli("eval", str(spam_run), "--split", "test", "--json").stdout)
    assert {"accuracy", "macro_f1", "f1", "loss"} <= set(out)
    assert set(out["f1"]) == {"ham", "spam"} and all(0 <= v <= 1 for v in out["f1"].values())
    assert out["balance"] == load_recipe("sms-spam").data.balance  # the recipe's imbalance handling is reported
    cm = np.array(out["confusion"]["matrix"])
    assert cm.sum() == out["examples"] and out["support"] == {"ham": int(cm[0].sum()), "spam": int(cm[1].sum())}
    assert out["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    # eval rebuilds exactly the test split the run was trained with
    test_record = next(r for r in read_metrics(spam_run) if r.get("split") == "test")
    assert test_record["examples"] == out["examples"] and test_record["confusion"] == out["confusion"]
    assert out["examples"] == pytest.approx(0.1 * len(_rows(data_dir, SMS)), abs=12)  # ~10% of the messages


def test_classify_prints_label_and_probability(spam_run):
    lines = classify(str(spam_run), SPAM, HAM).stdout.splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, (SPAM, HAM)):
        label, prob, shown = line.split("\t")
        assert label in ("ham", "spam") and 0.5 <= float(prob) <= 1.0 and text.startswith(shown.rstrip("."))
    out = json.loads(classify(str(spam_run), "--json", stdin=f"{SPAM}\n\n{HAM}\n").stdout)  # stdin, blank skipped
    assert [r["text"] for r in out] == [SPAM, HAM]
    for r in out:
        assert set(r) == {"text", "label", "probability", "probabilities"}
        assert r["probability"] == max(r["probabilities"].values())
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_sentiment_three_files_text_then_label(tmp_path, data_dir):
    run = tmp_path / "sent"
    run_cli(
        "train",
        "sentiment",
        "--data-dir",
        str(data_dir),
        "--out",
        str(run),
        "--max-steps",
        "80",
        *TINY_TEXT,
        "--set",
        "model.pooling=attention",
        "--set",
        "model.dropout=0",
    )
    first, last = loss_fell(run, window=10)
    assert last < first - 0.05, (first, last)
    out = json.loads(run_cli("eval", str(run), "--split", "test", "--json").stdout)
    n = sum(len(_rows(data_dir, f"sentiment/{f}_labelled.txt")) for f in ("amazon_cells", "imdb", "yelp"))
    assert set(out["f1"]) == {"negative", "positive"} and out["examples"] == pytest.approx(0.1 * n, abs=10)
    res = json.loads(classify(str(run), "--json", "Great food, loved it.", "Terrible, a waste of money").stdout)
    assert len(res) == 2 and all(r["label"] in ("negative", "positive") for r in res)


def test_har_stacked_lstm_and_confusion_png(tmp_path, data_dir):
    run = tmp_path / "har-subset"
    run_cli(
        "train",
        "har-subset",
        "--data-dir",
        str(data_dir),
        "--out",
        str(run),
        "--max-steps",
        "30",
        *TINY_SEQ,
        "--set",
        "data.chunk=8",
    )
    first, last = loss_fell(run)
    assert last < first - 0.1, (first, last)
    proc = classify(str(run), "--report", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    import tarfile

    with tarfile.open(data_dir / "har" / "har-subset.tar.gz") as tar:
        n_test = tar.extractfile("test/y_test.txt").read().count(b"\n")
    assert report["examples"] == n_test  # the data set's own test split (950 windows in the full subset)
    assert set(report["class_accuracy"]) == {
        "WALKING",
        "WALKING_UPSTAIRS",
        "WALKING_DOWNSTAIRS",
        "SITTING",
        "STANDING",
        "LAYING",
    }
    png = run / "confusion_test.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    # a window as numbers, channel after channel, reads like the data set's files
    line = " ".join(["0.01"] * 128 * 9)
    out = json.loads(classify(str(run), "--json", line).stdout)
    assert out[0]["label"] in report["class_accuracy"]
    bad = classify(str(run), "1 2 3")
    assert bad.returncode == 2 and "1152" in bad.stderr and "Traceback" not in bad.stderr


def test_digits_rows(tmp_path, data_dir):
    run = tmp_path / "digits"
    run_cli("train", "digits-rows", "--data-dir", str(data_dir), "--out", str(run), "--max-steps", "40", *TINY_SEQ)
    first, last = loss_fell(run)
    assert last < first - 0.3, (first, last)
    out = json.loads(run_cli("eval", str(run), "--split", "test", "--json").stdout)
    assert set(out["f1"]) == {str(d) for d in range(10)} and out["examples"] == pytest.approx(180, abs=5)


# -- pooling over padded batches ----------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("backend,cell", [("fast", "lstm"), ("fast", "gru"), ("scratch", "lstm")])
def test_pooling_ignores_padding(pooling, backend, cell):
    from rnnkit.models.classifier import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(
        3,
        8,
        layers=2,
        cell=cell,
        backend=backend,
        vocab_size=20,
        embedding=6,
        bidirectional=True,
        pooling=pooling,
        padding_idx=0,
    ).eval()
    seqs = [torch.tensor([3, 5, 7, 2, 9]), torch.tensor([4, 1, 8]), torch.tensor([6])]
    lengths = torch.tensor([5, 3, 1])
    padded = torch.randint(1, 20, (7, 3))  # junk, not <pad>, past each length: only masking can hide it
    for j, s in enumerate(seqs):
        padded[: s.numel(), j] = s
    with torch.no_grad():
        batch = model(padded, lengths)
        alone = torch.cat([model(s.unsqueeze(1), torch.tensor([s.numel()])) for s in seqs])
        unpadded = torch.cat([model(s.unsqueeze(1)) for s in seqs])
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batch, unpadded, rtol=1e-5, atol=1e-6)
    if pooling == "attention":
        model(padded, lengths)
        w = model.attend.weights  # (seq, batch): no weight on padding, each column sums to 1
        assert (w[3:, 1] == 0).all() and (w[1:, 2] == 0).all()
        torch.testing.assert_close(w.sum(0), torch.ones(3))


# -- splits, class weighting --------------------------------------------------------------------------------
def _task(recipe: str, data_dir, *overrides: str):
    from rnnkit.config import parse_overrides
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe

    config = load_recipe(recipe, parse_overrides(list(overrides)))
    return get_task(config.task)(config, data_dir, torch.device("cpu"))


def test_text_splits_are_disjoint_reproducible_and_stratified(data_dir):
    a, b = _task("sms-spam", data_dir), _task("sms-spam", data_dir)
    a.prepare()
    b.prepare()
    for s in ("train", "valid", "test"):
        assert a.texts[s] == b.texts[s] and (a.targets[s] == b.targets[s]).all()
    train, valid, test = (set(a.texts[s]) for s in ("train", "valid", "test"))
    assert not (train & test) and not (train & valid) and not (valid & test)  # duplicates never straddle
    rows = _rows(data_dir, SMS)
    spam = sum(r.startswith("spam\t") for r in rows)
    assert sum(len(a.texts[s]) for s in ("train", "valid", "test")) == len(rows)  # 5,574 in the full set
    for s in ("valid", "test"):  # stratified: the same share of spam everywhere (13.4% in the full set)
        assert a.targets[s].mean() == pytest.approx(spam / len(rows), abs=0.015)
    c = _task("sms-spam", data_dir, "data.split_seed=1")
    c.prepare(("test",))
    assert c.texts["test"] != a.texts["test"]


@pytest.mark.parametrize("option", ["data.digits=false", "data.lowercase=false", "data.truncate=5"])
def test_text_split_does_not_move_with_tokeniser_options(data_dir, option):
    # sms-spam maps digits to 0 and lower-cases; another tokenisation must keep the same test messages, or two
    # runs could not be compared (the split groups messages identical up to case, spacing and digits)
    a, b = _task("sms-spam", data_dir), _task("sms-spam", data_dir, option)
    a.prepare()
    b.prepare()
    for s in ("train", "valid", "test"):
        assert a.texts[s] == b.texts[s]
    assert a.vocab.to_list() != b.vocab.to_list() or option == "data.truncate=5"


def test_sequence_splits_and_train_only_statistics(data_dir):
    t = _task("digits-rows", data_dir)
    t.prepare()
    sizes = {s: t.targets[s].size for s in ("train", "valid", "test")}
    assert sum(sizes.values()) == 1797 and sizes["test"] == pytest.approx(180, abs=5)
    x = t.x["train"].reshape(-1, 8)
    assert x.mean(0).abs().max() < 1e-4  # standardised with the training split's own statistics
    assert t.x["test"].reshape(-1, 8).mean(0).abs().max() > 1e-3  # ... which the test split does not share
    u = _task("digits-rows", data_dir)
    u.load_artifacts(t.artifacts())
    u.prepare(("test",))  # inference: the same test split and scaling, from artifacts alone
    torch.testing.assert_close(u.x["test"], t.x["test"])


def test_class_weighting_changes_the_loss_and_sampler_balances(data_dir):
    losses = {}
    for balance in ("none", "weights"):
        t = _task("sms-spam", data_dir, f"data.balance={balance}", "model.hidden=8", "model.embedding=8")
        t.prepare(("train",))
        torch.manual_seed(0)
        model = t.build_model()
        y = t.targets["train"]
        idx = np.concatenate([np.flatnonzero(y == 0)[:16], np.flatnonzero(y == 1)[:16]])  # both classes
        x, lengths = t.make_batch("train", idx)
        losses[balance] = float(t.train_step(model, (x, lengths, torch.from_numpy(y[idx])))[0].detach())
        if balance == "weights":
            w = t.class_weights
            rows = _rows(data_dir, SMS)
            spam = sum(r.startswith("spam\t") for r in rows)
            assert w[1] / w[0] == pytest.approx((len(rows) - spam) / spam, rel=0.05)  # ~6.5x in the full set
    assert abs(losses["none"] - losses["weights"]) > 1e-3
    t = _task("sms-spam", data_dir, "data.balance=sampler")
    t.prepare(("train",))
    drawn = np.concatenate(t.batch_plan(0))
    assert drawn.size == t.targets["train"].size and t.targets["train"][drawn].mean() == pytest.approx(0.5, abs=0.05)


# -- bad input ----------------------------------------------------------------------------------------------
def test_bad_input_exits_2_with_one_line(tmp_path, data_dir, capsys):
    from rnnkit.cli import main

    cases = {
        "notab.txt": (b"ham\tfine\nthis line has no tab\n", "notab.txt: line 2: no tab"),
        "empty.txt": (b"\n  \n", "empty.txt: file is empty"),
        "latin1.txt": ("ham\tok\nspam\tcaf\xe9\n".encode("latin-1"), "latin1.txt: line 2, column 9: not valid UTF-8"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        code = main(
            ["train", "sms-spam", "--out", str(tmp_path / f"run-{name}"), "--set", f"data.path={tmp_path / name}"]
        )  # in-process: the same handler as the console script
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    proc = run_cli(
        "train",
        "sms-spam",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "wrong"),
        "--set",
        "data.label_column=1",
        check=False,
    )  # sms is label<TAB>text
    assert proc.returncode == 2 and "SMSSpamCollection: line 1:" in proc.stderr and "column 0" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_eval_refuses_changed_data(tmp_path, data_dir):
    data = tmp_path / "yelp.txt"
    data.write_bytes((data_dir / "sentiment" / "yelp_labelled.txt").read_bytes())
    run = tmp_path / "run"
    run_cli("train", "sentiment", "--out", str(run), "--max-steps", "2", "--set", f"data.path={data}", *TINY_TEXT)
    n = len(_rows(data_dir, "sentiment/yelp_labelled.txt"))  # 1,000 in the full set
    assert json.loads(run_cli("eval", str(run), "--split", "test", "--json").stdout)["examples"] == round(0.1 * n)
    data.write_bytes(data.read_bytes() + b"A new line.\t1\n")
    proc = run_cli("eval", str(run), "--split", "test", "--json", check=False)
    assert proc.returncode == 2 and "differs from what this run was trained on" in proc.stderr
