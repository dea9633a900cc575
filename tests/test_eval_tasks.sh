#!/bin/sh
# The CI slice of the long-context task run (perf/long-tasks has the whole): one 1K-token context of
# every task kind from eval/gen_tasks.py on SmolLM2-135M-Instruct, the full cache, KVzip and SnapKV at
# kept ratio 0.3 in both protocols through kvz eval; every score recomputed by tests/eval_check.py, the
# full cache agreeing with itself and answering some of the queries, the ratios kept. Skips (77)
# without python3 or the model; under CI (where .ci/fetch-models has run) either fails. Under
# KVZ_TEST_QUICK (emulated and sanitized runs) it says so and passes: the native run covers it.
set -u
. "$(dirname "$0")/testlib.sh"
model_tier
KVZ=${KVZ_BIN:-./kvz}
RUNNER=${KVZ_RUNNER:-}
SRC=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${KVZ_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kvz/models}/SmolLM2-135M-Instruct.Q4_1.gguf
command -v python3 > /dev/null 2>&1 || skip "python3 is absent"
[ -r "$MODEL" ] || skip "$MODEL is absent (.ci/fetch-models smollm2 fetches it)"
if [ "${KVZ_TEST_QUICK:-0}" = 1 ]; then
    echo "the long-context slice: not run under KVZ_TEST_QUICK"
    exit 0
fi

kvz_abs=$(cd "$(dirname "$KVZ")" && pwd)/$(basename "$KVZ")
# a seed of its own: the checked-in results (doc/results) use others
python3 "$SRC/eval/gen_tasks.py" --model "$MODEL" --kvz "$kvz_abs" --lengths 1024 --per-length 1 --seed 101 \
    --out "$tmp/tasks.jsonl" 2> /dev/null
check "seven task kinds generated" "$(grep -c . "$tmp/tasks.jsonl")" 7
# f32 K/V, as before --kv-dtype auto became the default: the same run on every CPU
kvz eval --model "$MODEL" --tasks "$tmp/tasks.jsonl" --policy full,kvzip,snapkv --ratio 0.3 --protocol both --kv-dtype f32 \
    --json --generations "$tmp/gen.jsonl" --markdown "$tmp/sum.md" > "$tmp/eval.jsonl"
check "kvz eval exits 0" "$?" 0
check_eval_report "$tmp/tasks.jsonl" "$tmp/gen.jsonl" "$tmp/eval.jsonl"
check "five cells: full, and two policies in two protocols" "$(grep '^cells' "$tmp/py.txt")" "cells 5"
check "the policies keep 30 %" "$(grep -c '^cell [a-z]* [a-z-]* 0.3 kept 0.30 ' "$tmp/py.txt")" 4
# a broken template or prompt would leave the model answering nothing: it finds some needles at 1K
check "the full cache answers some queries" "$(grep '^cell multi full' "$tmp/py.txt" | grep -c 'accuracy 0.00$')" 0
check "a task table per kind in the summary" "$(grep -c '^## [a-z_]*: accuracy relative' "$tmp/sum.md")" 7

finish
