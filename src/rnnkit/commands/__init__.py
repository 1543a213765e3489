"""CLI verbs. Each module defines ``register(subparsers)``; heavy imports happen inside the handlers so that
``rnnkit --help`` answers instantly."""

COMMANDS = ["train", "eval", "generate", "recipes", "diagnose"]
