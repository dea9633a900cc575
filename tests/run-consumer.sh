#!/bin/sh
# Builds and runs tests/consumer.c and tests/consumer.cc against an installed libkvz (argument: the prefix).
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
echo "consumer: C and C++ programs built with pkg-config kvz and ran"
