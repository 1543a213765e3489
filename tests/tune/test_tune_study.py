"""rnnkit tune: studies that finish, continue, prune, walk a grid, and report; bad spaces exit 2."""

from __future__ import annotations

import json

import optuna
import pytest
from tune_helpers import PARITY, cli_json, write_space

from rnnkit.cli import main

REPORT_KEYS = {"best_value", "best_params", "n_trials", "n_pruned"}


def _trials(out):
    study = optuna.load_study(study_name="parity", storage=f"sqlite:///{out / 'study.db'}")
    return {t.number: t for t in study.get_trials()}


def test_study_finishes_reports_and_continues(tmp_path, capsys):
    space = write_space(tmp_path / "space.toml")
    out = tmp_path / "study"
    cmd = [
        "tune",
        "parity",
        "--space",
        str(space),
        "--trials",
        "3",
        "--sampler",
        "tpe",
        "--seed",
        "0",
        "--out",
        str(out),
        *PARITY,
    ]
    first = cli_json(capsys, *cmd)
    assert first["n_trials"] == 3 and first["n_failed"] == 0
    assert (out / "study.db").is_file()
    for n in range(3):  # every trial is an ordinary run directory
        run = out / "trials" / f"{n:04d}"
        for name in ("config.toml", "run.json", "metrics.jsonl", "checkpoints/best.pt", "curves.png"):
            assert (run / name).is_file(), (n, name)
        assert json.loads((run / "run.json").read_text())["tune"]["trial"] == n

    rep = cli_json(capsys, "tune", "report", str(out))
    assert set(rep) >= REPORT_KEYS
    assert rep["n_trials"] == 3 and rep["n_pruned"] == 0
    assert set(rep["best_params"]) == {"model.hidden", "optim.lr"}
    assert rep["best_value"] == max(t["value"] for t in rep["trials"])  # parity: accuracy, higher is better
    best_cfg = (out / "trials" / f"{rep['best_trial']:04d}" / "config.toml").read_text()
    assert f"hidden = {rep['best_params']['model.hidden']}" in best_cfg
    for name in ("history", "importances", "parallel", "slice"):
        png = out / f"tune-{name}.png"
        assert png.read_bytes().startswith(b"\x89PNG"), name

    before = {n: (t.params, t.value) for n, t in _trials(out).items()}
    same = cli_json(capsys, *cmd)  # the same command again: the study already holds its 3 trials
    assert same["trials_this_run"] == 0 and same["n_trials"] == 3 and sorted(_trials(out)) == [0, 1, 2]
    more = [*cmd[: cmd.index("--trials") + 1], "6", *cmd[cmd.index("--trials") + 2 :]]
    again = cli_json(capsys, *more)  # --trials is the study's total: 3 more make 6
    assert again["trials_this_run"] == 3
    assert again["n_trials"] + again["n_pruned"] == 6 and again["n_failed"] == 0
    after = _trials(out)
    assert sorted(after) == list(range(6))
    assert {n: (after[n].params, after[n].value) for n in before} == before  # finished trials untouched
    new_params = [after[n].params for n in range(3, 6)]
    assert all(p not in [b[0] for b in before.values()] for p in new_params)  # not a replay of the first samples

    capsys.readouterr()
    assert main(["tune", "report", str(out), "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "best: trial" in text and f"{again['n_trials']} complete" in text and "model.hidden" in text


def test_aggressive_pruner_prunes(tmp_path, capsys):
    space = write_space(tmp_path / "lr.toml", '[optim.lr]\ntype = "float"\nlow = 1e-5\nhigh = 0.05\nlog = true\n')
    out = tmp_path / "pruned"
    res = cli_json(
        capsys,
        "tune",
        "parity",
        "--space",
        str(space),
        "--trials",
        "5",
        "--sampler",
        "random",
        "--seed",
        "0",
        "--pruner",
        "median",
        "--pruner-startup",
        "1",
        "--out",
        str(out),
        *PARITY,
        "--set",
        "train.eval_every=4",
        "--set",
        "train.max_epochs=2",
    )
    assert res["n_pruned"] >= 1 and res["n_trials"] >= 1
    assert res["n_pruned"] + res["n_trials"] == 5
    trials = _trials(out)
    pruned = [t for t in trials.values() if t.state == optuna.trial.TrialState.PRUNED]
    for t in pruned:  # pruned from intermediate validations reported by the trainer
        assert t.intermediate_values
        steps = [
            json.loads(line)["step"]
            for line in (out / "trials" / f"{t.number:04d}" / "metrics.jsonl").read_text().splitlines()
            if '"split": "valid"' in line
        ]
        assert max(steps) == max(t.intermediate_values)  # stopped at the validation that pruned it
    rep = cli_json(capsys, "tune", "report", str(out), "--no-plots")
    assert rep["n_pruned"] == res["n_pruned"]


def test_grid_over_a_categorical_visits_each_point_once(tmp_path, capsys):
    space = write_space(
        tmp_path / "grid.toml", '[model.cell]\ntype = "categorical"\nchoices = ["rnn_tanh", "gru", "lstm"]\n'
    )
    out = tmp_path / "grid"
    cmd = [
        "tune",
        "parity",
        "--space",
        str(space),
        "--trials",
        "10",
        "--sampler",
        "grid",
        "--pruner",
        "none",
        "--out",
        str(out),
        *PARITY,
    ]
    res = cli_json(capsys, *cmd)
    assert res["n_trials"] == 3  # the grid stops the study when it is exhausted
    cells = sorted(t.params["model.cell"] for t in _trials(out).values())
    assert cells == ["gru", "lstm", "rnn_tanh"]
    assert cli_json(capsys, *cmd)["n_trials"] == 3  # nothing left to try: no duplicate trial


@pytest.mark.parametrize(
    "space, needle",
    [
        ('[model.hiden]\ntype = "int"\nlow = 1\nhigh = 3\n', "[model.hiden]: unknown field 'model.hiden'"),
        ('[model.hidden]\ntype = "int"\nlow = 10\nhigh = 3\n', "[model.hidden]: low (10) is greater than high (3)"),
        ('[model.cell]\ntype = "categorical"\nchoices = []\n', "[model.cell]: 'choices' must be a non-empty list"),
        ('[optim.lr]\ntype = "loguniform"\nlow = 1\nhigh = 3\n', "[optim.lr]: unknown type 'loguniform'"),
        ('[optim.lr]\ntype = "float"\nlow = 0\nhigh = 0.1\nlog = true\n', "[optim.lr]: log = true needs low > 0"),
        ('[optim.lr]\ntype = "float"\nlow = 0.1\n', "[optim.lr]: missing 'high'"),
        ('[optim.name]\ntype = "int"\nlow = 1\nhigh = 3\n', '[optim.name]: type = "int" but the field holds str'),
        ('[modle.hidden]\ntype = "int"\nlow = 1\nhigh = 3\n', "[modle]: unknown section"),
        ("", "the search space is empty"),
    ],
)
def test_bad_space_exits_2_with_one_line(tmp_path, capsys, space, needle):
    path = write_space(tmp_path / "bad.toml", space)
    capsys.readouterr()
    code = main(["tune", "parity", "--space", str(path), "--trials", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: ") and needle in lines[0], err
    assert str(path) in lines[0]
    assert not (tmp_path / "o").exists()  # nothing created before the space is valid


def test_grid_needs_a_step_and_set_conflicts(tmp_path, capsys):
    path = write_space(tmp_path / "lr.toml", '[optim.lr]\ntype = "float"\nlow = 0.1\nhigh = 0.2\n')
    for extra, needle in (
        (["--sampler", "grid"], "the grid sampler needs a step"),
        (["--set", "optim.lr=0.1"], "both searched and fixed"),
    ):
        capsys.readouterr()
        assert (
            main(["tune", "parity", "--space", str(path), "--trials", "1", "--out", str(tmp_path / "o"), *extra]) == 2
        )
        assert needle in capsys.readouterr().err


def test_report_of_a_missing_study_is_a_user_error(tmp_path, capsys):
    assert main(["tune", "report", str(tmp_path)]) == 2
    assert "not a study directory" in capsys.readouterr().err
