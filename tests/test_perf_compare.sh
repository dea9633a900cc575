#!/bin/sh
# perf/run and perf/compare, the perf regression tools, on bench output written here (no timing): the
# lines of the three suites become one result file with the machine's facts; a result compared with
# itself has no regression; a ratio made worse by more than the noise allows is one (exit 1), by less
# or for the better is not; a rate is never judged; unusable files exit 2. Skips (77) without python3.
set -u
. "$(dirname "$0")/testlib.sh"
SRC=$(cd "$(dirname "$0")/.." && pwd)
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"

cat > "$tmp/kernels.txt" <<'LINES'
{"name":"stream_read","seconds":0.1,"best_seconds":0.09,"rate":40,"unit":"GB/s","work":4e9,"reps":9,"spread":0.02,"libkvz":"9.9.9","isa":"avx2","cpu":"Test CPU","threads":2,"compiler":"cc 1"}
{"name":"decode_bf16_32k","seconds":0.01,"best_seconds":0.009,"rate":30,"unit":"GB/s","work":3e8,"reps":9,"spread":0.02,"libkvz":"9.9.9","isa":"avx2","cpu":"Test CPU","threads":2,"compiler":"cc 1"}
{"name":"ratio_decode_vs_stream","value":0.75,"target":0.85,"cmp":">=","met":false,"spread":0.03,"reps":9,"isa":"avx2","cpu":"Test CPU","threads":2}
{"name":"ratio_decode_r0.3_vs_full","value":0.31,"target":0.35,"cmp":"<=","met":true,"spread":0.03,"reps":9,"isa":"avx2","cpu":"Test CPU","threads":2}
LINES
cat > "$tmp/cache.txt" <<'LINES'
{"name":"decode_cache/full/1.0","seconds":0.02,"rate":30,"unit":"GB/s","reps":41,"spread":0.05,"kept_ratio":1,"vs_full":1,"vs_full_spread":0.07,"isa":"avx2","cpu":"Test CPU","threads":2}
{"name":"decode_cache/kvzip-pair/0.3","seconds":0.006,"rate":30,"unit":"GB/s","reps":41,"spread":0.05,"kept_ratio":0.3,"vs_full":0.3,"vs_full_spread":0.07,"isa":"avx2","cpu":"Test CPU","threads":2}
{"name":"kvz_save","seconds":0.1,"rate":2,"unit":"GB/s","vs_stream":0.05}
LINES
cat > "$tmp/model.txt" <<'LINES'
{"suite": "model", "name": "prefill", "seconds": 2.0, "rate": 2048, "unit": "tokens/s", "spread": 0.01, "isa": "avx2", "threads": 2, "rounds": 3}
{"suite": "model", "target": "kvzip_vs_prefill", "value": 2.1, "bound": 2.2, "at_most": true, "pass": true, "spread": 0.01, "isa": "avx2", "threads": 2, "rounds": 3}
{"suite": "model", "target": "scoring_overhead", "value": 0.05, "bound": 0.10, "at_most": true, "pass": true, "spread": 0.2, "isa": "avx2", "threads": 2, "rounds": 3}
{"suite": "model", "target": "fastkv_ttft_speedup", "value": 1.7, "bound": 1.6, "at_most": false, "pass": true, "spread": 0.01, "isa": "avx2", "threads": 2, "rounds": 3}
LINES

run() { python3 "$SRC/perf/run" --source "$SRC" --lines "kernels=$tmp/kernels.txt" --lines "cache=$tmp/cache.txt" \
    --lines "model=$tmp/model.txt" "$@"; }
compare() { python3 "$SRC/perf/compare" "$@" > "$tmp/out.txt" 2>&1; echo $?; }
# edit NAME FACTOR [SPREAD]: a copy of the old result with one figure's value multiplied
edit() {
    python3 - "$tmp/old.json" "$tmp/new.json" "$@" <<'PY'
import json, sys
src, dst, name, factor = sys.argv[1:5]
run = json.load(open(src))
hit = [f for f in run["figures"] if f["name"] == name]
assert len(hit) == 1, name
hit[0]["value"] *= float(factor)
if len(sys.argv) > 5:
    hit[0]["spread"] = float(sys.argv[5])
json.dump(run, open(dst, "w"))
PY
}
verdict() { awk -v n="$1" '$1 == n { print $NF }' "$tmp/out.txt"; }

