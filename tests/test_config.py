import pytest

from rnnkit.config import parse_overrides, parse_value
from rnnkit.errors import UserError
from rnnkit.tasks.recipes import list_recipes, load_recipe


def test_every_shipped_recipe_loads():
    names = [n for n, _ in list_recipes()]
    for required in ("parity", "ptb-small", "ptb-medium", "ptb-large", "wikitext2", "shakespeare-char", "book-gru"):
        assert required in names
    for name in names:
        cfg = load_recipe(name)
        assert cfg.recipe == name
        assert cfg.to_toml()


def test_zaremba_configurations():
    small, medium, large = (load_recipe(f"ptb-{s}") for s in ("small", "medium", "large"))
    assert (small.model.hidden, small.model.layers, small.data.bptt, small.model.dropout) == (200, 2, 20, 0.0)
    assert (medium.model.hidden, medium.data.bptt, medium.model.dropout, medium.train.max_epochs) == (650, 35, 0.5, 39)
    assert (large.model.hidden, large.model.dropout, large.optim.clip, large.train.max_epochs) == (1500, 0.65, 10.0, 55)


def test_overrides_are_typed():
    cfg = load_recipe("ptb-small", parse_overrides(["model.hidden=650", "optim.lr=0.5", "model.tie=true",
                                                    "data.train=foo.txt", "optim.betas=[0.8, 0.9]"]))
    assert cfg.model.hidden == 650 and isinstance(cfg.model.hidden, int)
    assert cfg.optim.lr == 0.5 and cfg.model.tie is True and cfg.data.train == "foo.txt"
    assert cfg.optim.betas == [0.8, 0.9]
    assert load_recipe("ptb-small", {"optim.lr": 2}).optim.lr == 2.0  # int where a float is expected


@pytest.mark.parametrize("item, message", [
    ("model.hiddn=3", "unknown field 'hiddn'"),
    ("model.hidden=abc", "model.hidden must be an integer"),
    ("model.tie=3", "model.tie must be true or false"),
    ("nosection.x=1", "bad config key"),
    ("model.hidden", "expected section.field=value"),
])
def test_bad_overrides_name_the_field(item, message):
    with pytest.raises(UserError, match=message):
        load_recipe("ptb-small", parse_overrides([item]))


def test_unknown_recipe():
    with pytest.raises(UserError, match="unknown recipe 'nope'"):
        load_recipe("nope")


def test_parse_value():
    assert parse_value("650") == 650 and parse_value("1e-3") == 0.001 and parse_value("true") is True
    assert parse_value("ptb/ptb.train.txt") == "ptb/ptb.train.txt"


def test_recipe_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("task = 'lm'\n[model]\nhidden = [\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_recipe(str(bad))
    bad.write_text("task = 'nope'\n")
    with pytest.raises(UserError, match="unknown task 'nope'"):
        load_recipe(str(bad))
