#!/bin/sh
# The exported ABI, three ways: the functions include/kvz.h declares (KVZ_API), the names the linker map
# src/libkvz.map exports under KVZ_0.1, and the dynamic symbols of the built libkvz.so must be the same list;
# besides them libkvz.so exports exactly the map's KVZ_PRIVATE node (internal calls of libkvz-model).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
lib=${KVZ_LIB:-$(pwd)/.libs/libkvz.so}
if [ ! -f "$lib" ]; then
    echo "test_symbols: no shared library at $lib (a --disable-shared build): nothing to compare"
    exit 77
fi
nm=${KVZ_NM:-nm} # the build's nm (libtool's: the cross one in a cross build)
command -v "${nm%% *}" >/dev/null || { echo "test_symbols: $nm (binutils) is missing"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# KVZ_API <return type> kvz_name( ... across lines: join the header, then take each declared name
tr '\n' ' ' <"$top/include/kvz.h" | grep -oE 'KVZ_API[^;(]*[^a-z0-9_]kvz_[a-z0-9_]+ *\(' |
    grep -oE 'kvz_[a-z0-9_]+ *\($' | sed 's/ *($//' | sort >"$tmp/header"
sed -n '/^KVZ_0\.1 {/,/^}/p' "$top/src/libkvz.map" | sed -n '/global:/,/local:/p' |
    grep -oE '^ *kvz_[a-z0-9_]+;' | sed 's/[ ;]//g' | sort >"$tmp/map"
$nm -D --defined-only "$lib" | awk '$2 ~ /^[TWiV]$/ {print $3}' | grep '@@KVZ_0\.1$' | sed 's/@.*//' | sort -u >"$tmp/library"
status=0
for a in header map library; do
    for b in header map library; do
        [ "$a" \< "$b" ] || continue
        if ! cmp -s "$tmp/$a" "$tmp/$b"; then
            echo "test_symbols: the $a and the $b differ (< $a, > $b):"
            diff "$tmp/$a" "$tmp/$b" | grep '^[<>]' || true
            status=1
        fi
    done
done
n=$(wc -l <"$tmp/library")
[ "$n" -gt 0 ] || { echo "test_symbols: no kvz_ symbols found"; status=1; }
# every other exported symbol is one of the KVZ_PRIVATE node (for libkvz-model), and it is all of them
sed -n '/^KVZ_PRIVATE {/,/^}/p' "$top/src/libkvz.map" | grep -oE '^ *kvz_[a-z0-9_]+;' | sed 's/[ ;]//g' |
    sort >"$tmp/private_map"
$nm -D --defined-only "$lib" | awk '$2 ~ /^[TWiV]$/ {print $3}' | grep -v '@@KVZ_0\.1$' | sort -u >"$tmp/rest"
sed 's/$/@@KVZ_PRIVATE/' "$tmp/private_map" >"$tmp/private_want"
if ! cmp -s "$tmp/rest" "$tmp/private_want"; then
    echo "test_symbols: the exports outside KVZ_0.1 (<) differ from the map's KVZ_PRIVATE node (>):"
    diff "$tmp/rest" "$tmp/private_want" | grep '^[<>]' || true
    status=1
fi
[ "$status" -ne 0 ] || echo "test_symbols: $n functions, the same in include/kvz.h, src/libkvz.map and $(basename "$lib")"

# libkvz-model: include/kvz_model.h, src/libkvz-model.map (KVZ_MODEL_0.1) and the library, nothing else exported
mlib=$(dirname "$lib")/libkvz-model.so
tr '\n' ' ' <"$top/include/kvz_model.h" | grep -oE 'KVZ_API[^;(]*[^a-z0-9_]kvz_[a-z0-9_]+ *\(' |
    grep -oE 'kvz_[a-z0-9_]+ *\($' | sed 's/ *($//' | sort >"$tmp/mheader"
sed -n '/^KVZ_MODEL_0\.1 {/,/^}/p' "$top/src/libkvz-model.map" | grep -oE '^ *kvz_[a-z0-9_]+;' | sed 's/[ ;]//g' |
    sort >"$tmp/mmap"
$nm -D --defined-only "$mlib" | awk '$2 ~ /^[TWiV]$/ {print $3}' | sort -u >"$tmp/mall"
sed 's/$/@@KVZ_MODEL_0.1/' "$tmp/mmap" >"$tmp/mwant"
if ! cmp -s "$tmp/mheader" "$tmp/mmap" || ! cmp -s "$tmp/mall" "$tmp/mwant"; then
    echo "test_symbols: include/kvz_model.h, src/libkvz-model.map and $(basename "$mlib") differ:"
    diff "$tmp/mheader" "$tmp/mmap" | grep '^[<>]' || true
    diff "$tmp/mall" "$tmp/mwant" | grep '^[<>]' || true
    status=1
else
    echo "test_symbols: $(wc -l <"$tmp/mmap") functions, the same in include/kvz_model.h, src/libkvz-model.map and $(basename "$mlib")"
fi
exit "$status"
