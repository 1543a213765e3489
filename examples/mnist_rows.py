"""Images read row by row: each digit is a sequence of its pixel rows, classified by an LSTM from numpy arrays.

scikit-learn's 8x8 digits (bundled, no download) stand in for MNIST here; any (examples, steps, channels) array
with one label per example trains the same way. The full set-up on MNIST itself is a recipe:
rnnkit.train("mnist-rows") fetches MNIST and trains the slides' simple RNN 150 (see `rnnkit recipes`).

    python examples/mnist_rows.py
"""

import os

import numpy as np
from sklearn.datasets import load_digits

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"

digits = load_digits()
X = digits.images.astype(np.float32)  # (1797, 8, 8): 8 steps of 8 pixels
y = digits.target

settings = {"train.tensorboard": False}
if QUICK:
    settings.update({"model.hidden": 16, "model.layers": 1, "train.log_every": 5})

run = rnnkit.train("digits-rows", data=(X, y), overrides=settings, max_steps=15 if QUICK else None)
print("test accuracy:", round(run.summary["test"]["accuracy"], 4))
for r, truth in zip(run.classify(X[:5]), y[:5]):
    print(f"predicted {r['label']} ({r['probability']:.2f}), truth {truth}")
