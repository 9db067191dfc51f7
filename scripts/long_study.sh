#!/usr/bin/env bash
# The long-budget study (issue 19): ConvNCF `authors` and MF trained longer on the same early-stopping schedule as
# Ferrari Dacrema et al. (validation every 5 epochs, patience 5 checks), at least 50 and at most 300 epochs, 3 seeds,
# on the NCF authors' ml-100k split. Resumes per epoch: run it again to continue. One thread each, so the machine
# stays usable. Publishes benchmarks/results/study_ml-100k-ncf-long.json (+ .png) when every member has finished.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1
exec python -m benchmarks.study "${1:-ml-100k-ncf}" --label=-long --members "{seeds: [2018, 2019, 2020], recipes: [authors]}" --params "{study: {extra_epochs: 300,
  validate_every: 5, patience: 5, min_epochs: 50}, convncf: {training: {threads: 1}}, pretrain: {training: {threads: 1}}}"
