#!/bin/sh
# libkvz-model end to end (include/kvz_model.h, through examples/lm_ask): on SmolLM2-135M-Instruct it must
# compress a document and answer questions exactly as the kvz tool does (kvz compress + kvz ask, the
# runner tested against llama.cpp's vectors), from the cache in memory and from the .kvz file it saved,
# which kvz ask reads too; and refuse what it cannot use. Skips (77) without the model; under CI it fails.
# KVZ_TEST_QUICK (emulated and sanitized runs) tries one kept ratio instead of two.
set -u
. "$(dirname "$0")/testlib.sh"
model_tier
KVZ=${KVZ_BIN:-./kvz}
HOST=${KVZ_LM_ASK:-./examples/lm_ask}
RUNNER=${KVZ_RUNNER:-}
MODEL=${KVZ_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kvz/models}/SmolLM2-135M-Instruct.Q4_1.gguf
[ -r "$MODEL" ] || skip "$MODEL is absent (.ci/fetch-models downloads it)"

cat > "$tmp/doc.txt" <<'DOC'
The harbour town of Selwick has two lighthouses. The north light is painted red and was built in 1871
by the engineer Mara Quill. The south light is white, stands on the rocks called the Teeth, and has been
dark since the storm of 1952. Every August the town holds a regatta in which the winning crew receives a
brass compass.
DOC
Q1="Who built the north light?"
Q2="What does the winning crew receive?"
ratios="0.3 1.0"
[ -n "${KVZ_TEST_QUICK:-}" ] && ratios=0.3 # emulated and sanitized runs: one ratio
for ratio in $ratios; do
    $RUNNER "$KVZ" compress --model "$MODEL" --context "$tmp/doc.txt" --ratio $ratio --out "$tmp/tool.kvz" \
        > /dev/null 2> "$tmp/err" || { cat "$tmp/err"; check "kvz compress --ratio $ratio" fail ok; }
    $RUNNER "$KVZ" ask --model "$MODEL" --cache "$tmp/tool.kvz" --question "$Q1" --question "$Q2" --max-tokens 24 \
        2> "$tmp/err" | grep '^A[0-9]:' > "$tmp/tool.txt"
    $RUNNER "$HOST" "$MODEL" "$tmp/doc.txt" --ratio $ratio --max-tokens 24 --save "$tmp/lm.kvz" "$Q1" "$Q2" \
        > "$tmp/lm.txt" 2> "$tmp/err"
    check "lm_ask --ratio $ratio runs" "$?" 0
    cat "$tmp/err" "$tmp/lm.txt"
    check "... two answers" "$(grep -c '^A[12]: .' "$tmp/lm.txt")" 2
    check "... the same as kvz compress + kvz ask" "$(cat "$tmp/lm.txt")" "$(cat "$tmp/tool.txt")"
    $RUNNER "$HOST" "$MODEL" --load "$tmp/lm.kvz" --max-tokens 24 "$Q1" "$Q2" > "$tmp/loaded.txt" 2> "$tmp/err"
    check "... the same from the .kvz file it saved" "$(cat "$tmp/loaded.txt")" "$(cat "$tmp/lm.txt")"
    $RUNNER "$KVZ" ask --model "$MODEL" --cache "$tmp/lm.kvz" --question "$Q1" --question "$Q2" --max-tokens 24 \
        2> "$tmp/err" | grep '^A[0-9]:' > "$tmp/tool2.txt"
    check "... and kvz ask answers the same from that file" "$(cat "$tmp/tool2.txt")" "$(cat "$tmp/lm.txt")"
done
$RUNNER "$HOST" "$tmp/none.gguf" "$tmp/doc.txt" "$Q1" > /dev/null 2> "$tmp/err"
check "a missing model: exit 1" "$?" 1
check "... with the library's message" "$(grep -c 'none.gguf' "$tmp/err")" 1
$RUNNER "$HOST" "$MODEL" --load "$tmp/doc.txt" "$Q1" > /dev/null 2> "$tmp/err"
check "a file that is not a cache: exit 1" "$?" 1
finish
