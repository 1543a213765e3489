"""CLI verbs. Each module defines ``register(subparsers)``; heavy imports happen inside the handlers so that
``rnnkit --help`` answers instantly."""

COMMANDS = ["train", "eval", "generate", "recipes", "diagnose"]
COMMANDS += ["forecast"]  # time-series forecasting (rnnkit.commands.forecast)
COMMANDS += ["classify"]  # many-to-one classification: label + probability per input (rnnkit.commands.classify)
COMMANDS += ["tune"]  # hyperparameter search on Optuna, and `tune report` (rnnkit.commands.tune)
COMMANDS += ["translate", "chat"]  # sequence to sequence: translation and a chatbot (rnnkit.commands.translate/chat)
COMMANDS += ["serve", "export"]  # HTTP API + playground (rnnkit.serve), ONNX/TorchScript export (rnnkit.export)
COMMANDS += ["data"]  # the data sets recipes use: list, get, verify, path (rnnkit.commands.data)
