"""Configuration values a task chooses from its data, for the keys the user left unset: decided once, said once,
recorded in config.toml.

A newcomer's ``rnnkit train forecast --set data.path=FILE`` should get a learning rate, a model size and a budget
that suit *that* data (a 36-point series and a 100,000-window one want different ones), and an expert's explicit
setting must never be second-guessed. So:

* ``RunConfig.given`` holds the keys the recipe, ``--set`` or the API's overrides set (``None``: every key, as for
  a run's config.toml). A key may also be declared with ``auto_key``: its "auto" value (``0`` or ``"auto"``)
  counts as unset wherever it comes from.
* In ``prepare()``, once the data is read, a task calls ``self.choices.choose(key, value, why)`` for each key it
  can decide from the data; a key that was set keeps its value (``choose`` returns the value in force).
* The chosen values replace the configuration's, so the run set-up writes them into config.toml: a resumed run,
  or one trained from that config.toml, reads them back as set and chooses nothing again. The set-up prints
  ``line()`` once (unless the run is quiet) and keeps ``as_dict()`` (key -> {value, why}) in run.json as
  ``chosen``.

    self.choices = Choices(self.config, "sales.csv: 144 monthly points")
    lr = self.choices.choose("optim.lr", 3e-3, "Adam, 900 training windows")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnkit.config import RunConfig, coerce, declaration, field_types, key, split_key

AUTO_DOC = "chosen from the data"


def auto_key(sentinel: Any, doc: str, **rules: Any) -> Any:
    """A key whose default ``sentinel`` (``0``, ``"auto"``) means "chosen from the data" (see ``Choices``)."""
    special = {sentinel: AUTO_DOC, **rules.pop("special", {})}
    return key(sentinel, doc, special=special, **rules)


def is_auto(config: RunConfig, name: str) -> bool:
    """Whether key ``name`` (``"section.key"``) holds its declared "auto" value (see ``auto_key``)."""
    section, field = split_key(name)
    value = getattr(getattr(config, section), field)
    special = declaration(type(getattr(config, section)), field).special
    return isinstance(value, (int, float, str)) and not isinstance(value, bool) and special.get(value) == AUTO_DOC


def is_set(config: RunConfig, name: str) -> bool:
    """Whether the user set key ``name``: in the recipe, config.toml or an override, and not to "auto"."""
    return (config.given is None or name in config.given) and not is_auto(config, name)


@dataclass(frozen=True)
class Choice:
    key: str
    value: Any
    why: str


class Choices:
    """The values one task chose from its data for one run (see the module docstring)."""

    def __init__(self, config: RunConfig, about: str = "") -> None:
        self.config = config
        self.about = about  # what the choices were made from, for the printed line ("FILE: 144 monthly points")
        self.made: list[Choice] = []

    def free(self, name: str) -> bool:
        """Whether ``name`` is the task's to choose (the user left it unset)."""
        return not is_set(self.config, name)

    def choose(self, name: str, value: Any, why: str) -> Any:
        """Set ``name`` to ``value`` unless the user set it; returns the value in force. The value is checked
        against the key's declaration, so a bad choice is a bug found at once, not a config.toml that will not
        load."""
        section, field = split_key(name)
        obj = getattr(self.config, section)
        if not self.free(name):
            return getattr(obj, field)
        value = coerce(value, field_types(type(obj))[field], name)
        declaration(type(obj), field).check(value, name)
        setattr(obj, field, value)
        self.made = [c for c in self.made if c.key != name] + [Choice(name, value, why)]
        return value

    def __bool__(self) -> bool:
        return bool(self.made)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {c.key: {"value": c.value, "why": c.why} for c in self.made}

    def line(self) -> str:
        """One line for the user: what was chosen, why, and how to choose otherwise."""
        about = f" ({self.about})" if self.about else ""
        parts = "; ".join(f"{c.key}={_show(c.value)} ({c.why})" for c in self.made)
        return f"chosen from the data{about}: {parts}. Set any of them yourself (overrides={{KEY: VALUE}})"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, str):
        return value
    return str(value)
