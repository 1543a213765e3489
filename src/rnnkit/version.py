"""rnnkit's version, in the lowest layer so every module can name it without importing the root package."""

__version__ = "0.1.0"
