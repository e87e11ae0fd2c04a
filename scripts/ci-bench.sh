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
#   BENCH_BASE_REF   a git commit or branch (e.g. origin/main): check it out in a
#                    temporary worktree and measure it against this checkout in one A/B
#                    session (pytest benchmarks/ --ab-base=WORKTREE, docs/ab.md: each
#                    cell's base and head rounds in pairs, back to back), saved to
#                    BENCH_STORAGE/ab.json, judged by `python -m reports ab` instead of
#                    the check against BENCH_BASELINE.  A base the session cannot run
#                    (another runner protocol, no runner) is measured in a session of
#                    its own first (kept in BENCH_BASE_STORAGE, default bench-base), then
#                    this checkout, and checked as below.  Same machine, same minutes:
#                    the host's drift (CPU families 20%, echo 30% here) stays out.
#   PYTHON           the interpreter                            (default: python)
#
# Exit status: the benchmark run's if it failed, else the check's (or `reports ab`'s):
# 0 no regression, 1 regression, 2 bad input (or the report could not be written).
set -u

profile=${BENCH_PROFILE:-quick}
storage=${BENCH_STORAGE:-bench-results}
baseline=${BENCH_BASELINE:-bench-baseline}
out=${BENCH_OUT:-report}
summary=${BENCH_SUMMARY:-summary.md}
python=${PYTHON:-python}

# Runs the benchmarks of the checkout in $1 (its own code first on the path), saved to $2;
# a failed run ends the job with its status ($3 names the run in the message).
bench() {
    (cd "$1" && PYTHONPATH="$1${PYTHONPATH:+:$PYTHONPATH}" "$python" -m pytest benchmarks/ \
        --profile "$profile" --benchmark-autosave --benchmark-storage="file://$2" \
        -p no:cacheprovider -q)
    local status=$?
    if [ "$status" -ne 0 ]; then
        echo "ci-bench: $3 failed (exit $status); nothing to check" >&2
        exit "$status"
    fi
}

absolute() {
    case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac
}

ab=""
if [ -n "${BENCH_BASE_REF:-}" ]; then
    base_tree=$(mktemp -d "${TMPDIR:-/tmp}/bench-base.XXXXXX")
    trap 'git worktree remove --force "$base_tree/tree" 2>/dev/null; rm -rf "$base_tree"' EXIT
    if ! git worktree add --detach --quiet "$base_tree/tree" "$BENCH_BASE_REF" 2>/dev/null; then
        echo "ci-bench: BENCH_BASE_REF=$BENCH_BASE_REF is not a commit of this repository" >&2
        exit 2
    fi
    ab=$(absolute "$storage")/ab.json
    mkdir -p "$(dirname "$ab")"
    rm -f "$ab" "${ab%.json}.a.json" "${ab%.json}.b.json"
    PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$python" -m pytest benchmarks/ \
        --profile "$profile" --ab-base="$base_tree/tree" --benchmark-json="$ab" \
        -p no:cacheprovider -q
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "ci-bench: the A/B session against $BENCH_BASE_REF failed (exit $status);" \
            "nothing to check" >&2
        exit "$status"
    fi
    if [ ! -s "$ab" ]; then
        # The base could not join the session (it said why): it ran its own session,
        # then this checkout ran one; check the second against the first.
        baseline=$(absolute "${BENCH_BASE_STORAGE:-bench-base}")
        mkdir -p "$baseline"
        mv "${ab%.json}.a.json" "$baseline/"
        ab=""
    fi
else
    bench "$PWD" "$(absolute "$storage")" "the benchmark run"
fi

if [ -n "$ab" ]; then
    # Both sides' rounds of every cell, paired: the verdict is the A/B report's.
    "$python" -m reports ab "$ab" --markdown "$summary"
    status=$?
elif [ -e "$baseline" ] || [ "${BENCH_REQUIRE_BASELINE:-0}" = 1 ]; then
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
