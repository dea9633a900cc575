# What the shell tests share (sourced): `check NAME GOT WANT` counts failures, `skip WHY` exits 77
# (or fails under CI, where everything a test needs is installed), `model_tier` exits 77 in make
# check, `finish` exits with the verdict, `check_eval_report` checks a kvz eval run independently,
# `kvz` runs the tool, and $tmp is a scratch folder removed on exit.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
check() { # check NAME GOT WANT
    if [ "$2" = "$3" ]; then
        echo "ok: $1"
    else
        echo "FAIL: $1"
        echo "  got:  $2"
        echo "  want: $3"
        failures=$((failures + 1))
    fi
}
# kvz ARGS: the tool ($KVZ) under $RUNNER (e.g. qemu-aarch64 for a cross build). kvz bench runs kvz-bench beside
# kvz, which an emulated kvz cannot start (no binfmt_misc): it goes there directly.
kvz() {
    if [ -n "${RUNNER:-}" ] && [ "$1" = bench ]; then
        shift
        $RUNNER "$KVZ-bench" "$@"
    else
        ${RUNNER:-} "$KVZ" "$@"
    fi
}
in_ci() { [ -n "${CI:-}" ] && [ "$CI" != 0 ] && [ "$CI" != false ]; }
# model_tier: a test that needs a model, ../shared or the network exits 77 in `make check`
# (KVZ_TEST_MODELS=0); `make check-models` runs it.
model_tier() {
    if [ "${KVZ_TEST_MODELS:-}" = 0 ]; then
        echo "skip: a test of the model tier (make check-models runs it)"
        exit 77
    fi
}
skip() {
    if in_ci; then
        echo "FAIL: $1 under CI"
        exit 1
    fi
    echo "skip: $1"
    exit 77
}
# check_eval_report TASKS GENERATIONS JSON: tests/eval_check.py recomputes every generation's RULER
# score and every summary from them; the full cache must agree with itself. Its report stays in
# $tmp/py.txt for further checks.
check_eval_report() {
    python3 "$(dirname "$0")/eval_check.py" "$1" "$2" "$3" > "$tmp/py.txt"
    cat "$tmp/py.txt"
    check "every generation's RULER score, recomputed" "$(grep '^scores' "$tmp/py.txt")" "scores ok"
    check "every summary's accuracy and agreement, recomputed" "$(grep '^summaries' "$tmp/py.txt")" "summaries ok"
    check "the full cache agrees with its references" "$(grep '^full' "$tmp/py.txt")" "full agree 1.0 kl zero"
}
finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed"
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
