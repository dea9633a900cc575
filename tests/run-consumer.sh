#!/bin/sh
# Builds and runs tests/consumer.c and tests/consumer.cc against an installed libkvz, and examples/lm_ask.c and a
# C++ use of kvz_model.h against libkvz-model (argument: the prefix).
set -eu
prefix=$1
here=$(cd "$(dirname "$0")" && pwd)
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cflags=$(pkg-config --cflags kvz)
libs=$(pkg-config --libs kvz)
${CC:-cc} -std=c11 -Wall -Werror $cflags "$here/consumer.c" -o "$tmp/consumer_c" $libs -lm
${CXX:-c++} -std=c++11 -Wall -Werror $cflags "$here/consumer.cc" -o "$tmp/consumer_cc" $libs
LD_LIBRARY_PATH="$prefix/lib" "$tmp/consumer_c"
LD_LIBRARY_PATH="$prefix/lib" "$tmp/consumer_cc"
LD_LIBRARY_PATH="$prefix/lib" "$prefix/bin/kvz" info
# libkvz-model: examples/lm_ask (C) and a C++ use of kvz_model.h, built with pkg-config kvz-model
mflags=$(pkg-config --cflags --libs kvz-model)
${CC:-cc} -std=c11 -Wall -Werror "$here/../examples/lm_ask.c" -o "$tmp/lm_ask" $mflags
printf '#include <kvz_model.h>\nint main() { kvz_lm *lm = 0; return kvz_lm_open(0, 0, &lm) == KVZ_ERR_NULL ? 0 : 1; }\n' \
    >"$tmp/lm.cc"
${CXX:-c++} -std=c++11 -Wall -Werror "$tmp/lm.cc" -o "$tmp/lm_cc" $mflags
LD_LIBRARY_PATH="$prefix/lib" "$tmp/lm_cc"
rc=0
LD_LIBRARY_PATH="$prefix/lib" "$tmp/lm_ask" "$tmp/missing.gguf" "$here/consumer.c" "question" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'missing.gguf' "$tmp/err" ||
    { echo "consumer: lm_ask on a missing model: exit $rc, $(cat "$tmp/err")"; exit 1; }
echo "consumer: C and C++ programs built with pkg-config kvz and kvz-model and ran"
