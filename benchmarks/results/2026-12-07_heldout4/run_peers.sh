#!/usr/bin/env bash
# The peers a group would pick instead, seed 0, same sets, runs and cap as run.sh.
# PHYSBO through NIMS-OS from a side directory (nimo 2.1.8, physbo 3.2.1): NIMO_SIDE.
# Run with the composition features of PLAN.md (they reach PHYSBO, and Ax's snapping to the
# nearest candidate): LABOS_SRC, a checkout with the change, first on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/../../.."
R=benchmarks/results/2026-12-07_heldout4
. "$R/sets.sh"
S=$(files $GROUP4)
export LABOS_THREADS=1
for p in ${PEERS:-baybe physbo ax}; do
  if [ "$p" = physbo ]; then export PYTHONPATH="${LABOS_SRC:?}:${NIMO_SIDE:?}"; else export PYTHONPATH="$LABOS_SRC"; fi
  .venv/bin/labos bench $S --planners "$p" --runs 5 --max-cycles 40 --seed 0 --jobs 2 --out "$R/raw/$p"
done
