#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU: installs the project, then runs scripts/gpu_check.py.
# Usage: bash scripts/gpu_check.sh [out.json]   (see the docstring of gpu_check.py for what it checks)
set -euo pipefail
cd "$(dirname "$0")/.."
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1
python -m pip install -q -e . 2>/dev/null || echo "pip install failed (offline?); using the installed packages"
python scripts/gpu_check.py "${1:-}"
# the Gowalla study (3 seeds, every variant, all users, the authors' schedule) on the GPU, sized from the step rates
# it measures to end within 8 minutes; it prints the projection first (benchmarks/gpu_study.py)
if [ -d ../shared/datasets/gowalla ]; then
  python -m benchmarks.gpu_study --device cuda --minutes "${GPU_STUDY_MINUTES:-8}"
fi
