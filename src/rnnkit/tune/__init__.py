"""Hyperparameter search over any recipe's config fields (Optuna), one ordinary run directory per trial."""

from rnnkit.tune.space import Param, SearchSpace, check_space, load_space, parse_space

__all__ = ["Param", "SearchSpace", "check_space", "load_space", "parse_space"]
