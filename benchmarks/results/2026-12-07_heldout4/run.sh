#!/usr/bin/env bash
# The fourth held-out group (imported at bd039d2, before any planner ran on it).
# 2-core machine, two workers of one thread each, 5 runs, 40-experiment cap.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=benchmarks/results/2026-12-07_heldout4
. "$R/sets.sh"
S=$(files $GROUP4)
export LABOS_THREADS=1
for seed in ${SEEDS:-0 1 2}; do
  .venv/bin/labos bench $S --planners "botorch skopt gp-lcb rf-lcb random" --runs 5 --max-cycles 40 \
    --seed "$seed" --jobs 2 --compare --out "$R/raw/seed$seed"
done
