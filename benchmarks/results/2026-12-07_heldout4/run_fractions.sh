#!/usr/bin/env bash
# The change of PLAN.md (composition features as fractions) against the default, seeds 0-2.
# CHANGE: a checkout with the change (its labos/ comes first on PYTHONPATH); BEFORE: one without.
# The default's runs on the fourth group's sets come from run.sh; photo_wf3's are run here.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=benchmarks/results/2026-12-07_heldout4
. "$R/sets.sh"
T=benchmarks/datasets
S=$(files oer_plate_3496 oer_plate_3851 oer_plate_3860 oer_plate_4098 photo_pce10 photo_wf3)
export LABOS_THREADS=1
for seed in 0 1 2; do
  PYTHONPATH="${CHANGE:?}" .venv/bin/labos bench $S --planners botorch --runs 5 --max-cycles 40 --seed "$seed" \
    --jobs 2 --out "$R/raw/fractions_seed$seed"
  PYTHONPATH="${BEFORE:?}" .venv/bin/labos bench $T/photo_wf3/dataset.yaml --planners botorch --runs 5 \
    --max-cycles 40 --seed "$seed" --jobs 2 --out "$R/raw/photo_wf3_seed$seed"
done
# two sets without a composition, seed 0: the change must leave their runs as they were
PYTHONPATH="$CHANGE" .venv/bin/labos bench $T/snar/dataset.yaml $T/suzuki_edbo/dataset.yaml --planners botorch \
  --runs 5 --max-cycles 40 --seed 0 --jobs 2 --out "$R/raw/fractions_unchanged_seed0"
