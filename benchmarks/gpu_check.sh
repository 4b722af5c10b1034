#!/usr/bin/env bash
# The prepared GPU check: on one GPU, in under 10 minutes, the CUDA path of the Fashion-MNIST
# experiment and of one CIFAR paper config (khaled_datafree: victims, answers under every defense,
# latency, KnockoffNets clones, DFME and MAZE) at rehearsal scale (config/rehearsal.yaml; the GPU
# requested and used: benchmarks/gpu_overlay.yaml), then the seconds of each rule and a rough
# GPU-hour estimate of every full config. Needs a CUDA build of PyTorch in $PYTHON's environment
# (default .venv/bin/python, else python3). Writes under ${OUT:-gpu_check_out}.
#   benchmarks/gpu_check.sh
# A machine whose python3 has PyTorch but not Snakemake and no network (a lent GPU machine): fetch
# the wheels here first, and the script installs them there into /tmp/site:
#   python3 -m pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#     --platform manylinux_2_17_x86_64 -d .whl -c envs/constraints.txt snakemake PyYAML
# Not run yet: no GPU machine has been lent to this project's sessions (docs/findings.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -x .venv/bin/python ]]; then PYTHON=${PYTHON:-.venv/bin/python}; else PYTHON=${PYTHON:-python3}; fi
OUT=${OUT:-gpu_check_out}
if [[ -d .whl ]]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA: this check needs a GPU'; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"
runs=()
for config in config/fashion.yaml config/paper/khaled_datafree.yaml; do
  name=$(basename "$config" .yaml)
  work="$OUT/$name"
  mkdir -p "$work"
  start=$(date +%s)
  timeout 240 "$PYTHON" -m snakemake --snakefile Snakefile --directory "$work" --cores 4 \
    --configfile "$config" config/rehearsal.yaml benchmarks/gpu_overlay.yaml >"$work/snakemake.log" 2>&1 \
    || { echo "$name: rehearsal failed (rc $?); last lines of $work/snakemake.log:"; tail -30 "$work/snakemake.log"; }
  echo "$name: rehearsal on the GPU took $(($(date +%s) - start)) s"
  runs+=("$work")
done
"$PYTHON" benchmarks/gpu_report.py "${runs[@]}" | tee "$OUT/report.txt"
