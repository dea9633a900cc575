#!/bin/sh
# perf/report, the charts of a perf run, on a result perf/run builds from bench lines written here (no
# timing) plus peer figures: every chart whose figures are there is a PNG of the asked size (its
# signature and IHDR read here), with the numbers it plots in its .dat; a chart without figures is
# reported skipped; a file with none exits 1; unusable files exit 2. Skips (77) without python3 or
# gnuplot, except under CI (.ci/setup-debian --tests installs gnuplot-nox).
set -u
. "$(dirname "$0")/testlib.sh"
SRC=$(cd "$(dirname "$0")/.." && pwd)
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
command -v gnuplot >/dev/null 2>&1 || skip "gnuplot is not installed (Debian: gnuplot-nox)"

# stream_read 40 GB/s: decode_bf16_32k at 30 GB/s is 0.75 of it. No sgemm_f32: no prefill chart.
cat > "$tmp/kernels.txt" <<'LINES'
{"name":"stream_read","seconds":0.1,"best_seconds":0.09,"rate":40,"unit":"GB/s","work":4e9,"reps":9,"spread":0.02,"libkvz":"9.9.9","isa":"avx2","cpu":"Test CPU","threads":2,"compiler":"cc 1"}
{"name":"decode_bf16_32k","seconds":0.01,"best_seconds":0.009,"rate":30,"unit":"GB/s","work":3e8,"reps":9,"spread":0.02,"libkvz":"9.9.9","isa":"avx2","cpu":"Test CPU","threads":2,"compiler":"cc 1"}
{"name":"decode_bf16_4k_hot","seconds":0.001,"best_seconds":0.0009,"rate":50,"unit":"GB/s","work":5e7,"reps":9,"spread":0.1,"libkvz":"9.9.9","isa":"avx2","cpu":"Test CPU","threads":2,"compiler":"cc 1"}
{"name":"ratio_decode_vs_stream","value":0.75,"target":0.85,"cmp":">=","met":false,"spread":0.03,"reps":9,"isa":"avx2","cpu":"Test CPU","threads":2}
LINES
# two context lengths, the four caches of kvz bench payoff --json
: > "$tmp/payoff.txt"
for n in 4096 16384; do
    for c in "full 1.0 1.0 1.0" "kvzip-0.3 0.6 0.8 0.7" "kvzip-0.5 0.75 0.88 0.8" "fastkv 0.5 0.75 0.66"; do
        set -- $c
        t=$(awk -v n="$n" -v r="$2" 'BEGIN { printf "%.6g", r * n / 40960 }')
        echo "{\"suite\": \"payoff\", \"name\": \"$1/$n\", \"context\": $n, \"cache\": \"$1\", \"build_s\": 10, \"kv_bytes\": 1e8, \"kv_vs_full\": 0.5, \"decode_s\": $t, \"spread\": 0.05, \"reps\": 16, \"vs_full\": $2, \"model_vs_full\": $3, \"model32_vs_full\": $4, \"weight_bytes\": 2e9, \"bandwidth\": 1e10, \"peak_rss_mb\": 3000, \"weights\": \"bf16\", \"threads\": 2}" >> "$tmp/payoff.txt"
    done
done

report() { python3 "$SRC/perf/report" "$@" > "$tmp/out.txt" 2>&1; echo $?; }
# png FILE: "PNG WIDTHxHEIGHT" from the signature and the IHDR chunk, or what is wrong with it
png() {
    python3 - "$1" <<'PY'
import struct, sys
try:
    head = open(sys.argv[1], "rb").read(24)
except OSError:
    sys.exit(print("missing"))
if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
    sys.exit(print("not a PNG"))
print("PNG %dx%d" % struct.unpack(">II", head[16:24]))
PY
}
# field DAT LABEL COLUMN: a column of the .dat row whose first field is LABEL (quoted or not)
field() { awk -v l="$2" -v c="$3" '{ gsub(/"/, "", $1) } $1 == l { print $c }' "$1"; }

python3 "$SRC/perf/run" --source "$SRC" --lines "kernels=$tmp/kernels.txt" --lines "payoff=$tmp/payoff.txt" \
    -o "$tmp/run.json" 2> "$tmp/run.err"
check "perf/run takes payoff lines" "$?" 0
check "... as rates, measured ratios and cost-model figures" "$(python3 -c 'import json,sys
f={x["name"]: x for x in json.load(open(sys.argv[1]))["figures"] if x["suite"] == "payoff"}
a=f["kvzip-0.3/16384"]; b=f["kvzip-0.3/16384/vs_full"]; c=f["kvzip-0.3/16384/model_vs_full"]
print(a["kind"], a["unit"], a["seconds"], a["reps"], b["kind"], b["better"], b["value"], c["kind"], c["value"], len(f))' \
    "$tmp/run.json")" "rate tokens/s 0.24 16 ratio lower 0.6 model 0.8 40"
