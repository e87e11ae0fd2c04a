#!/usr/bin/env bash
# Benchmarks in CI, any CI: run a profile, check it against a baseline, write a report.
#
#   scripts/ci-bench.sh [CHECK-OPTION...]
#
# Extra arguments go to `python -m reports check` (e.g. --mode speedup --min-effect 0.15).
# Environment, all optional:
#   BENCH_PROFILE    benchmark profile                          (default: quick)
#   BENCH_STORAGE    where this run is saved                    (default: bench-results)
#   BENCH_BASELINE   a run file, or a folder whose latest run is the baseline
#                                                               (default: bench-baseline)
#   BENCH_OUT        report folder (index.html, charts, ...)    (default: report)
#   BENCH_SUMMARY    the check's verdict as Markdown            (default: summary.md)
#   BENCH_REQUIRE_BASELINE=1   no baseline is an error (exit 2), not a notice
#   PYTHON           the interpreter                            (default: python)
#
# Exit status: the benchmark run's if it failed, else the check's: 0 no regression,
# 1 regression, 2 bad input (or the report could not be written).
set -u

profile=${BENCH_PROFILE:-quick}
storage=${BENCH_STORAGE:-bench-results}
baseline=${BENCH_BASELINE:-bench-baseline}
out=${BENCH_OUT:-report}
summary=${BENCH_SUMMARY:-summary.md}
python=${PYTHON:-python}

"$python" -m pytest benchmarks/ --profile "$profile" --benchmark-autosave \
    --benchmark-storage="file://$storage" -p no:cacheprovider -q
status=$?
if [ "$status" -ne 0 ]; then
    echo "ci-bench: the benchmark run failed (exit $status); nothing to check" >&2
    exit "$status"
fi

if [ -e "$baseline" ] || [ "${BENCH_REQUIRE_BASELINE:-0}" = 1 ]; then
    # The check says what is missing or broken itself (exit 2), never passes on nothing.
    "$python" -m reports check --baseline "$baseline" --current "$storage" \
        --markdown "$summary" "$@"
    status=$?
else
    echo "ci-bench: no baseline at $baseline: nothing to compare this run with" >&2
    {
        echo "## boundbench check: no baseline yet"
        echo
        echo "No baseline run at \`$baseline\`; this run was not compared with anything."
        echo "It becomes the baseline once it is saved from the main branch."
    } > "$summary"
    status=0
fi

mkdir -p "$out"
if "$python" -m reports "$storage" --out "$out"; then
    cp "$summary" "$out/check.md"
else
    echo "ci-bench: writing the report to $out failed" >&2
    [ "$status" -eq 0 ] && status=2
fi
exit "$status"
