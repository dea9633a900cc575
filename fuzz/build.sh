#!/bin/sh
# Builds the libFuzzer harnesses into build/fuzz/fuzz/: the library configured in build/fuzz with clang,
# coverage (-fsanitize=fuzzer-no-link) and ASan+UBSan, the harnesses linked with -fsanitize=fuzzer.
# Usage: fuzz/build.sh (CC=clang-NN to pick another clang; JOBS=N parallel jobs, default 2).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
CC=${CC:-clang-14}
if ! command -v "$CC" >/dev/null; then
    echo "fuzz/build.sh: $CC not found (Debian: clang-14 libclang-rt-14-dev libomp-14-dev, which .ci/setup-debian installs)" >&2
    exit 2
fi
[ -x configure ] || ./autogen.sh
mkdir -p build/fuzz
cd build/fuzz
# -O1 keeps the code close to the source for the sanitizers' reports at a useful speed.
[ -f Makefile ] || "$top/configure" -q --disable-shared --disable-perf --enable-sanitizers CC="$CC" \
    CFLAGS="-g -O1 -fsanitize=fuzzer-no-link"
make -s -j"${JOBS:-2}" fuzz
