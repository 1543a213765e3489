"""A sequence-to-sequence chatbot trained on short dialogues, replying with top-k sampling.

python examples/chatbot.py
"""

import os

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = os.environ.get("RNNKIT_EXAMPLES_DATA")  # None: rnnkit's data cache (fetched once, verified)

settings = {"train.tensorboard": False}
if QUICK:
    settings.update(
        {
            "model.hidden": 32,
            "model.embedding": 16,
            "model.layers": 1,
            "train.batch_size": 32,
            "data.max_pair_tokens": 12,
            "model.beam": 2,
            "train.eval_test": False,
        }
    )

run = rnnkit.train(
    "chatbot", data_dir=DATA, overrides=settings, max_steps=20 if QUICK else None, max_time=None if QUICK else 600
)
history: list[str] = []
for message in ["hi, how are you doing?", "what do you like to do?"]:
    replies = run.chat(message, history=history, replies=3, seed=1)
    print(f"> {message}")
    for reply in replies:
        print(f"  {reply}")
    history += [message, replies[0]]
