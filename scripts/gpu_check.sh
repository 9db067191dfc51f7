#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU: installs the project, then runs scripts/gpu_check.py.
# Usage: bash scripts/gpu_check.sh [out.json]   (see the docstring of gpu_check.py for what it checks)
set -euo pipefail
cd "$(dirname "$0")/.."
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1
python -m pip install -q -e . 2>/dev/null || echo "pip install failed (offline?); using the installed packages"
python scripts/gpu_check.py "${1:-}"
# the study, smoke-sized, on the GPU (one seed, one extra epoch): the pipeline a full GPU study would run
if [ -d ../shared/datasets/ml-100k ]; then
  python -m benchmarks.study ml-100k --label=-gpu-smoke --members '{seeds: [2018], recipes: [authors, residual, mf_identity]}' \
    --params '{study: {extra_epochs: 1}, pretrain: {training: {device: cuda}}, convncf: {training: {device: cuda}}}'
fi
