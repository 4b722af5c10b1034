#!/usr/bin/env bash
# The prepared GPU check: on one GPU, in under 10 minutes, the CUDA path of the Fashion-MNIST
# experiment and of one CIFAR paper config (khaled_datafree: victims, answers under every defense,
# latency, KnockoffNets clones, DFME and MAZE) at rehearsal scale (config/rehearsal.yaml; the GPU
# requested and used: benchmarks/gpu_overlay.yaml), then the seconds of each rule and a rough
# GPU-hour estimate of every full config. Needs a CUDA build of PyTorch in $PYTHON's environment
# (default .venv/bin/python). Writes under ${OUT:-gpu_check_out}; usage: benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-gpu_check_out}
BIN=$(dirname "$PYTHON")
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA: this check needs a GPU'; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"
runs=()
for config in config/fashion.yaml config/paper/khaled_datafree.yaml; do
  name=$(basename "$config" .yaml)
  work="$OUT/$name"
  mkdir -p "$work"
  start=$(date +%s)
  timeout 240 "$BIN/snakemake" --snakefile Snakefile --directory "$work" --cores 4 \
    --configfile "$config" config/rehearsal.yaml benchmarks/gpu_overlay.yaml >"$work/snakemake.log" 2>&1 \
    || { echo "$name: rehearsal failed (rc $?); last lines of $work/snakemake.log:"; tail -30 "$work/snakemake.log"; }
  echo "$name: rehearsal on the GPU took $(($(date +%s) - start)) s"
  runs+=("$work")
done
"$PYTHON" benchmarks/gpu_report.py "${runs[@]}" | tee "$OUT/report.txt"
