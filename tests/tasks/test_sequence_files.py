"""sequence-classify on your own series: the long CSV and its test file through the CLI (the contract outside
scripts read), arrays through the Python API, choices made from the data, and mistakes as one line naming the
user's file. Real data: excerpts of UCR ItalyPowerDemand and UEA JapaneseVowels (tests/fixtures/data/ucr-uea)."""

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import tomllib

import rnnkit
from rnnkit.cli import main
from rnnkit.errors import UserError

UCR = Path(__file__).parents[1] / "fixtures" / "data" / "ucr-uea"
IPD_TRAIN, IPD_TEST = UCR / "italypowerdemand-train.csv.gz", UCR / "italypowerdemand-test.csv.gz"
JV_TRAIN, JV_TEST = UCR / "japanesevowels-train.csv.gz", UCR / "japanesevowels-test.csv.gz"
SMALL = ["--set", "model.filters=[8, 16, 8]", "--set", "train.tensorboard=false", "--set", "train.log_every=5"]


def _rows(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt") as f:
        return list(csv.reader(f))


def _arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = _rows(path)[1:]
    ids = list(dict.fromkeys(r[0] for r in rows))
    x = np.array([[float(r[3]) for r in rows if r[0] == i] for i in ids])
    y = np.array([next(r[1] for r in rows if r[0] == i) for i in ids])
    return x, y


def test_long_csv_with_its_test_file_trains_and_evaluates_by_the_contract(tmp_path, capsys):
    run = tmp_path / "ipd"
    args = ["train", "sequence-classify", "--set", f"data.path={IPD_TRAIN}", "--set", f"data.test={IPD_TEST}"]
    assert main([*args, "--out", str(run), "--max-steps", "60", "--set", "train.eval_every=20", *SMALL]) == 0
    out = "".join(capsys.readouterr())
    assert out.count("chosen from the data (67 training series of 24 steps x 1 channel(s), 2 classes)") == 1
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["data"]["folds"] == 5 and config["optim"]["name"] == "adam"  # the choices, recorded
    assert config["model"]["dimension_shuffle"] is True  # one channel of one length: the whole series, one step
    assert json.loads((run / "run.json").read_text())["chosen"]["data.folds"]["value"] == 5
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = [r["loss"] for r in records if r.get("split") == "valid"]
    assert valid[-1] < valid[0]  # out-of-fold validation loss falls
    assert main(["eval", str(run), "--split", "test", "--json"]) == 0
    test = json.loads(capsys.readouterr().out)
    assert test["examples"] == 60 and 0.5 < test["accuracy"] <= 1  # every series of the test file, untouched
    assert test["examples"] == len({r[0] for r in _rows(IPD_TEST)[1:]})


def test_multichannel_unequal_lengths_and_a_test_label_never_trained(tmp_path, capsys):
    rows = _rows(JV_TEST)
    extra = [["new", "99", str(t), *rows[1][3:]] for t in range(8)]  # a speaker the training data never has
    test = tmp_path / "test.csv"
    with open(test, "w", newline="") as f:
        csv.writer(f).writerows(rows + extra)
    run = tmp_path / "jv"
    args = ["train", "sequence-classify", "--set", f"data.path={JV_TRAIN}", "--set", f"data.test={test}"]
    assert main([*args, "--out", str(run), "--max-steps", "10", "--set", "data.folds=1", *SMALL]) == 0
    err = capsys.readouterr().err
    assert f"warning: {test}: 1 test series (series 'new' (line 281) first) have label(s) '99'" in err
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["model"]["squeeze_excite"] is True  # several channels: MLSTM-FCN's gates
    assert config["model"]["dimension_shuffle"] is False  # unequal lengths: the LSTM reads them over time
    assert main(["eval", str(run), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 19


def test_arrays_with_a_test_split_and_dataframes_to_classify(tmp_path):
    pd = pytest.importorskip("pandas")
    x, y = _arrays(IPD_TRAIN)
    xt, yt = _arrays(IPD_TEST)
    run = rnnkit.train(
        "sequence-classify",
        data=(x, y),
        test_data=(xt, yt),
        out=tmp_path / "api",
        max_steps=20,
        overrides={"model.filters": [8, 16, 8], "data.folds": 2, "train.tensorboard": False},
        progress=False,
    )
    assert run.evaluate("test")["examples"] == len(xt)
    long = pd.DataFrame([{"id": i, "step": t, "value": v} for i in range(3) for t, v in enumerate(xt[i])])
    by_frame = [r["label"] for r in run.classify(long)]
    assert by_frame == [r["label"] for r in run.classify(xt[:3])] and set(by_frame) <= {"1", "2"}
    with pytest.raises(UserError, match=r"looks like \(examples, channels, steps\)"):
        rnnkit.train("sequence-classify", data=(x[:, None, :], y), out=tmp_path / "cf", progress=False)
    assert not (tmp_path / "cf").exists()


def test_bad_files_are_one_line_naming_the_users_file(tmp_path, capsys):
    bad = tmp_path / "mine.csv"
    bad.write_text("id,label,step,c0,c1\n0,a,0,1,2\n0,a,1,3\n1,b,0,1,1\n1,b,1,1,1\n")
    code = main(["train", "sequence-classify", "--set", f"data.path={bad}", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{bad}: line 3: 4 fields, expected 5" in err


def test_shipped_recipes_keep_their_settings():
    """Recipes state what they train: the choices a task makes from the data must leave every one unchanged."""
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe

    sizes = {
        "har": (6617, 128, 9),
        "har-subset": (2040, 128, 9),
        "digits-rows": (1437, 8, 8),
        "mnist-rows": (4000, 28, 28),
        "sms-spam": (4460, 0, 0),
        "sentiment": (2400, 0, 0),
        "imdb": (22500, 0, 0),
    }
    for name, (n, steps, channels) in sizes.items():
        config = load_recipe(name)
        before = config.to_dict()
        task = get_task(config.task)(config, None, __import__("torch").device("cpu"))
        if config.task == "sequence-classify":
            task.choose_from_data([np.zeros((steps, channels))] * 2, np.arange(n) % 6)
        else:
            task.choose_from_data(n, np.full(n, 20))
        after = config.to_dict()
        for k in ("folds", "epoch_passes"):  # "auto" (0) written as what it meant for these sizes: one
            if before["data"].get(k) == 0:
                before["data"][k] = 1
        assert after == before, (name, task.choices.as_dict())


def test_text_classify_chooses_its_defaults_from_the_data_and_keeps_what_was_set(tmp_path, capsys):
    sms = Path(__file__).parents[1] / "fixtures" / "data" / "sms-spam" / "SMSSpamCollection"
    run = tmp_path / "text"
    args = ["train", "text-classify", "--set", f"data.path={sms}", "--set", "model.embedding=8"]
    assert main([*args, "--out", str(run), "--max-steps", "3", "--set", "train.tensorboard=false"]) == 0
    out = "".join(capsys.readouterr())
    assert out.count("chosen from the data (") == 1 and "model.embedding" not in out
    n = int(out.split("chosen from the data (")[1].split(" training texts")[0])
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["model"]["embedding"] == 8 and config["optim"]["name"] == "adam"  # set: kept; unset: chosen
    steps_per_epoch = -(-n // config["train"]["batch_size"])
    assert config["train"]["max_epochs"] * steps_per_epoch >= 300 and config["train"]["early_stop"] == 5


def _chosen_for(n: int, steps: int, channels: int, lengths: list[int] | None = None) -> tuple[dict, object]:
    """What the task chooses for n series of these shapes (values by key, and "why" the epoch count), and the
    config it chose them into."""
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import config_from_dict

    config = config_from_dict({"task": "sequence-classify", "data": {"path": ["mine.csv"]}}, "test")
    task = get_task("sequence-classify")(config, None, __import__("torch").device("cpu"))
    lens = lengths or [steps] * n
    task.choose_from_data([np.zeros((lens[i % len(lens)], channels)) for i in range(n)], np.arange(n) % 4)
    made = task.choices.as_dict()
    return {k: v["value"] for k, v in made.items()} | {"why": made["data.epoch_passes"]["why"]}, config


def test_the_default_budget_fits_the_time_cap_whatever_the_data():
    """A step of a small set of short series costs milliseconds and one of a set of long series a third of a
    second: the step budget is cut to what fits ~TRAIN_SECONDS (at least FEWEST steps), and left alone where the
    whole budget fits (the public cases' figures were measured with it)."""
    from rnnkit.tasks.sequence_classify import FEWEST, TRAIN_SECONDS, step_seconds

    def total(chosen, config, n, steps, channels):
        folds, bs = chosen["data.folds"], chosen["train.batch_size"]
        per_member = n - n // folds if folds > 1 else int(n * (1 - config.data.valid_fraction))
        per_pass = -(-per_member // bs)
        step_count = per_pass * chosen["data.epoch_passes"] * chosen["train.max_epochs"]
        over_time = 0 if chosen["model.dimension_shuffle"] else steps
        each = step_seconds(folds, bs, steps, channels, chosen["model.filters"], chosen["model.pool"], over_time)
        return step_count, each

    chosen, config = _chosen_for(67, 24, 1)  # ItalyPowerDemand's shape: the whole step budget fits
    count, each = total(chosen, config, 67, 24, 1)
    assert count >= 2000 and count * each < TRAIN_SECONDS
    # PLAID's shape (537 series of up to 1,344 steps, unequal): the full budget would be ~11 minutes
    chosen, config = _chosen_for(537, 1344, 1, lengths=[1344, 500, 900, 200])
    count, each = total(chosen, config, 537, 1344, 1)
    assert 2000 * each > 4 * TRAIN_SECONDS and FEWEST <= count <= FEWEST + 20
    assert "s on 2 cores at ~" in chosen["why"], chosen["why"]  # the printed reason says so
    # many long series at LSTM-FCN's width (1,800 x 500): epochs under early stopping, within the cap
    chosen, config = _chosen_for(1800, 500, 1)
    count, each = total(chosen, config, 1800, 500, 1)
    assert chosen["data.folds"] == 1 and chosen["model.filters"] == [128, 256, 128]
    assert count >= FEWEST and count * each <= 1.1 * TRAIN_SECONDS
