#!/bin/sh
# Run by `make check-models` on its test-suite.log: under CI, where .ci/fetch-models has run and the npm
# registry is reachable, a test of the model tier that skipped fails the tier; elsewhere the skipped
# tests are listed, with what they need.
log=${1:?usage: no_skips.sh TEST_SUITE_LOG}
skipped=$(sed -n 's/^SKIP: //p' "$log")
[ -n "$skipped" ] || exit 0
echo "model tier: skipped $(echo "$skipped" | tr '\n' ' ')(they need ../shared, .ci/fetch-models or the npm registry; $log says why)"
case ${CI:-} in
"" | 0 | false) exit 0 ;;
esac
echo "FAIL: a test of the model tier skipped under CI"
exit 1
