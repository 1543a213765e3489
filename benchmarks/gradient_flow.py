"""How far back a last-step gradient reaches in a tanh RNN, an LSTM and a GRU (what `rnnkit diagnose gradients` shows).

    python benchmarks/gradient_flow.py [--steps 100] [--hidden 64] [--seed 0] [--json-out FILE]

For each cell, ``||dL/dh_t||`` at every step of a ``--steps`` long sequence (rnnkit.diagnose.gradients, float64,
PyTorch's default init), and the ratio of the earliest step's norm to the last step's: the factor by which the
gradient vanishes over ``steps - 1`` steps. Prints the ratios and writes the figures with their provenance
(benchmarks/_results.py) to --json-out (the published file is benchmarks/results/gradient-flow.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _results import Provenance, write_result

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--cells", default="rnn_tanh,lstm,gru")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from rnnkit.diagnose.gradients import gradient_flow

    prov = Provenance.start(seeds=[a.seed])
    norms = gradient_flow(a.cells.split(","), steps=a.steps, hidden=a.hidden, seed=a.seed)
    ratios = {cell: v[0] / v[-1] for cell, v in norms.items()}
    print(
        f"gradient {a.steps - 1} steps back relative to the last step (hidden {a.hidden}, default init, seed {a.seed})"
    )
    for cell, r in ratios.items():
        print(f"{cell:>10} {r:.1e}")
    result = {"steps": a.steps, "hidden": a.hidden, "seed": a.seed, "ratio_first_to_last": ratios, "norms": norms}
    if a.json_out:
        print(f"result: {write_result(a.json_out, 'gradient_flow', result, prov)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
