#!/usr/bin/env bash
# One-shot CUDA check of rnnkit on a lent GPU machine (written for one H200; ~5 min, every step capped: 7.6 min at most):
#   1. the CUDA tests (tests/cuda: cells, projected recurrence, bf16/fp16/auto training, batched generation) and
#      the CPU cell/precision tests, with the machine's own torch;
#   2. benchmarks/recurrence.py (the LSTM alone: cuDNN vs the projected layer, per shape, fp32 and bf16);
#   3. benchmarks/lm_speed.py on CUDA for the ptb-small and ptb-medium shapes: the plain fp32 PyTorch loop against
#      rnnkit fp32, bf16 and auto (paired rounds, validation perplexity after the same steps), JSON per shape.
# Everything it writes goes to $OUT (default benchmarks/results/gpu): gpu-tests.log, recurrence-cuda.json,
# lm-speed-{small,medium}-cuda.json, their logs, env.txt (at most 8 files come back from $OUT: 7 + env.txt).
#
# The machine has no network: nothing is pip-installed; rnnkit runs from src/ (PYTHONPATH). rnnkit needs one package
# that GPU image lacks, tomli-w (pure Python): carry its wheel in .whl/ (git-ignored) and it is installed from there:
#   here:   mkdir -p .whl && pip download --no-deps -d .whl tomli-w
#   device: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
DATA=${RNNKIT_DATA:-../shared/data}  # PTB is also vendored (vendor/ptb), which is what a bare machine uses
export RNNKIT_TEST_DATA=${RNNKIT_TEST_DATA:-$DATA}
[ -f "$RNNKIT_TEST_DATA/ptb/ptb.train.txt" ] || export RNNKIT_TEST_DATA=$PWD/.gpu-data
if [ "$RNNKIT_TEST_DATA" = "$PWD/.gpu-data" ]; then  # the tests want a data folder: unpack the vendored PTB
  mkdir -p .gpu-data/ptb
  for f in vendor/ptb/*.gz; do gunzip -c "$f" > ".gpu-data/ptb/$(basename "${f%.gz}")"; done
fi
if ! $PY -c "import tomli_w" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-deps --no-index .whl/*.whl
fi

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda,
  'bf16', torch.cuda.is_bf16_supported())"; nproc; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== tests (CUDA + CPU cells/precision) =="
timeout 180 $PY -m pytest -q -x -p no:cacheprovider tests/cuda tests/cells tests/train/test_precision.py \
  2>&1 | tee "$OUT/gpu-tests.log" | tail -15

echo "== recurrence alone: cuDNN vs projected, fp32 and bf16 =="
timeout 45 $PY benchmarks/recurrence.py --device cuda --reps 5 --json-out "$OUT/recurrence-cuda.json" 2>&1 \
  | grep -v '^{' | tee "$OUT/recurrence-cuda.log"

echo "== lm_speed on CUDA =="
common=(--device cuda --rounds 2 --threads 4 --variants plain,fused:fp32,fused:bf16,fused:auto --data-dir "$DATA")
timeout 100 $PY benchmarks/lm_speed.py --hidden 200 --bptt 20 --batch 20 --steps 150 "${common[@]}" \
  --json-out "$OUT/lm-speed-small-cuda.json" 2>&1 | grep -v '^{' | tee "$OUT/lm-speed-small-cuda.log"
timeout 130 $PY benchmarks/lm_speed.py --hidden 650 --bptt 35 --batch 20 --dropout 0.5 --steps 100 "${common[@]}" \
  --json-out "$OUT/lm-speed-medium-cuda.json" 2>&1 | grep -v '^{' | tee "$OUT/lm-speed-medium-cuda.log"
rm -rf .gpu-data
ls -l "$OUT"