run -o "$tmp/old.json" 2> "$tmp/run.err"
check "perf/run writes the result" "$?" 0
facts=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); m=r["machine"]; f={x["suite"]+"/"+x["name"]: x for x in r["figures"]}
print(r["format"], r["libkvz"], m["isa"], m["threads"], m["stream_read"]["value"], len(r["figures"]),
      f["kernels/decode_vs_stream"]["better"], f["kernels/decode_r0.3_vs_full"]["better"],
      f["cache/decode_cache/kvzip-pair/0.3/vs_full"]["value"], f["model/scored_vs_unscored"]["value"],
      f["model/scored_vs_unscored"]["target"], f["model/fastkv_ttft_speedup"]["better"])' "$tmp/old.json")
check "the machine's facts and the figures, each with the way that is better" "$facts" \
    "libkvz-perf 1 9.9.9 avx2 2 40 14 higher lower 0.3 1.05 1.1 higher"

check "a result compared with itself: exit 0" "$(compare "$tmp/old.json" "$tmp/old.json")" 0
check "... and no regression" "$(tail -n 1 "$tmp/out.txt")" "8 ratio figures judged, 0 regression(s)"

edit decode_vs_stream 0.7
check "decode_vs_stream 30 % lower: exit 1" "$(compare "$tmp/old.json" "$tmp/new.json")" 1
check "... named a regression" "$(verdict kernels/decode_vs_stream)" REGRESSION
edit decode_vs_stream 0.97
check "3 % lower, under the 5 % floor: exit 0" "$(compare "$tmp/old.json" "$tmp/new.json")" 0
edit decode_vs_stream 0.7 1.5
check "30 % lower with a spread of 1.5 in the new run: within the noise" "$(compare "$tmp/old.json" "$tmp/new.json")" 0
edit decode_vs_stream 1.3
check "30 % higher: exit 0" "$(compare "$tmp/old.json" "$tmp/new.json")" 0
check "... named better" "$(verdict kernels/decode_vs_stream)" better
edit kvzip_vs_prefill 1.2
check "kvzip_vs_prefill (lower is better) 20 % higher: exit 1" "$(compare "$tmp/old.json" "$tmp/new.json")" 1
edit decode_bf16_32k 0.5
check "a rate halved is not judged" "$(compare "$tmp/old.json" "$tmp/new.json")" 0
compare --all "$tmp/old.json" "$tmp/new.json" > /dev/null
check "... --all prints it, unjudged" "$(verdict kernels/decode_bf16_32k)" unjudged

echo '{"format": "something else", "figures": []}' > "$tmp/bad.json"
check "a file of another format: exit 2" "$(compare "$tmp/old.json" "$tmp/bad.json")" 2
printf '{"format": "libkvz-perf 1", "figures": [' > "$tmp/bad.json"
check "a truncated file: exit 2" "$(compare "$tmp/bad.json" "$tmp/old.json")" 2
check "a missing file: exit 2" "$(compare "$tmp/old.json" "$tmp/none.json")" 2
# the checked-in baselines are results perf/compare reads, each no regression of itself
for b in "$SRC"/perf/baselines/*.json; do
    check "$(basename "$b") compared with itself: exit 0" "$(compare "$b" "$b")" 0
done
echo '{"name":"decode_bf16_32k","error":"failed (see stderr)","isa":"avx2","cpu":"Test CPU","threads":2}' > "$tmp/kernels.txt"
run -o "$tmp/failed.json" 2> "$tmp/run.err"
check "perf/run on a failed case: exit non-zero" "$([ $? -ne 0 ] && echo yes)" yes
check "... and no result file" "$([ -e "$tmp/failed.json" ] && echo written || echo none)" none
finish
