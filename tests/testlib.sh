# What the shell tests share (sourced): `check NAME GOT WANT` counts failures, `skip WHY` exits 77
# (or fails under CI, where everything a test needs is installed), `finish` exits with the verdict,
# and $tmp is a scratch folder removed on exit.
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
in_ci() { [ -n "${CI:-}" ] && [ "$CI" != 0 ] && [ "$CI" != false ]; }
skip() {
    if in_ci; then
        echo "FAIL: $1 under CI"
        exit 1
    fi
    echo "skip: $1"
    exit 77
}
finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed"
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
