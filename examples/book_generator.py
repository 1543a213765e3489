"""A word-level GRU that writes like the book it read (Tiny Shakespeare): 20-word windows -> the next word.

python examples/book_generator.py
"""

import os

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = os.environ.get("RNNKIT_EXAMPLES_DATA")  # None: rnnkit's data cache (fetched once, verified)

settings = {"train.tensorboard": False}
if QUICK:
    settings.update({"model.embedding": 16, "model.hidden": 32, "train.batch_size": 16, "train.eval_test": False})

run = rnnkit.train(
    "book-gru", data_dir=DATA, overrides=settings, max_steps=15 if QUICK else None, max_time=None if QUICK else 600
)
print("validation perplexity:", round(run.summary["valid"]["ppl"], 1))
# greedy (temperature 0) as the book does, then sampled
print(run.generate("to be or not", max_new_tokens=25, temperature=0))
print(run.generate("my lord", max_new_tokens=25, temperature=0.8, top_k=40, seed=7))
