"""A word-level LSTM language model on the Penn Treebank (Zaremba et al.'s small set-up), then a paragraph.

    python examples/ptb_language_model.py          # 4 minutes of training on a CPU

The test suite runs every example at toy size (RNNKIT_EXAMPLES_QUICK=1, data from RNNKIT_EXAMPLES_DATA).
"""

import os

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = os.environ.get("RNNKIT_EXAMPLES_DATA")  # None: rnnkit's data cache (fetched once, verified)

settings = {"train.tensorboard": False}
if QUICK:  # a tiny model on PTB's validation text: seconds, not minutes
    settings.update(
        {
            "model.embedding": 32,
            "model.hidden": 32,
            "data.bptt": 10,
            "train.batch_size": 8,
            "data.train": "ptb/ptb.valid.txt",
            "data.valid": "",
            "data.valid_fraction": 0.05,
            "train.eval_test": False,
        }
    )

run = rnnkit.train(
    "ptb-small", data_dir=DATA, overrides=settings, max_steps=20 if QUICK else None, max_time=None if QUICK else 240
)
print(run.summary["stopped"], "at step", run.summary["step"])
print("validation perplexity:", round(run.summary["valid"]["ppl"], 1))
print(run.generate("the company said", max_new_tokens=30, temperature=0.8, top_p=0.95, seed=1))
