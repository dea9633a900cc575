#!/bin/sh
# The Python package (python/) against this build: pytest (pinned) and `pip install python/` in a virtual
# environment under the build directory, then python/tests, whose model tests compare with this kvz tool on
# SmolLM2-135M-Instruct. Skips (77) without the shared libraries (a --disable-shared build), python3's venv
# or PyPI; under CI the last two fail.
set -u
. "$(dirname "$0")/testlib.sh"
model_tier
SRC=$(cd "$(dirname "$0")/.." && pwd)
LIBDIR=$(pwd)/.libs
if [ ! -f "$LIBDIR/libkvz-model.so" ]; then
    echo "test_python: no shared libraries in $LIBDIR (a --disable-shared build): nothing for ctypes to load"
    exit 77
fi
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
venv=$(pwd)/python-venv
# pytest, and the gguf package (llama.cpp's GGUF reader and writer) for a file the tests write; pinned
if ! "$venv/bin/python" -c "import pytest, gguf" > /dev/null 2>&1; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" > "$tmp/venv.log" 2>&1 ||
        { cat "$tmp/venv.log"; skip "python3 -m venv failed (Debian: python3-venv)"; }
    "$venv/bin/pip" install -q pytest==8.3.4 gguf==0.17.1 numpy==2.4.6 PyYAML==6.0.4 tqdm==4.70.1 > "$tmp/pip.log" 2>&1 ||
        { cat "$tmp/pip.log"; skip "pip cannot install pytest and gguf (no PyPI?)"; }
fi
# the package as a user installs it, from a copy (pip builds in the tree it is given: the source may be read-only)
cp -R "$SRC/python" "$tmp/python" && chmod -R u+w "$tmp/python"
"$venv/bin/pip" install -q --force-reinstall --no-deps "$tmp/python" > "$tmp/pip.log" 2>&1 ||
    { cat "$tmp/pip.log"; skip "pip cannot install python/ (no PyPI for its build backend?)"; }
cd "$tmp" && KVZ_LIB_DIR=$LIBDIR KVZ_BIN=${KVZ_BIN:-$LIBDIR/../kvz} "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    "$SRC/python/tests"
