#!/usr/bin/env bash
# The GPU checks of the kit in one short run (about 7 minutes on one H100): the surgery benchmark with the xlm-roberta-large
# shape in bf16 (the paper's step and the authors' micro-batch preset; the fused sums against the reductions), every
# CUDA-marked test (the captured oracle pass against the eager one, the fused sums, bf16 autocast, the
# integrations) and the Trainer parity benchmark.
# Results go to $OUT (default bench/results/gpu-<date>/): JSON files and logs.
#
#   bash bench/gpu_checks.sh
#
# Where the machine's Python lacks the kit's pinned libraries, install them first (e.g. wheels in .whl/ and
# PYTHONPATH); the logs record the versions used.
set -uo pipefail
OUT=${OUT:-bench/results/gpu-$(date +%Y%m%d)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
PY=${PY:-python3}

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log, go on whatever happens
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date -u +%T))"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "=== $name: exit $? ($(date -u +%T))"
    tail -n 25 "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, transformers, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__,
'datasets', datasets.__version__)"
step surgery_large 170 $PY bench/surgery_overhead.py --device cuda --bf16 --shape large --warmup 6 --steps 10 \
    --repeats 2 --variants naive,gradient,gradient_reductions,gradient_eager --out "$OUT/surgery_overhead-cuda-large.json"
step surgery_large_authors 110 $PY bench/surgery_overhead.py --device cuda --bf16 --shape large --grad-accum 16 \
    --granularity micro_batch --warmup 2 --steps 3 --repeats 2 --variants naive,gradient,gradient_reductions,gradient_eager \
    --out "$OUT/surgery_overhead-cuda-large-authors.json"
step cuda_tests 150 $PY -m pytest -q -p no:cacheprovider -m cuda tests/  # every CUDA-marked test
step trainer_parity 80 $PY bench/trainer_parity.py --device cuda --repeats 2 --out "$OUT/trainer_parity-cuda.json"
ls -la "$OUT"
