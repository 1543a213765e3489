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
    cfg = load_recipe(
        "ptb-small",
        parse_overrides(
            [
                "model.hidden=650",
                "model.embedding=650",
                "optim.lr=0.5",
                "model.tie=true",
                "data.train=foo.txt",
                "optim.betas=[0.8, 0.9]",
            ]
        ),
    )
    assert cfg.model.hidden == 650 and isinstance(cfg.model.hidden, int)
    assert cfg.optim.lr == 0.5 and cfg.model.tie is True and cfg.data.train == "foo.txt"
    assert cfg.optim.betas == [0.8, 0.9]
    assert load_recipe("ptb-small", {"optim.lr": 2}).optim.lr == 2.0  # int where a float is expected


@pytest.mark.parametrize(
    "item, message",
    [
        ("model.hiddn=3", "unknown field 'hiddn'"),
        ("model.hidden=abc", "model.hidden must be an integer"),
        ("model.tie=3", "model.tie must be true or false"),
        ("nosection.x=1", "bad config key"),
        ("model.hidden", "expected section.field=value"),
    ],
)
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


# -- one validation, at load time, from the declarations --------------------------------------------------------
def _cli(capsys, *args: str) -> tuple[int, str]:
    from rnnkit.cli import main

    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--set", "train.batch_size=0"], "--set train.batch_size=0: train.batch_size must be >= 1, got 0"),
        (["--set", "train.batch_size=-1"], "train.batch_size must be >= 1, got -1"),
        (["--set", "data.bptt=0"], "data.bptt must be >= 1"),
        (["--set", "data.bptt=-5"], "data.bptt must be >= 1, got -5"),
        (["--set", "train.log_every=0"], "train.log_every must be >= 1"),
        (["--set", "optim.lr=-1"], "optim.lr must be > 0, got -1"),
        (["--set", "optim.lr=nan"], "optim.lr must be a finite number, got nan"),
        (["--set", "optim.lr=inf"], "optim.lr must be a finite number, got inf"),
        (["--set", "optim.clip=-1"], "optim.clip must be > 0 (or 0 = no clipping), got -1"),
        (["--set", "train.checkpoint_every=-1"], "train.checkpoint_every must be >= 1 (or 0 ="),
        (["--set", "train.eval_every=-3"], "train.eval_every must be >= 1 (or 0 ="),
        (["--set", "train.threads=-1"], "train.threads must be"),
        (["--set", "model.hidden=1000000000000"], "model.hidden must be <= 2^20"),
        (["--set", "model.dropout=1"], "model.dropout must be in [0, 1), got 1"),
        (["--set", "model.cell=lstmm"], "model.cell must be one of lstm, gru"),
        (["--set", "model.cell=peephole_lstm"], "model.cell = 'peephole_lstm' has no fast implementation"),
        (["--set", "train.precision=fp8"], "train.precision must be one of fp32, bf16, fp16, auto"),
        (["--set", "optim.name=lion"], "optim.name must be one of sgd, adam, adamw, ntasgd"),
        (["--set", "optim.schedule=step"], "optim.schedule must be one of"),
        (["--set", "train.device=gpu"], "train.device must be auto (CUDA when present), cpu, cuda, cuda:N or mps"),
        (["--set", "optim.betas=[0.9]"], "optim.betas must hold 2 values"),
        (["--set", "model.dropout_h=0.2"], "model.dropout_h = 0.2 needs model.arch = 'awd'"),
        (["--set", "model.tie=true", "--set", "model.hidden=300"], "model.tie needs model.embedding == model.hidden"),
        (["--set", "data.valid="], 'data.valid is "": name a file, or set data.valid_fraction'),
        (["--set", "train.seed=-1"], "train.seed must be >= 0"),
        (["--max-steps", "0"], "argument --max-steps: must be >= 1, got 0"),
        (["--max-steps", "-1"], "argument --max-steps: must be >= 1, got -1"),
        (["--max-time", "-5"], "argument --max-time: must be > 0, got -5"),
        (["--max-time", "nan"], "argument --max-time: must be a finite number"),
        (["--max-epochs", "0"], "argument --max-epochs: must be >= 1"),
        (["--seed", "-2"], "argument --seed: must be >= 0"),
        (["--nproc", "0"], "argument --nproc: must be"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_field(capsys, args, needle):
    code, err = _cli(capsys, "train", "ptb-small", "--check", *args)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["generate", "RUN", "--temperature", "nan"], "--temperature: must be a finite number"),
        (["generate", "RUN", "--temperature", "-1"], "--temperature: must be >= 0, got -1"),
        (["generate", "RUN", "--top-p", "0"], "--top-p: must be in (0, 1], got 0"),
        (["generate", "RUN", "--top-k", "-1"], "--top-k: must be >= 0"),
        (["generate", "RUN", "--words", "0"], "--words: must be >= 1"),
        (["generate", "RUN", "--max-new-tokens", "0"], "--max-new-tokens: must be >= 1"),
        (["translate", "RUN", "--max-new-tokens", "0"], "--max-new-tokens: must be >= 1"),
        (["chat", "RUN", "--max-words", "0"], "--max-words: must be >= 1"),
        (["translate", "RUN", "--beam", "0"], "--beam: must be in [1, 1000]"),
        (["chat", "RUN", "--replies", "0"], "--replies: must be in [1, 100]"),
        (["forecast", "RUN", "--horizon", "0"], "--horizon: must be >= 1"),
        (["forecast", "RUN", "--level", "1.5"], "--level: must be in (0, 1), got 1.5"),
        (["serve", "RUN", "--port", "70000"], "--port: must be <= 65535"),
        (["train", "ptb-small", "--max-steps", "many"], "--max-steps: expected an integer, got 'many'"),
    ],
)
def test_cli_numbers_are_checked_by_the_same_rules(capsys, argv, needle):
    code, err = _cli(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_check_builds_every_recipe_without_data(capsys):
    for name, _ in list_recipes():
        code, err = _cli(capsys, "train", name, "--check")
        assert code == 0, err


def test_loss_terms_only_where_the_task_uses_them(capsys):
    code, err = _cli(capsys, "train", "parity", "--check", "--set", "optim.ar=1")
    assert code == 2 and "optim.ar is a loss term task 'parity' does not use (used by: lm)" in err
    assert _cli(capsys, "train", "parity", "--check", "--set", "optim.ar=0")[0] == 0  # the default is fine
    code, err = _cli(capsys, "train", "book-gru", "--check", "--set", "optim.tar=1")  # windows batching
    assert code == 2 and 'optim.tar needs data.batching = "stream"' in err


def test_a_model_too_large_for_memory_is_a_user_error_naming_its_sizes():
    import torch

    from rnnkit.tasks import get_task

    config = load_recipe("parity", {"model.hidden": 1 << 20, "model.layers": 2})
    task = get_task("parity")(config, ".", torch.device("cpu"))
    with pytest.raises(UserError, match=r"cannot allocate the model \(model.hidden=1048576, model.layers=2\)"):
        task.build_model()


# -- renamed keys: the old name loads for one release, with a warning naming the new one ------------------------
OLD_LM = """task = "lm"
[data]
level = "char"
loss_over_time = "sum_time"
ar = 2.0
tar = 1.0
eval_batch_size = 7
"""


def test_old_names_in_a_recipe_load_with_a_warning(tmp_path):
    from rnnkit.config import RenamedKeyWarning

    path = tmp_path / "old.toml"
    path.write_text(OLD_LM)
    with pytest.warns(RenamedKeyWarning, match=r"data.level -> data.tokenizer.*data.ar -> optim.ar") as rec:
        cfg = load_recipe(str(path))
    assert len(rec) == 1 and str(path) in str(rec[0].message)
    assert (cfg.data.tokenizer, cfg.optim.loss_over_time, cfg.optim.ar, cfg.optim.tar) == ("char", "sum_time", 2, 1)
    assert cfg.train.eval_batch_size == 7
    path.write_text(OLD_LM + 'tokenizer = "word"\n')
    with pytest.raises(UserError, match="both data.level .* and data.tokenizer are set"):
        load_recipe(str(path))


@pytest.mark.parametrize(
    "recipe, old, new, value, expect",
    [
        ("ptb-small", "data.level", "data.tokenizer", "char", "char"),  # the override beats the recipe's new key
        ("sms-spam", "data.max_length", "data.truncate", 30, 30),
        ("sms-spam", "model.attention", "model.attention_size", 16, 16),
        ("har", "data.eval_batch_size", "train.eval_batch_size", 64, 64),
        ("parity", "data.target", "data.label", "parity", "parity"),
        ("sine-series", "data.length", "data.synthetic_length", 500, 500),
        ("sine-series", "data.seed", "data.synthetic_seed", 3, 3),
        ("airline", "model.architecture", "model.arch", "seq2seq", "seq2seq"),
        ("airline", "data.time_col", "data.time_column", "Month", "Month"),
        ("chatbot", "data.pairs", "data.path", "dialogs/other.tsv", ["dialogs/other.tsv"]),
        # one key, one meaning: names that meant different things in different tasks
        ("parity", "data.length", "data.bits", 12, 12),
        ("parity", "data.seed", "data.synthetic_seed", 4, 4),
        ("sms-spam", "data.seed", "data.split_seed", 2, 2),
        ("har", "data.seed", "data.split_seed", 2, 2),
        ("spa-eng-small", "data.seed", "data.split_seed", 2, 2),
        ("spa-eng-small", "data.max_length", "data.max_pair_tokens", 9, 9),
        ("spa-eng-small", "model.attention", "model.attention_kind", "dot", "dot"),
        ("airline", "data.target", "data.value_columns", "Passengers", "Passengers"),
    ],
)
def test_old_names_in_set_load_with_a_warning(recipe, old, new, value, expect):
    from rnnkit.config import RenamedKeyWarning

    with pytest.warns(RenamedKeyWarning, match=f"{old} -> {new}"):
        cfg = load_recipe(recipe, {old: value})
    assert cfg.get(new) == expect


def test_an_old_run_directory_still_loads_and_resumes(tmp_path, capsys):
    """A run whose config.toml uses the 0.1 names (written before the renames) evaluates and resumes."""
    from rnnkit.cli import main

    run = tmp_path / "run"
    tiny = [
        "--set",
        "data.size=200",
        "--set",
        "data.bits=8",
        "--set",
        "train.batch_size=20",
        "--set",
        "train.tensorboard=false",
        "--set",
        "train.eval_test=false",
        "-q",
    ]
    assert main(["train", "parity", "--out", str(run), "--max-steps", "3", *tiny]) == 0
    text = (run / "config.toml").read_text()
    assert 'label = "count"' in text and "eval_batch_size = 0" in text
    (run / "config.toml").write_text(text.replace('label = "count"', 'target = "count"'))
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-steps", "5", "-q"]) == 0
    err = capsys.readouterr().err
    assert "rnnkit: warning:" in err and "data.target -> data.label" in err
    assert 'label = "count"' in (run / "config.toml").read_text()  # rewritten in the new vocabulary


def test_a_key_means_one_thing_in_every_task():
    """No key name of a task's [data] or [model] section is declared, or accepted as an old name, with two meanings:
    a name is either live in every task that knows it (with one meaning, checked by its doc) or only an old name."""
    import dataclasses

    from rnnkit.config import declaration, renamed
    from rnnkit.tasks import get_task, task_names
    from rnnkit.tasks.recipes import section_classes

    live: dict[str, set[str]] = {}
    old: dict[str, set[str]] = {}
    for name in task_names():
        for section, cls in section_classes(get_task(name)).items():
            if section not in ("data", "model"):
                continue
            for f in dataclasses.fields(cls):
                live.setdefault(f"{section}.{f.name}", set()).add(name)
            for o in renamed(cls):
                old.setdefault(f"{section}.{o}", set()).add(name)
    both = {k: (live[k], old[k]) for k in set(live) & set(old)}
    assert not both, f"live in some tasks and an old name in others: {both}"
    for k in ("data.bits", "data.split_seed", "data.synthetic_seed", "data.max_pair_tokens", "model.attention_kind"):
        assert k in live, k
    assert declaration(get_task("parity").DataConfig, "synthetic_seed").doc.startswith("synthetic data: seed")