# what perf/peer --append adds: rates and ratios of suite peer
python3 - "$tmp/run.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
for model in ("proxy-8b", "smollm2"):
    for phase, v in (("prefill", 0.8), ("decode", 1.25)):
        for vs in ("best", "default"):
            run["figures"].append({"suite": "peer", "name": f"{model}/{phase}_vs_{vs}", "kind": "ratio", "value": v,
                                   "unit": "ratio", "better": "higher", "reps": 3, "spread": 0.05,
                                   "llama_cpp": "0.0.1"})
json.dump(run, open(sys.argv[1], "w"))
PY

check "perf/report draws what is there: exit 0" "$(report "$tmp/run.json" -o "$tmp/charts" --size 640x400)" 0
for c in kernels_decode payoff_decode payoff_vs_full peer; do
    check "$c.png is a 640x400 PNG" "$(png "$tmp/charts/$c.png")" "PNG 640x400"
    check "... beside its data and script" "$([ -s "$tmp/charts/$c.dat" ] && [ -s "$tmp/charts/$c.gp" ] && echo yes)" yes
done
check "the prefill chart is reported skipped (no sgemm_f32)" \
    "$(grep -c '^perf/report: skipped kernels_prefill.png: .*no sgemm_f32' "$tmp/out.txt")" 1
check "... and not drawn" "$(png "$tmp/charts/kernels_prefill.png")" missing
check "decode_bf16_32k: 30 GB/s ÷ stream_read 40" "$(field "$tmp/charts/kernels_decode.dat" decode_bf16_32k 2)" 0.75
check "... the hot case in the second colour" "$(field "$tmp/charts/kernels_decode.dat" decode_bf16_4k_hot 4)" 2
# payoff_decode.dat: one block per cache; kvzip-0.3 at 16384 measured 0.6 * 400 ms, modelled 0.8 * 400 ms
check "payoff: measured and modelled ms of kvzip-0.3 at 16384" \
    "$(awk '/^# kvzip-0.3/ { b = 1; next } /^#/ { b = 0 } b && $1 == 16384 { print $2, $3 }' "$tmp/charts/payoff_decode.dat")" \
    "240 320"
check "peer: every ratio drawn" "$(grep -c '_vs_' "$tmp/charts/peer.dat")" 8
rm "$tmp/charts/peer.png"
check "a chart's script draws it again" "$(cd "$tmp/charts" && gnuplot peer.gp && png peer.png)" "PNG 640x400"
check "the default size is 1000x560" "$(report "$tmp/run.json" -o "$tmp/d" && png "$tmp/d/peer.png")" "0
PNG 1000x560"

python3 "$SRC/perf/run" --source "$SRC" --lines "kernels=$tmp/kernels.txt" -o "$tmp/kernels.json" 2> "$tmp/run.err"
check "a file without payoff or peer figures: still exit 0" "$(report "$tmp/kernels.json" -o "$tmp/k")" 0
check "... the payoff and peer charts reported skipped" "$(grep -c '^perf/report: skipped \(payoff\|peer\)' "$tmp/out.txt")" 3
echo '{"format": "libkvz-perf 1", "figures": [{"suite": "model", "name": "prefill", "value": 1}]}' > "$tmp/none.json"
check "a file with no chart's figures: exit 1" "$(report "$tmp/none.json" -o "$tmp/n")" 1
check "... every chart reported skipped" "$(grep -c '^perf/report: skipped' "$tmp/out.txt")" 5

printf '{"format": "libkvz-perf 1", "figures": [' > "$tmp/bad.json"
check "a truncated file: exit 2" "$(report "$tmp/bad.json" -o "$tmp/b")" 2
echo '{"format": "something else", "figures": []}' > "$tmp/bad.json"
check "a file of another format: exit 2" "$(report "$tmp/bad.json" -o "$tmp/b")" 2
echo '{"format": "libkvz-perf 1", "figures": [{"suite": "kernels", "name": "x", "value": "fast"}]}' > "$tmp/bad.json"
check "a figure without a number: exit 2" "$(report "$tmp/bad.json" -o "$tmp/b")" 2
check "... saying why" "$(grep -c 'without a usable' "$tmp/out.txt")" 1
check "a missing file: exit 2" "$(report "$tmp/nothing.json" -o "$tmp/b")" 2
check "a bad --size: exit 2" "$(report "$tmp/run.json" -o "$tmp/b" --size 12)" 2
check "--help: exit 0" "$(report --help)" 0
finish
