#!/usr/bin/env bash
# The GPU checks of the issues (AMP on CUDA, training and inference throughput, peak memory), as one
# prepared script for a session that is lent a GPU machine (shared/device/README.md brings ray,
# optuna, lpips and av there as wheels; run this after its install step, from the repo root):
#
#     bash studies/gpu_check.sh            # figures into $OUT (the device tool's folder) or runs/gpu-check
#     QUICK=1 PYTHON=.venv/bin/python bash studies/gpu_check.sh   # smallest sizes: checks the script on a CPU
#
# Each benchmark has its own time limit so one slow part cannot eat the lease; what finished is
# kept. Paste the printed tables, with the card, into the README's Benchmarks section.
set -uo pipefail
out=${OUT:-runs/gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
quick=()
[ "${QUICK:-0}" = 1 ] && quick=(--quick)
limit=${BENCH_LIMIT_S:-150}
py=${PYTHON:-python3}
# The GPU machine has no package index: the published RIFE HD weights travel with the checkout as
# the ignored folder .rife_hd (cp -r ~/.cache/lift/rife_hd .rife_hd, then carry it); without them
# bench model skips its rife_hd-vs-official timing and says so.
if [ -z "${LIFT_RIFE_HD_DIR:-}" ] && [ -f .rife_hd/flownet.pkl ]; then export LIFT_RIFE_HD_DIR=$PWD/.rife_hd; fi

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
             torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"; } | tee "$out/device.txt"

status=0
for bench in model train infer metrics; do
  extra=()
  [ "$bench" = infer ] && [ "${QUICK:-0}" != 1 ] && extra=(--compile)
  echo "== $bench =="
  timeout "$limit" "$py" -m lift.bench "$bench" "${quick[@]}" "${extra[@]}" --json "$out/bench_$bench.json" \
    2>&1 | tee "$out/bench_$bench.log" || { echo "bench $bench failed or ran past ${limit}s"; status=1; }
done
exit $status
