#!/usr/bin/env bash
# The GPU benchmark set in one go (the device tool's machine or any CUDA box), results under $OUT.
# Prepare on the development machine (both folders are git-ignored and carried to the GPU machine):
#   bash ../shared/device/make-wheels.sh                      # .whl/: Ray + Optuna for the GPU image
#   mkdir -p .data && cp ../shared/data/cifar10-jpeg.tar.gz .data/
# Then run one part per call (each fits the 10-minute limit), e.g.:  bash bench/run_gpu.sh loop
set -euo pipefail
part=${1:-all}
OUT=${OUT:-/tmp/bench-out}
mkdir -p "$OUT"
if [ -d .whl ] && ! python3 -c "import ray" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
DATA=/tmp/data/cifar10-jpeg
[ -d $DATA ] || { mkdir -p /tmp/data && tar xzf .data/cifar10-jpeg.tar.gz -C /tmp/data; }
RECIPE=tune_hardbatch/search_spaces/cifar10_resnet18.yaml
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
run() { echo "== $*" | tee -a "$OUT/log.txt"; "$@" 2>&1 | tee -a "$OUT/log.txt"; }
case $part in
  loop|all) run python3 bench/bench_loop.py --data $DATA --json "$OUT/loop.json" ;;&
  startup|all) run python3 bench/bench_startup.py $RECIPE --set data.root=$DATA --repeats 3 ;;&
  recipe|all) run python3 -m tune_hardbatch train $RECIPE --set data.root=$DATA --quiet --out "$OUT/recipe"
              cp "$OUT/recipe/summary.json" "$OUT/recipe_summary.json" ;;&
  packing|all) run python3 bench/bench_packing.py --data $DATA ;;&
  *) ;;
esac
