"""Spanish -> English translation with attention (Tatoeba pairs), and inputs typed without accents.

python examples/translation.py
"""

import os

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = os.environ.get("RNNKIT_EXAMPLES_DATA")  # None: rnnkit's data cache (fetched once, verified)

settings = {"train.tensorboard": False}
if QUICK:
    settings.update(
        {
            "data.max_pairs": 2000,
            "model.hidden": 32,
            "model.embedding": 16,
            "train.batch_size": 32,
            "data.valid_bleu_sentences": 50,
            "model.beam": 2,
            "train.eval_test": False,
        }
    )

run = rnnkit.train(
    "spa-eng-small", data_dir=DATA, overrides=settings, max_steps=20 if QUICK else None, max_time=None if QUICK else 900
)
print("validation BLEU:", round(run.summary["valid"]["bleu_greedy"], 2))
for spanish, english in zip(
    ["Como te llamas", "Hablas espanol", "Que hora es"],
    run.translate(["Como te llamas", "Hablas espanol", "Que hora es"], beam=5),
):
    print(f"{spanish} -> {english}")
