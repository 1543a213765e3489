#!/usr/bin/env bash
# One-shot CUDA check of rnnkit on a lent GPU machine (written for one H200; ~5 min, every step capped: 7.6 min at most):
#   1. the CUDA tests (tests/cuda: cells, projected recurrence, bf16/fp16/auto training, batched generation) and
#      the CPU cell/precision tests, with the machine's own torch;
#   2. benchmarks/recurrence.py (the LSTM alone: cuDNN vs the projected layer, per shape, fp32 and bf16);
#   3. benchmarks/lm_speed.py on CUDA for the ptb-small and ptb-medium shapes: the plain fp32 PyTorch loop against
#      rnnkit fp32, bf16 and auto (paired rounds, validation perplexity after the same steps), JSON per shape.
#   4. training on CUDA, started at the beginning beside the tests: the `ptb-notebook` recipe in full (15 epochs) and
#      `ptb-small` for 1,000 steps in fp32 and in bf16 with the projected recurrence forced (RNNKIT_RECURRENCE=projected:
#      the bf16 formulation the CPU path uses, fp32 cell state), for issue 16's numerics check.
# Everything it writes goes to a staging folder packed into $OUT/gpu-check.tar.gz (default OUT benchmarks/results/gpu;
# a lent machine returns at most 8 files): env.txt, gpu-tests.log, recurrence-cuda.json, lm-speed-{small,medium}-cuda.json,
# their logs, and per training run NAME.json (the `--json` summary), NAME.err and NAME-metrics.jsonl.
#
# The machine has no network: nothing is pip-installed; rnnkit runs from src/ (PYTHONPATH). rnnkit needs pure-Python packages
# that GPU image lacks (tomli-w, pooch, platformdirs): carry its wheel in .whl/ (git-ignored) and it is installed from there:
#   here:   mkdir -p .whl && pip download --no-deps -d .whl tomli-w pooch platformdirs
#   device: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
set -uo pipefail
cd "$(dirname "$0")/.."
FINAL=${OUT:-benchmarks/results/gpu}
mkdir -p "$FINAL"
OUT=$(mktemp -d)  # the staging folder
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
# no network there: data through rnnkit's registry, offline (PTB is vendored); a throw-away cache
export RNNKIT_OFFLINE=1 RNNKIT_DATA=${GPU_CACHE:-$(mktemp -d)}
for mod in tomli_w pooch platformdirs; do  # rnnkit's pure-Python dependencies the GPU image may lack, from .whl/
  $PY -c "import $mod" 2>/dev/null || $PY -m pip install -q --no-deps --no-index .whl/*.whl
done

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda,
  'bf16', torch.cuda.is_bf16_supported())"; nproc; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# training runs on CUDA, in the background while the tests run (they measure no speed); waited for before the benchmarks
RUNS=$(mktemp -d)
train() {  # NAME RECIPE ARGS...: the run's --json summary, stderr and metrics into the staging folder
  local name=$1; shift
  timeout 300 $PY -m rnnkit train "$@" --device cuda --out "$RUNS/$name" \
    --set train.tensorboard=false --json -q > "$OUT/$name.json" 2> "$OUT/$name.err"
  cp "$RUNS/$name/metrics.jsonl" "$OUT/$name-metrics.jsonl" 2>/dev/null
}
train ptb-notebook-cuda ptb-notebook --seed 1 &
( train ptb-small-fp32-1000-cuda ptb-small --max-steps 1000 --seed 1 --set train.precision=fp32
  RNNKIT_RECURRENCE=projected train ptb-small-bf16-projected-1000-cuda ptb-small --max-steps 1000 --seed 1 \
    --set train.precision=bf16 ) &

echo "== tests (CUDA + CPU cells/precision) =="
timeout 150 $PY -m pytest -q -x -p no:cacheprovider tests/cuda tests/cells tests/train/test_precision.py \
  2>&1 | tee "$OUT/gpu-tests.log" | tail -15

echo "== waiting for the training runs =="
wait
for f in "$OUT"/*-cuda.json; do echo "$(basename "$f"): $(tail -c 600 "$f")"; done

echo "== recurrence alone: cuDNN vs projected, fp32 and bf16 =="
timeout 45 $PY benchmarks/recurrence.py --device cuda --reps 5 --json-out "$OUT/recurrence-cuda.json" 2>&1 \
  | grep -v '^{' | tee "$OUT/recurrence-cuda.log"

echo "== lm_speed on CUDA =="
common=(--device cuda --rounds 2 --threads 4 --variants plain,fused:fp32,fused:bf16,fused:auto)
timeout 100 $PY benchmarks/lm_speed.py --hidden 200 --bptt 20 --batch 20 --steps 150 "${common[@]}" \
  --json-out "$OUT/lm-speed-small-cuda.json" 2>&1 | grep -v '^{' | tee "$OUT/lm-speed-small-cuda.log"
timeout 130 $PY benchmarks/lm_speed.py --hidden 650 --bptt 35 --batch 20 --dropout 0.5 --steps 100 "${common[@]}" \
  --json-out "$OUT/lm-speed-medium-cuda.json" 2>&1 | grep -v '^{' | tee "$OUT/lm-speed-medium-cuda.log"
rm -rf "$RUNS"
ls -l "$OUT"
tar czf "$FINAL/gpu-check.tar.gz" -C "$OUT" .
