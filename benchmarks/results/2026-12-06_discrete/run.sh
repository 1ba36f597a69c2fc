#!/bin/sh
# The three lnp3 targets with the amounts as Olympus declares them (categorical) and as discrete
# levels, and drug_loading with the amounts as plain numbers (2026-12-06_heldout2), side by side
# in one bench run per seed. Run from the repository root.
set -e
R=benchmarks/results/2026-12-06_discrete
D=benchmarks/datasets
for seed in 0 1 2; do
  LABOS_THREADS=1 .venv/bin/labos bench \
    $D/lnp3/dataset.yaml $R/lnp3_levels_drug_loading/dataset.yaml \
    benchmarks/results/2026-12-06_heldout2/lnp3_numeric/dataset.yaml \
    $D/lnp3_encap_efficiency/dataset.yaml $R/lnp3_levels_encap_efficiency/dataset.yaml \
    $D/lnp3_particle_diameter/dataset.yaml $R/lnp3_levels_particle_diameter/dataset.yaml \
    --planners "botorch skopt gp-lcb rf-lcb random" --runs 5 --max-cycles 40 --seed $seed --jobs 2 \
    --compare --out $R/raw/seed$seed
done
