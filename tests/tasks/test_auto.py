"""Values chosen from the data (rnnkit.tasks.auto): only for keys left unset, checked, recorded in config.toml,
never chosen again from a run's config.toml."""

from __future__ import annotations

import pytest

from rnnkit.config import ConfigError
from rnnkit.runs.setup import resolve_recipe
from rnnkit.tasks.auto import Choices, is_set
from rnnkit.tasks.recipes import read_config, reresolve


def test_only_unset_keys_are_chosen_and_the_choice_is_recorded(tmp_path):
    config = resolve_recipe("forecast", {"optim.lr": 0.01})
    choices = Choices(config, "a series")
    assert choices.choose("optim.lr", 3e-3, "from the data") == 0.01  # the user's value stays
    assert choices.choose("train.batch_size", 7, "from the data") == 7
    assert config.train.batch_size == 7 and config.optim.lr == 0.01
    assert choices.as_dict() == {"train.batch_size": {"value": 7, "why": "from the data"}}
    assert "train.batch_size=7 (from the data)" in choices.line()

    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    again = read_config(path)
    assert again.train.batch_size == 7
    assert Choices(again).choose("train.batch_size", 99, "x") == 7  # a run's config.toml: nothing is chosen again
    assert is_set(again, "data.horizon")


def test_a_choice_is_checked_against_the_declaration():
    config = resolve_recipe("forecast")
    with pytest.raises(ConfigError, match="train.batch_size"):
        Choices(config).choose("train.batch_size", 0, "a bug")


def test_reresolving_with_more_overrides_keeps_what_was_unset():
    config = resolve_recipe("forecast", {"optim.lr": 0.01})
    again = reresolve(config, "data=", {"data.path": ["data/series.csv"]})
    assert again.given == {"optim.lr", "data.path"}
    assert not is_set(again, "train.max_epochs")
