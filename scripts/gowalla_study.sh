#!/usr/bin/env bash
# ConvNCF on Gowalla at the authors' budget, on CPU (issue 25): the LightGCN split, 999 sampled negatives, 1,000
# validation users, 1,000 evaluated users; `authors` and `mf_identity` from the same MF, and MF trained longer, on
# Ferrari Dacrema et al.'s early-stopping schedule (validation every 5 epochs, patience 5 checks, at least 50 and at
# most 300 epochs). The whole split is about 5 min an epoch of ConvNCF on 2 cores (810k triples), so this runs a
# seeded sample of 3,000 users with every one of the 40,981 items kept (ingestion.sample_users): the catalog's size
# and per-user sparsity, at about 25 s an epoch on one thread with the fused layers (THREADS=1 by default, so the
# machine stays usable and a busy neighbour does not stall it; THREADS=2 on a machine left to it). The baselines'
# tuning shares 30 minutes (an EASE^R trial on 40,981 items is about 15 minutes on one thread: it gets one; a restart
# keeps the baselines already tuned). ConvNCF trains in fp32, as the authors did (and as the members begun before
# precision: auto existed, so they resume). Resumes per epoch: run it again to continue; SEEDS="[2018, 2019, 2020]"
# extends it. Publishes benchmarks/results/study_gowalla-authors-budget.json (+ .png) when every member has finished;
# `python -m benchmarks.study gowalla --label=-authors-budget --progress` records how far it got.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1
exec python -m benchmarks.study gowalla --label=-authors-budget \
  --members "{seeds: ${SEEDS:-[2018]}, recipes: [authors, mf_identity]}" \
  --params "{ingestion: {sample_users: 3000, validation_users: 1000, n_negatives: 999}, evaluation: {max_users: 1000},
  study: {extra_epochs: 300, validate_every: 5, patience: 5, min_epochs: 50},
  pretrain: {training: {threads: ${THREADS:-1}}}, convncf: {training: {threads: ${THREADS:-1}, precision: fp32}}, baselines: {time_budget_minutes: 30}}"
