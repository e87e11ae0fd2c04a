#!/usr/bin/env bash
# The count half of CI: instructions of the base commit against the head, under Valgrind.
#
#   scripts/ci-counts.sh BASE-REF [PYTEST-OPTION...]
#
# Both commits are checked out as worktrees at paths of equal length (a path's length is
# in every code object's file name, and so in the instructions that handle it), counted
# one after the other with `pytest benchmarks/ --measure instructions` (COUNT_TESTS,
# COUNT_PROFILE), then compared by `python -m reports check`, which pairs count runs only
# with count runs made the same way and judges them by thresholds/instructions.json.
# A base from before count runs existed is a notice, not a failure.
#
# Environment, all optional:
#   COUNT_PROFILE   benchmark profile                  (default: quick)
#   COUNT_TESTS     the benchmark modules counted      (default: the count run's set)
#   COUNT_OUT       where the two runs and the verdict go   (default: bench-counts)
#   PYTHON          the interpreter (the real one, not a shim)   (default: python)
#
# Exit status: a count run's if it failed, else the check's: 0, 1 regression, 2 bad input.
set -u

if [ $# -lt 1 ]; then
    echo "usage: scripts/ci-counts.sh BASE-REF [PYTEST-OPTION...]" >&2
    exit 2
fi
base_ref=$1
shift
profile=${COUNT_PROFILE:-quick}
tests=${COUNT_TESTS:-"benchmarks/test_cpu.py benchmarks/test_io.py benchmarks/test_io_socket.py benchmarks/test_mixed.py benchmarks/test_startup.py benchmarks/test_seed.py"}
out=$(mkdir -p "${COUNT_OUT:-bench-counts}" && cd "${COUNT_OUT:-bench-counts}" && pwd)
python=${PYTHON:-python}

trees=$(mktemp -d "${TMPDIR:-/tmp}/bbc.XXXXXX")
cleanup() {
    git worktree remove --force "$trees/a" 2>/dev/null
    git worktree remove --force "$trees/b" 2>/dev/null
    rm -rf "$trees"
}
trap cleanup EXIT
if ! git worktree add --detach --quiet "$trees/a" "$base_ref" 2>/dev/null; then
    echo "ci-counts: $base_ref is not a commit of this repository" >&2
    exit 2
fi
git worktree add --detach --quiet "$trees/b" HEAD || exit 2

count() {  # $1 tree, $2 output JSON, $3 what it is
    # shellcheck disable=SC2086
    (cd "$1" && PYTHONPATH="$1${PYTHONPATH:+:$PYTHONPATH}" "$python" -m pytest $tests \
        --profile "$profile" --measure instructions --benchmark-json="$2" \
        -p no:cacheprovider -q "${@:4}")
}

if ! grep -q -- '"--measure"' "$trees/a/conftest.py" 2>/dev/null; then
    echo "ci-counts: the base ($base_ref) has no count run (--measure): nothing to compare" >&2
    printf '## boundbench counts: no count run in the base\n\nThe base commit predates count runs.\n' \
        > "$out/counts.md"
    exit 0
fi
count "$trees/a" "$out/base.json" "the base" "$@" || { echo "ci-counts: the base's count run failed" >&2; exit 2; }
count "$trees/b" "$out/head.json" "the head" "$@" || { status=$?; echo "ci-counts: the head's count run failed" >&2; exit "$status"; }
"$python" -m reports check --baseline "$out/base.json" --current "$out/head.json" \
    --markdown "$out/counts.md"
