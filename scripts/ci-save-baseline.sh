#!/usr/bin/env bash
# Keep the latest run of STORAGE as the next baseline: DEST then holds that one run.
#
#   scripts/ci-save-baseline.sh [STORAGE [DEST]]    (default: bench-results bench-baseline)
#
# Run it on the main branch after scripts/ci-bench.sh, then let the CI cache (or an
# artifact store) keep DEST for the next job.  Exits 0 with a notice when STORAGE holds
# no run (the benchmarks did not get as far as saving one).
set -eu

storage=${1:-bench-results}
dest=${2:-bench-baseline}

# pytest-benchmark names runs NNNN_*.json under a machine folder; the highest is newest.
latest=$(find "$storage" -name '[0-9][0-9][0-9][0-9]_*.json' -type f 2>/dev/null \
    | awk -F/ '{print $NF "\t" $0}' | sort | tail -n 1 | cut -f 2)
if [ -z "$latest" ]; then
    echo "ci-save-baseline: no saved run under $storage; baseline left as it was" >&2
    exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
cp "$latest" "$dest/"
echo "ci-save-baseline: $latest -> $dest/"
