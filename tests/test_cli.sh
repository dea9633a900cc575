#!/bin/sh
# End-to-end checks of the kvz tool on the shared stories260K model and task file: the README's
# tokenizer and greedy test vectors through `kvz tokenize` and `kvz generate`, `kvz compress`
# outputs, `kvz eval`, `kvz demo` (its stories260K fallback, and SmolLM2-135M-Instruct when the model
# cache holds it), and clear failures on bad input. Skips (77) when ../shared is absent.
set -u
. "$(dirname "$0")/testlib.sh"
model_tier
# make check runs this from the build directory; the shared files sit beside the source tree
KVZ=${KVZ_BIN:-./kvz}
SHARED=${KVZ_SHARED_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
RUNNER=${KVZ_RUNNER:-} # e.g. qemu-aarch64 for a cross build
MODEL=$SHARED/models/stories260K.gguf
if [ ! -r "$MODEL" ]; then
    echo "$MODEL is absent: skipping (tests read the shared models from ../shared)"
    exit 77
fi

check "tokenize vector" "$(kvz tokenize --model "$MODEL" --json "Tom had a red kite. One day")" \
    '{"ids": [1, 274, 287, 381, 261, 352, 266, 409, 275, 411, 426, 385, 328]}'

# tokenize --count-lines: one JSON string a line in, one count a line out, each the ids of that text
# without BOS (13 ids above with the BOS this model adds); a line that is not a JSON string: exit 2
# and its line number
printf '%s\n' '"Tom had a red kite. One day"' '"Lily\nsaw a dog."' '""' > "$tmp/lines.txt"
n_dog=$(kvz tokenize --model "$MODEL" "Lily
saw a dog." | wc -w)
check "tokenize --count-lines: a count a line, without BOS" \
    "$(kvz tokenize --model "$MODEL" --count-lines < "$tmp/lines.txt" | tr '\n' ' ')" "12 $((n_dog - 1)) 0 "
printf '%s\n' '"Tom"' '42' '"never read"' | kvz tokenize --model "$MODEL" --count-lines > "$tmp/out" 2> "$tmp/err"
check "tokenize --count-lines: a number line exits 2" "$?" 2
check "tokenize --count-lines: the lines before it counted" "$(cat "$tmp/out")" \
    "$(($(kvz tokenize --model "$MODEL" Tom | wc -w) - 1))"
check "tokenize --count-lines: the bad line named" "$(cat "$tmp/err")" \
    "kvz tokenize: line 2 of standard input: not a JSON string literal"
printf '%s\n' '"unterminated' | kvz tokenize --model "$MODEL" --count-lines > /dev/null 2> "$tmp/err"
check "tokenize --count-lines: malformed JSON exits 2" "$?" 2
check "tokenize --count-lines: and says where" "$(grep -c '^kvz tokenize: line 1 of standard input: .*unterminated string$' "$tmp/err")" 1
kvz tokenize --model "$MODEL" --count-lines "Tom" > /dev/null 2>&1
check "tokenize --count-lines with a TEXT exits 2" "$?" 2

# the reference vectors come from f32 K/V: --kv-dtype f32, whatever the CPU's default
got=$(kvz generate --model "$MODEL" --prompt-ids 1 --max-tokens 24 --kv-dtype f32 --json | sed 's/\], "text".*/]/')
check "greedy ids from BOS" "$got" \
    '{"ids": [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292]'

got=$(kvz generate --model "$MODEL" --prompt-ids 1 --max-tokens 80 --kv-dtype f32 --json | sed 's/.*"text": //')
check "greedy text, 80 steps" "$got" \
    '"Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily'"'"'s mom said, \"Lily, let'"'"'s go to"}'

got=$(kvz generate --model "$MODEL" --prompt "Tom had a red kite. One day" --max-tokens 10 --kv-dtype f32 --json | sed 's/\], "text".*/]/')
check "greedy continuation of a text prompt" "$got" '{"ids": [432, 281, 272, 277, 264, 261, 370, 432, 352, 266]'

# compress: a context from the task file, the pieces from its recon file
sed -n 1p "$SHARED/eval/stories-public.jsonl" | sed 's/.*"context_ids": \[\([^]]*\)\].*/\1/' > "$tmp/ctx.txt"
n_ctx=$(tr ',' '\n' < "$tmp/ctx.txt" | grep -c .)
if kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --recon "$SHARED/eval/stories-recon.json" \
    --ratio 0.3 --chunk 128 --out "$tmp/c.kvz" --dump-scores "$tmp/s.npy" --save-head-scores "$tmp/h.npy" \
    --json > "$tmp/compress.json"; then
    check "compress wrote the cache" "$(test -s "$tmp/c.kvz" && echo yes)" yes
    check "scores shape" "$(head -c 128 "$tmp/s.npy" | tr -d '\0' | grep -ao "'shape': ([0-9, ]*)")" \
        "'shape': (5, 4, $n_ctx)"
    check "head scores shape" "$(head -c 128 "$tmp/h.npy" | grep -ao "'shape': ([0-9, ]*)")" "'shape': (5, 4)"
    check "passes of 128 tokens" "$(sed 's/.*"passes": \([0-9]*\).*/\1/' "$tmp/compress.json")" \
        "$(( (n_ctx + 127) / 128 ))"
    # the layers' kept shares (from the cache's segment lengths) average to the policy's kept ratio
    check "kept per layer: one per layer, their mean the kept ratio" \
        "$(sed 's/.*"kept_per_layer": \[\([^]]*\)\].*/\1/' "$tmp/compress.json" | tr ',' '\n' |
            awk '{s += $1; n++} END {printf "%d %.4f", n, s / n}')" \
        "5 $(sed 's/.*"kept_context_ratio": \([0-9.]*\).*/\1/' "$tmp/compress.json" | awk '{printf "%.4f", $1}')"
    kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --recon "$SHARED/eval/stories-recon.json" \
        --policy kvzip-head --head-scores "$tmp/h.npy" --ratio 0.5 --out "$tmp/h.kvz" > /dev/null
    check "kvzip-head from saved head scores" "$?" 0
else
    check "compress runs" "failed" "ok"
fi

# info --cache: what the cache compress wrote holds, checked against compress's own report (its
# kept share of each layer's context) and the file itself
if [ -s "$tmp/c.kvz" ] && command -v python3 > /dev/null 2>&1; then
    kvz info --cache "$tmp/c.kvz" --json > "$tmp/info.json"
    check "info --cache --json exits 0" "$?" 0
    cat > "$tmp/info_check.py" << 'PY'
import json, os, sys
info, comp = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
n_ctx = int(sys.argv[4])
L, H, n_sys = info["layers"], info["kv_heads"], comp["system_tokens"]
bad = []
def want(what, ok):
    if not ok:
        bad.append(what)
want("shape", (L, H, info["head_dim"]) == (5, 4, 8))
want("policy and ratio", (info["policy"], info["ratio"]) == ("kvzip-pair", 0.3))
want("format version", info["format_version"] == 2)
want("storage as compress chose it", info["dtype"] == comp["kv_dtype"])
want("fingerprint", len(info["model_fingerprint"]) == 64 and info["model_fingerprint"].strip("0"))
want("file bytes", info["file_bytes"] == os.path.getsize(sys.argv[3]))
want("an array of H rows per layer", [len(r) for r in info["rows_per_head"]] == [H] * L)
want("layers sum their heads", [sum(r) for r in info["rows_per_head"]] == info["rows_per_layer"])
want("rows sum to the stats", sum(info["rows_per_layer"]) == info["rows"])
want("full rows", info["full_rows"] == L * H * (n_sys + n_ctx))
want("next positions", info["next_positions"] == [n_sys + n_ctx] * L)
want("windows", info["windows"] == [0] * L)
# compress's kept share of each layer's context, from its segment lengths: context rows / (H x n_ctx)
want("rows per layer as compress kept them",
     [round(k * H * n_ctx) for k in comp["kept_per_layer"]] == [r - H * n_sys for r in info["rows_per_layer"]])
row_bytes = 2 * info["head_dim"] * {"f32": 4, "bf16": 2, "f16": 2}[info["dtype"]] + 8  # K, V, position
want("kv bytes", info["kv_bytes"] == info["rows"] * row_bytes)
print("ok" if not bad else "wrong: " + ", ".join(bad))
PY
    check "info --cache --json: against compress --json and the file" \
        "$(python3 "$tmp/info_check.py" "$tmp/info.json" "$tmp/compress.json" "$tmp/c.kvz" "$n_ctx")" ok
    kvz info --cache "$tmp/c.kvz" > "$tmp/info.txt"
    check "info --cache: the policy" "$(grep '^policy:' "$tmp/info.txt")" \
        "policy:        kvzip-pair, requested kept ratio 0.3"
    # the table: layer, window, next position, rows, then each head's rows
    check "info --cache: a table line per layer, each head's rows as in JSON" \
        "$(awk '/^layer/ {t = 1; next} t {s = ""; for (i = 5; i <= NF; i++) s = s (i > 5 ? "," : "") $i; printf "%s;", s}' "$tmp/info.txt")" \
        "$(python3 -c 'import json, sys; print("".join(",".join(map(str, r)) + ";" for r in json.load(open(sys.argv[1]))["rows_per_head"]))' "$tmp/info.json")"
    head -c 3000 "$tmp/c.kvz" > "$tmp/cut.kvz"
    kvz info --cache "$tmp/cut.kvz" > "$tmp/out" 2> "$tmp/err"
    check "info --cache: a truncated file exits 1" "$?" 1
    check "info --cache: one line saying so" \
        "$(wc -l < "$tmp/err" | tr -d ' ') $(grep -c '^kvz: cannot read .*cut.kvz: .*truncated' "$tmp/err")" "1 1"
    check "info --cache: nothing on stdout then" "$(wc -c < "$tmp/out" | tr -d ' ')" 0
    kvz info --cache "$tmp/ctx.txt" > /dev/null 2> "$tmp/err"
    check "info --cache: a text file exits 1" "$?" 1
    check "info --cache: one line saying it is no cache" \
        "$(wc -l < "$tmp/err" | tr -d ' ') $(grep -c '^kvz: cannot read .*ctx.txt: ' "$tmp/err")" "1 1"
    kvz info --cache "$tmp/c.kvz" --model "$MODEL" > /dev/null 2>&1
    check "info --cache with --model exits 2" "$?" 2
fi

# compress --policy h2o: the prefill's accumulated attention, no reconstruction pass
if kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --policy h2o --ratio 0.3 --out "$tmp/h2o.kvz" \
    --dump-scores "$tmp/h2o.npy" --json > "$tmp/h2o.json"; then
    check "compress --policy h2o wrote the cache" "$(test -s "$tmp/h2o.kvz" && echo yes)" yes
    check "h2o: no reconstruction pass" "$(sed 's/.*"passes": \([0-9]*\).*/\1/' "$tmp/h2o.json")" 0
    check "h2o scores shape" "$(head -c 128 "$tmp/h2o.npy" | tr -d '\0' | grep -ao "'shape': ([0-9, ]*)")" \
        "'shape': (5, 4, $n_ctx)"
else
    check "compress --policy h2o runs" "failed" "ok"
fi

# compress --policy fastkv --tsp-rate: FastKV's own prefill; spec/fastkv.md's T = floor(n tsp_rate) tokens go
# past the middle layer (3 of stories260K's 5 run on all of them), every layer before keeps floor(n ratio) rows
if kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --policy fastkv --tsp-rate 0.5 --ratio 0.25 \
    --out "$tmp/fkv.kvz" --json > "$tmp/fkv.json"; then
    check "fastkv --tsp-rate: the propagated tokens and the first layer's rows" \
        "$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); n = d["system_tokens"] + d["context_tokens"]
print(d["full_layers"], d["tsp_tokens"] == n // 2, round(d["kept_per_layer"][0] * n) == n // 4)' "$tmp/fkv.json")" \
        "2 True True"
    kvz info --cache "$tmp/fkv.kvz" --json > "$tmp/fkv-info.json"
    check "fastkv --tsp-rate: the file's policy" "$(grep -o '"policy":"[a-z-]*"' "$tmp/fkv-info.json")" \
        '"policy":"fastkv"'
else
    check "compress --policy fastkv --tsp-rate runs" "failed" "ok"
fi
kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --tsp-rate 0.5 --out "$tmp/x.kvz" 2> "$tmp/err"
check "--tsp-rate without --policy fastkv exits 2" "$?" 2

# ask: a cache saved at ratio 1 (f32) answers the task file's first query as the reference did
q=$(sed -n 1p "$SHARED/eval/stories-public.jsonl" | grep -o '"queries": \[{"prompt_ids": \[[^]]*\], "answer_ids": \[[^]]*\]')
prompt=$(echo "$q" | sed 's/.*"prompt_ids": \[\([^]]*\)\].*/\1/' | tr -d ' ')
answer=$(echo "$q" | sed 's/.*"answer_ids": \[\([^]]*\)\].*/\1/')
n_answer=$(echo "$answer" | tr ',' '\n' | grep -c .)
if kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --recon "$SHARED/eval/stories-recon.json" \
    --ratio 1 --kv-dtype f32 --out "$tmp/full.kvz" > /dev/null; then
    got=$(kvz ask --model "$MODEL" --cache "$tmp/full.kvz" --question-ids "$prompt" --max-tokens "$n_answer" \
        --no-stop --json | sed 's/.*"ids": \[\([^]]*\)\].*/\1/')
    check "ask: full cache answers like the reference" "$got" "$answer"
    # the f32 cache: over a bf16 one the avx512bf16 level rounds the probabilities relative to
    # running maxima that depend on how the keys fall into blocks, which differs between a
    # question's private tail (ask) and a turn appended to the cache (--multi-turn)
    kvz ask --model "$MODEL" --cache "$tmp/full.kvz" --question "Who is Lily?" --question "Where did Tom go?" \
        --recon "$SHARED/eval/stories-recon.json" --json > "$tmp/ask.json"
    check "ask: two questions, two answers" "$(grep -c '"text"' "$tmp/ask.json")" 2
    kvz ask --model "$MODEL" --cache "$tmp/full.kvz" --question "Who is Lily?" --question "Where did Tom go?" \
        --recon "$SHARED/eval/stories-recon.json" --json --multi-turn > "$tmp/turns.json"
    check "ask --multi-turn: the first turn is the same answer" "$(head -1 "$tmp/turns.json")" "$(head -1 "$tmp/ask.json")"
    check "ask --multi-turn: two answers" "$(grep -c '"text"' "$tmp/turns.json")" 2
    head -c 3000 "$tmp/c.kvz" > "$tmp/cut.kvz"
    kvz ask --model "$MODEL" --cache "$tmp/cut.kvz" --question x 2> "$tmp/err" > /dev/null
    check "ask: a truncated cache file exits 1" "$?" 1
    check "ask: and says so" "$(grep -c 'truncated' "$tmp/err")" 1
else
    check "compress at ratio 1" failed ok
fi

# eval: the full cache answers every query as the reference did
got=$(kvz eval --model "$MODEL" --tasks "$SHARED/eval/stories-public.jsonl" --recon "$SHARED/eval/stories-recon.json" \
    --policy full --limit 2 --kv-dtype f32 --json | sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
check "eval: full cache accuracy" "$got" "1.000000"

# demo: without its model it says so and runs the stories260K demo, whose options still work
# (the stories demo reads ../shared: it runs from a directory that has the shared files there)
mkdir "$tmp/root" && ln -s "$SHARED" "$tmp/shared"
kvz_abs=$(cd "$(dirname "$KVZ")" && pwd)/$(basename "$KVZ")
in_root() { (cd "$tmp/root" && $RUNNER "$kvz_abs" "$@"); }
in_root demo --model "$tmp/missing.gguf" --limit 1 --policy full,kvzip-pair --ratio 0.3 > "$tmp/demo.txt" 2>&1
check "demo without its model exits 0" "$?" 0
check "demo without its model says it falls back" "$(grep -c 'missing.gguf is absent.*stories260K demo instead' "$tmp/demo.txt")" 1
check "demo fallback: two policies" "$(grep -c '^kvzip-pair \|^full ' "$tmp/demo.txt")" 2
check "demo fallback: how many answers" "$(grep -c '^ *answers  *of the 8 answers, how many equal the full cache' "$tmp/demo.txt")" 1
check "demo fallback: a verdict in words" "$(grep -c '^At 30 % of the cache, kvzip-pair keeps [0-9]* of 8 answers.$' "$tmp/demo.txt")" 1
got=$(in_root demo --stories --limit 1 --policy full --kv-dtype f32 --json | sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
check "demo --stories: full cache accuracy" "$got" "1.000000"
# demo on SmolLM2-135M-Instruct, where .ci/fetch-models puts it; CI must have it. A few minutes
# under an emulator or the sanitizers (KVZ_TEST_QUICK): the native run covers it.
SMOLLM2=${KVZ_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kvz/models}/SmolLM2-135M-Instruct.Q4_1.gguf
if [ "${KVZ_TEST_QUICK:-0}" = 1 ]; then
    echo "demo on SmolLM2: not run under KVZ_TEST_QUICK"
elif [ -r "$SMOLLM2" ]; then
    kvz demo --model "$SMOLLM2" --json > "$tmp/demo.json"
    check "demo on SmolLM2 exits 0" "$?" 0
    check "demo on SmolLM2: 8 questions" "$(grep -o '"questions": [0-9]*' "$tmp/demo.json")" '"questions": 8'
    full=$(sed -n 's/.*"kv_bytes_full": \([0-9]*\).*/\1/p' "$tmp/demo.json")
    kvzip=$(sed -n 's/.*"kv_bytes_kvzip": \([0-9]*\).*/\1/p' "$tmp/demo.json")
    check "demo on SmolLM2: KVzip holds fewer KV bytes" "$([ "${kvzip:-0}" -gt 0 ] && [ "$kvzip" -lt "${full:-0}" ] && echo yes)" yes
elif in_ci; then
    check "demo on SmolLM2: $SMOLLM2 is there under CI (.ci/fetch-models smollm2)" absent present
else
    echo "skip: demo on SmolLM2: $SMOLLM2 is absent (.ci/fetch-models smollm2 fetches it)"
fi
# bench payoff --model on Gemma 3 270M, whose 15 local layers of 18 attend to a window of 512
# tokens (layers 5, 11 and 17 are global; one KV head of 256 a layer): at 1024 tokens the cache
# holds all 1024 rows of a global layer and the last 512 of a local one, and a decode step reads
# the global rows and the 511 before the new token of a local layer; a row is K and V of 256 bf16
# each and its int64 position. FastKV (tsp_rate 0.2, retain_rate 0.1) selects at the global layer
# nearest the middle, layer 5: the five local layers before it hold their windows, the global layer
# 5 keeps floor(1024 x 0.1) = 102 rows, T = floor(1024 x 0.2) = 204 tokens go on, the ten local
# layers after it hold all 204 (fewer than the window) and the global layers 11 and 17 keep
# floor(204 x 0.1 / 0.2) = 102; a step reads 511 rows of the first five, the rest whole.
GEMMA3=$(dirname "$SMOLLM2")/gemma-3-270m-q4_k_m.gguf
if [ "${KVZ_TEST_QUICK:-0}" = 1 ]; then
    echo "bench payoff on Gemma 3: not run under KVZ_TEST_QUICK"
elif [ -r "$GEMMA3" ]; then
    kvz bench payoff --model "$GEMMA3" --lengths 1024 --reps 1 --json > "$tmp/gemma.json"
    check "bench payoff on Gemma 3 exits 0" "$?" 0
    check "bench payoff on Gemma 3: the full cache holds the global rows and the local windows" \
        "$(grep '"cache": "full"' "$tmp/gemma.json" | grep -c "\"kv_bytes\": $(((3 * 1024 + 15 * 512) * 1032)),")" 1
    check "bench payoff on Gemma 3: a step reads the global rows and the local windows" \
        "$(grep '"cache": "full"' "$tmp/gemma.json" | grep -c "\"kv_read_bytes\": $(((3 * 1024 + 15 * 511) * 1032)),")" 1
    check "bench payoff on Gemma 3: the four caches" \
        "$(sed 's/.*"cache": "\([^"]*\)".*/\1/' "$tmp/gemma.json" | tr '\n' ' ')" "full kvzip-0.3 kvzip-0.5 fastkv "
    check "bench payoff on Gemma 3: FastKV's cache, windows and budgets" \
        "$(grep '"cache": "fastkv"' "$tmp/gemma.json" | grep -c "\"kv_bytes\": $(((5 * 512 + 3 * 102 + 10 * 204) * 1032)),")" 1
    check "bench payoff on Gemma 3: what a step over FastKV's cache reads" \
        "$(grep '"cache": "fastkv"' "$tmp/gemma.json" | grep -c "\"kv_read_bytes\": $(((5 * 511 + 3 * 102 + 10 * 204) * 1032)),")" 1
elif in_ci; then
    check "bench payoff on Gemma 3: $GEMMA3 is there under CI (.ci/fetch-models gemma3)" absent present
else
    echo "skip: bench payoff on Gemma 3: $GEMMA3 is absent (.ci/fetch-models gemma3 fetches it)"
fi
# --count-lines on a model that adds no BOS (byte-level BPE): the count is the number of ids
if [ -r "$SMOLLM2" ]; then
    check "tokenize --count-lines on SmolLM2: as many as the ids" \
        "$(printf '%s\n' '"Tom had a red kite.\nOne day"' | kvz tokenize --model "$SMOLLM2" --count-lines)" \
        "$(kvz tokenize --model "$SMOLLM2" "Tom had a red kite.
One day" | wc -w | tr -d ' ')"
fi

# failures: a message on stderr, exit 1 for bad input and 2 for bad usage, nothing written
kvz generate --model "$tmp/missing.gguf" --prompt-ids 1 --max-tokens 1 2> "$tmp/err" > /dev/null
check "missing model exits 1" "$?" 1
check "missing model message" "$(grep -c 'kvz: cannot load model' "$tmp/err")" 1
head -c 5000 "$MODEL" > "$tmp/trunc.gguf"
kvz compress --model "$tmp/trunc.gguf" --context-ids "$tmp/ctx.txt" --out "$tmp/t.kvz" 2> /dev/null > /dev/null
check "truncated model exits 1" "$?" 1
check "no cache file after a failure" "$(test -e "$tmp/t.kvz" && echo left || echo none)" none
kvz generate --model "$MODEL" --prompt-ids 1,99999 --max-tokens 1 2> /dev/null > /dev/null
check "out-of-vocabulary prompt exits 1" "$?" 1
kvz generate --model "$MODEL" --max-tokens 1 2> /dev/null
check "missing prompt exits 2" "$?" 2
kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --out "$tmp/x.kvz" --ratio -1 2> /dev/null
check "negative ratio exits 2" "$?" 2

# every command's --help: its usage on stdout, exit 0
for c in demo "demo --stories" generate compress ask eval tokenize info bench "bench model" "bench payoff"; do
    # shellcheck disable=SC2086
    kvz $c --help > "$tmp/help" 2> /dev/null
    check "kvz $c --help exits 0" "$?" 0
    check "kvz $c --help prints its usage on stdout" "$(grep -c '^usage: kvz' "$tmp/help")" 1
done

# option values are checked before any work, each with a message that says what is expected
kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --out "$tmp/x.kvz" --ratio 30 2> "$tmp/err"
check "--ratio 30 (a percentage) exits 2" "$?" 2
check "--ratio 30: the message gives the scale" "$(cat "$tmp/err")" "kvz: --ratio must be in (0, 1], e.g. 0.3 for 30 %, not '30'"
kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --out "$tmp/x.kvz" --ratio 0 2> /dev/null
check "--ratio 0 exits 2" "$?" 2
kvz eval --model "$MODEL" --tasks "$SHARED/eval/stories-public.jsonl" --ratio 0.3,30 2> "$tmp/err"
check "eval: a ratio of a list out of range exits 2" "$?" 2
check "eval: and says which" "$(grep -c "not '30'" "$tmp/err")" 1
kvz demo --ratio 1.5 2> "$tmp/err" > /dev/null
check "demo --ratio 1.5 exits 2" "$?" 2
check "demo --ratio 1.5: the message" "$(grep -c 'must be in (0, 1]' "$tmp/err")" 1
kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --out "$tmp/x.kvz" --chunk 0 2> "$tmp/err"
check "--chunk 0 exits 2" "$?" 2
check "--chunk 0: the message" "$(cat "$tmp/err")" "kvz: --chunk must be at least 1"
kvz ask --model "$MODEL" --cache "$tmp/x.kvz" --question x --max-tokens 0 2> /dev/null
check "ask --max-tokens 0 exits 2" "$?" 2
kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --out "$tmp/x.kvz" --ratios 0.3 2> "$tmp/err"
check "an unknown option exits 2" "$?" 2
check "an unknown option is named" "$(cat "$tmp/err")" \
    "kvz compress: unknown option '--ratios' (kvz compress --help lists the options)"
kvz bench kernels --reps x 2> "$tmp/err"
check "bench --reps x exits 2" "$?" 2
check "bench --reps x: the message" "$(head -1 "$tmp/err")" \
    "kvz bench kernels: --reps must be a whole number from 1 to 1000000, not 'x'"
kvz bench payoff --lengths 4096,x 2> "$tmp/err"
check "bench payoff --lengths 4096,x exits 2" "$?" 2
check "bench payoff --lengths: the message" "$(head -1 "$tmp/err")" \
    "kvz bench payoff: --lengths must be up to 16 whole numbers from 16 to 1048576, separated by commas, not '4096,x'"
check "no cache file after refused options" "$(test -e "$tmp/x.kvz" && echo left || echo none)" none

# bench payoff --model: a GGUF model's own shapes. The weights a step reads, from the shapes the
# shared README publishes (5 layers of q 64x64, k and v 64x32, o 64x64, gate, up and down 64x172,
# the head 64x512, all f32): (5 x 45312 + 32768) x 4 bytes
kvz bench payoff --model "$MODEL" --lengths 128 --reps 1 --json > "$tmp/payoff.json"
check "bench payoff --model exits 0" "$?" 0
check "bench payoff --model: the four caches, named after the file" \
    "$(sed 's/.*"name": "\([^"]*\)".*/\1/' "$tmp/payoff.json" | tr '\n' ' ')" \
    "stories260K/full/128 stories260K/kvzip-0.3/128 stories260K/kvzip-0.5/128 stories260K/fastkv/128 "
check "bench payoff --model: the weights a step reads" "$(grep -c '"weight_bytes": 1037312,' "$tmp/payoff.json")" 4
# the full cache, every row read: 5 layers x 4 KV heads x 128 tokens, a row K and V of 8 bf16 each
# and its int64 position (kvz_cache_positions)
check "bench payoff --model: the full cache's bytes, all of them read" \
    "$(grep '"cache": "full"' "$tmp/payoff.json" | grep -c '"kv_bytes": 102400, .*"kv_read_bytes": 102400,')" 1
check "bench payoff --model: no 32-layer projection" "$(grep -c model32 "$tmp/payoff.json")" 0
kvz bench payoff --model "$MODEL" --layers 4 2> "$tmp/err"
check "bench payoff --model with --layers exits 2" "$?" 2
check "bench payoff --model with --layers: the message" "$(cat "$tmp/err")" \
    "kvz bench payoff: --layers is the synthetic model's; a --model file has its own"
kvz bench payoff --model "$MODEL" --lengths 4096 --reps 1 > /dev/null 2> "$tmp/err"
check "bench payoff --model past its context exits 1" "$?" 1
check "bench payoff --model past its context: the message" \
    "$(grep -c "a context of 4096 tokens is past the model's 2048" "$tmp/err")" 1
kvz bench payoff --model "$tmp/missing.gguf" --lengths 64 > /dev/null 2> "$tmp/err"
check "bench payoff --model without the file exits 1" "$?" 1

# --context FILE reads a text file, --context-text TEXT takes the text itself: the same context
story="Lily went to the park. She saw a big dog and they played all day."
printf '%s' "$story" > "$tmp/story.txt"
kvz compress --model "$MODEL" --context "$tmp/story.txt" --recon "$SHARED/eval/stories-recon.json" \
    --out "$tmp/s1.kvz" --json | sed 's/"prefill_s.*//' > "$tmp/s1.json"
kvz compress --model "$MODEL" --context-text "$story" --recon "$SHARED/eval/stories-recon.json" \
    --out "$tmp/s2.kvz" --json | sed 's/"prefill_s.*//' > "$tmp/s2.json"
check "--context FILE and --context-text TEXT: the same context" "$(cat "$tmp/s2.json")" "$(cat "$tmp/s1.json")"
check "--context-text: a context of tokens" "$(grep -c '"context_tokens": [1-9]' "$tmp/s2.json")" 1
kvz compress --model "$MODEL" --context "$story" --out "$tmp/s3.kvz" 2> "$tmp/err" > /dev/null
check "--context with text instead of a file exits 1" "$?" 1
check "--context with text: cannot open it" "$(grep -c 'cannot open' "$tmp/err")" 1
kvz compress --model "$MODEL" --context "$tmp/story.txt" --context-text "$story" --out "$tmp/s3.kvz" 2> "$tmp/err"
check "two contexts exit 2" "$?" 2
check "two contexts: the message" "$(head -1 "$tmp/err")" \
    "kvz compress: needs --model, --out and one of --context, --context-text and --context-ids"

# the output says what its figures are; the full policy takes no ratio and says so
kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --recon "$SHARED/eval/stories-recon.json" \
    --out "$tmp/k.kvz" > "$tmp/out" 2> /dev/null
check "compress: the times are after a warm-up" "$(grep -c '^time: .* after an untimed warm-up prefill$' "$tmp/out")" 1
check "compress: the cost in plain prefills" "$(grep -c 'in all [0-9.]*x a plain prefill (the passes [0-9.]*x)$' "$tmp/out")" 1
check "compress: the system prompt in words" "$(grep -c '^context:  [0-9]* tokens, after a system prompt of 1 (always kept)$' "$tmp/out")" 1
# --kv-dtype auto, the default: the cache is stored as the model's weights are held (stories260K's
# stay f32 on every CPU: its file holds f32 tensors)
weights=$(kvz info --model "$MODEL" --json | sed 's/.*"weights":"\([a-z0-9]*\)".*/\1/')
check "compress: the storage is the weights' type (--kv-dtype auto)" \
    "$(grep -c "^cache:    [0-9]* bytes, $weights keys and values$" "$tmp/out")" 1
kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --kv-dtype f16 --out "$tmp/f16.kvz" > /dev/null &&
    check "compress --kv-dtype f16: an f16 cache" "$(kvz info --cache "$tmp/f16.kvz" | grep '^storage:')" \
        "storage:       f16 keys and values"
kvz compress --model "$MODEL" --context-ids "$tmp/ctx.txt" --recon "$SHARED/eval/stories-recon.json" \
    --policy full --ratio 0.3 --out "$tmp/f.kvz" > "$tmp/out" 2> "$tmp/err"
check "compress --policy full --ratio: the ratio is ignored, and said to be" "$(cat "$tmp/err")" \
    "kvz compress: --ratio is ignored by policy full, which keeps every pair"
check "compress --policy full: no ratio in the output" "$(grep -c 'ratio' "$tmp/out")" 0
kvz ask --model "$MODEL" --cache "$tmp/f.kvz" --question "Who is Lily?" --recon "$SHARED/eval/stories-recon.json" \
    --max-tokens 4 > "$tmp/out" 2> "$tmp/err"
check "ask on a full cache: no ratio" "$(head -1 "$tmp/out")" "cache $tmp/f.kvz: policy full (every key/value pair kept)"
check "ask on stories260K: a note that its answers need not relate" "$(grep -c 'need not relate' "$tmp/err")" 1
kvz ask --model "$MODEL" --cache "$tmp/k.kvz" --question "Who is Lily?" --recon "$SHARED/eval/stories-recon.json" \
    --max-tokens 4 2> /dev/null | head -1 > "$tmp/out"
check "ask on a compressed cache: its kept ratio" "$(cat "$tmp/out")" "cache $tmp/k.kvz: policy kvzip-pair, kept ratio 0.3"

# --verbose: the storage and the speeds on stderr, the output unchanged
kvz generate --model "$MODEL" --prompt-ids 1 --max-tokens 8 --verbose > "$tmp/out" 2> "$tmp/err"
check "generate --verbose: the same text" "$(cat "$tmp/out")" "$(kvz generate --model "$MODEL" --prompt-ids 1 --max-tokens 8)"
check "generate --verbose: the weights and the KV storage" "$(head -1 "$tmp/err" | sed 's/, [0-9]* threads$//')" \
    "kvz generate: weights $weights, KV cache $weights"
check "generate --verbose: prefill and decode tokens/s" \
    "$(grep -c '^kvz generate: prefill 1 token in [0-9.]* s ([0-9.]* tokens/s), decode 7 tokens in [0-9.]* s ([0-9.]* tokens/s)$' "$tmp/err")" 1
kvz ask --model "$MODEL" --cache "$tmp/k.kvz" --question "Who is Lily?" --question "Where?" \
    --recon "$SHARED/eval/stories-recon.json" --max-tokens 4 --no-stop --verbose > /dev/null 2> "$tmp/err"
check "ask --verbose: the cache's storage" "$(grep -c '^kvz ask: weights [a-z0-9]*, KV cache [a-z0-9]* (as saved), [0-9]* threads$' "$tmp/err")" 1
check "ask --verbose: each question's speeds" \
    "$(grep -c '^kvz ask: question [12]: prefill [0-9]* tokens in [0-9.]* s ([0-9.]* tokens/s), decode 3 tokens in [0-9.]* s ([0-9.]* tokens/s)$' "$tmp/err")" 2
# on a model whose products run in bf16 (SmolLM2's quantized tensors, used as stored, on AVX512_BF16 CPUs),
# auto is bf16; its matrices take the file's bytes, under a fifth of f32 copies' (Q4_1: 20 bytes for 32 values against 128)
if [ -r "$SMOLLM2" ]; then
    info=$(kvz info --model "$SMOLLM2" --json)
    w=$(printf '%s' "$info" | sed 's/.*"weights":"\([a-z0-9]*\)".*/\1/')
    check "generate on SmolLM2: the KV storage is the prefill products' type ($w)" \
        "$(kvz generate --model "$SMOLLM2" --prompt-ids 1 --max-tokens 1 --verbose 2>&1 > /dev/null | head -1 | sed 's/, [0-9]* threads$//')" \
        "kvz generate: weights as stored ($w prefill), KV cache $w"
    check "info on SmolLM2: its quantized matrices used as stored" \
        "$(printf '%s' "$info" | grep -c '"weights_as_stored":true')" 1
    stored=$(printf '%s' "$info" | sed 's/.*"weight_bytes":\([0-9]*\).*/\1/')
    copies=$(kvz info --model "$SMOLLM2" --weights f32 --json | sed 's/.*"weight_bytes":\([0-9]*\).*/\1/')
    check "info on SmolLM2: as stored, under a fifth of the f32 copies' bytes ($stored of $copies)" \
        "$((stored * 5 < copies))" 1
fi

# --threads N on any command, before or after it; the same answers with 1 and 3 threads
check "info --threads 3" "$(kvz info --threads 3 | grep '^threads:')" "threads:       3"
check "--threads=1 before the command" "$(kvz --threads=1 info | grep '^threads:')" "threads:       1"
kvz info --threads 0 > /dev/null 2> "$tmp/err"
check "--threads 0 exits 2" "$?" 2
check "--threads 0 message" "$(cat "$tmp/err")" "kvz: --threads takes a whole number of threads from 1 to 1024 (got '0')"
kvz info --threads > /dev/null 2>&1
check "--threads without a value exits 2" "$?" 2
check "greedy text, 1 thread against 3" "$(kvz generate --threads 1 --model "$MODEL" --prompt-ids 1 --max-tokens 24)" \
    "$(kvz generate --threads 3 --model "$MODEL" --prompt-ids 1 --max-tokens 24)"

finish
