# Sourced by run.sh, run_peers.sh and run_fractions.sh (from the repository root).
# shellcheck shell=bash
GROUP4="suzuki_edbo baumgartner_cn oer_plate_3496 oer_plate_3851 oer_plate_3860 oer_plate_4098 fullerenes hplc photo_pce10 snar"
files() { for n in "$@"; do printf ' %s' "benchmarks/datasets/$n/dataset.yaml"; done; }
