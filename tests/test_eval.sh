#!/bin/sh
# kvz eval on text tasks, on the shared stories260K model: every answer's RULER score recomputed
# here in Python from the generations, the summaries recomputed from those scores, the full cache
# agreeing with itself, both protocols and every policy running, the reports written, and clear
# failures on bad task files and options. Skips (77) when ../shared is absent.
set -u
. "$(dirname "$0")/testlib.sh"
model_tier
KVZ=${KVZ_BIN:-./kvz}
SHARED=${KVZ_SHARED_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
SRC=$(cd "$(dirname "$0")/.." && pwd)
RUNNER=${KVZ_RUNNER:-}
MODEL=$SHARED/models/stories260K.gguf
RECON=$SHARED/eval/stories-recon.json
if [ ! -r "$MODEL" ]; then
    echo "$MODEL is absent: skipping (tests read the shared models from ../shared)"
    exit 77
fi
command -v python3 > /dev/null || { echo "python3 is absent: skipping"; exit 77; }

# Two short stories with questions whose answers the model may or may not find: the test checks the
# scoring, not the model.
python3 - "$tmp/tasks.jsonl" << 'EOF'
import json, sys
stories = [
    ("Once upon a time, there was a little girl named Lily. She had a red ball and a big dog named Max. "
     "Every day Lily and Max went to the park. One day, Lily saw a bird in a tree. The bird was blue and "
     "it sang a happy song. Lily wanted to sing too. Max barked and the bird flew away. Lily was sad, but "
     "her mom gave her a cookie and she smiled again.",
     [("What was the name of the dog?", ["Max"], "any", "The dog was named"),
      ("What did Lily have?", ["red ball", "big dog"], "all", None),
      ("What color was the bird?", ["blue"], "any", None)]),
    ("Tom had a little boat. He liked to play with it in the bath. One day, Tom took his boat to the "
     "lake. The sun was hot and the water was cool. A duck came to look at the boat. Tom gave the duck "
     "some bread. The duck was happy and swam with the boat all day. When it was time to go home, Tom "
     "waved goodbye to the duck.",
     [("Where did Tom take his boat?", ["lake"], "any", "Tom took his boat to the"),
      ("What did Tom give the duck?", ["bread"], "any", None)]),
]
with open(sys.argv[1], "w") as f:
    for i, (ctx, qs) in enumerate(stories):
        queries = []
        for q, answers, match, prefix in qs:
            d = {"question": q, "answers": answers, "match": match}
            if prefix:
                d["answer_prefix"] = prefix
            queries.append(d)
        f.write(json.dumps({"id": "story/%d" % i, "task": "story", "length": 128, "max_tokens": 12,
                            "context": ctx, "queries": queries}) + "\n")
EOF

kvz compress --model "$MODEL" --context-text "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["context"])' "$tmp/tasks.jsonl")" \
    --recon "$RECON" --chunk 64 --out "$tmp/c.kvz" --save-head-scores "$tmp/h.npy" > /dev/null
check "head scores for kvzip-head" "$?" 0

kvz eval --model "$MODEL" --tasks "$tmp/tasks.jsonl" --recon "$RECON" --chunk 64 --policy ${POLICIES:-all} --ratio 0.5,0.3 \
    --kv-dtype f32 --protocol both --head-scores "$tmp/h.npy" --json --generations "$tmp/gen.jsonl" --markdown "$tmp/sum.md" \
    > "$tmp/eval.jsonl" 2> "$tmp/err"
check "eval of every policy in both protocols" "$?" 0
cat "$tmp/err"

# The independent check: RULER's string_match / string_match_all on each generation, then every
# summary line's accuracy and agreement from those scores (tests/eval_check.py).
check_eval_report "$tmp/tasks.jsonl" "$tmp/gen.jsonl" "$tmp/eval.jsonl"
# 11 policies in the multi-query protocol, the 10 compressing ones in the query-aware one
check "every policy in both protocols" "$(grep '^cells' "$tmp/py.txt")" "cells 21"
check "kvzip keeps its ratio" "$(grep '^cell multi kvzip-pair ' "$tmp/py.txt" | cut -d' ' -f4-6 | tr '\n' ' ')" \
    "0.5 kept 0.50 0.3 kept 0.30 "
check "the summary names the full cache's accuracy" "$(grep -c "^## The full cache's accuracy" "$tmp/sum.md")" 1

# ids and text lines do not mix; bad fields are named with their line
head -n 1 "$tmp/tasks.jsonl" > "$tmp/mixed.jsonl"
sed -n 1p "$SHARED/eval/stories-public.jsonl" >> "$tmp/mixed.jsonl"
kvz eval --model "$MODEL" --tasks "$tmp/mixed.jsonl" --recon "$RECON" 2> "$tmp/err" > /dev/null
check "mixed ids and text lines exit 1" "$?" 1
check "and name line 2" "$(grep -c 'mixed.jsonl:2: gives ids' "$tmp/err")" 1
sed 's/"match": "all"/"match": "most"/' "$tmp/tasks.jsonl" > "$tmp/match.jsonl"
kvz eval --model "$MODEL" --tasks "$tmp/match.jsonl" --recon "$RECON" 2> "$tmp/err" > /dev/null
check "an unknown match exits 1" "$?" 1
check "and says what it must be" "$(grep -c 'match.jsonl:1: query 1: "match" must be "any" or "all"' "$tmp/err")" 1
sed 's/"answers": \["blue"\]/"answers": []/' "$tmp/tasks.jsonl" > "$tmp/noans.jsonl"
kvz eval --model "$MODEL" --tasks "$tmp/noans.jsonl" --recon "$RECON" 2> "$tmp/err" > /dev/null
check "a query without answers exits 1" "$?" 1
check "and names it" "$(grep -c 'noans.jsonl:1: query 2: needs a non-empty' "$tmp/err")" 1
kvz eval --model "$MODEL" --tasks "$tmp/tasks.jsonl" --recon "$RECON" --protocol sometimes 2> "$tmp/err" > /dev/null
check "an unknown protocol exits 2" "$?" 2
# a list without the full cache gets it anyway (the reference of relative accuracy, the summary and
# the plot): its row in the JSON, the plot drawn, and stderr saying so
kvz eval --model "$MODEL" --tasks "$tmp/tasks.jsonl" --recon "$RECON" --chunk 64 --policy kvzip --plot "$tmp/p.png" \
    --json 2> "$tmp/err" > "$tmp/nofull.json"
check "a list without full runs" "$?" 0
check "and evaluates the full cache too" "$(grep -c '"policy": "full", "ratio": 1, "task": "all"' "$tmp/nofull.json")" 1
check "and says so" "$(grep -c 'full cache is evaluated too' "$tmp/err")" 1
check "and draws the plot" "$([ -s "$tmp/p.png" ] && echo yes)" yes
# kvzip-head calibrates once per model and keeps the scores under the model's fingerprint
XDG_CACHE_HOME=$tmp/cache kvz eval --model "$MODEL" --tasks "$tmp/tasks.jsonl" --recon "$RECON" --chunk 64 \
    --policy kvzip-head --ratio 0.5 --calibration "$SRC/eval/calibration.txt" --generations "$tmp/h1.json" \
    > /dev/null 2> "$tmp/err"
check "kvzip-head calibrates" "$?" 0
check "and keeps the head scores" "$(ls "$tmp/cache/kvz/heads" | grep -c '^[0-9a-f]\{64\}-[0-9a-f]\{16\}\.npy$')" 1
XDG_CACHE_HOME=$tmp/cache kvz eval --model "$MODEL" --tasks "$tmp/tasks.jsonl" --recon "$RECON" --chunk 64 \
    --policy kvzip-head --ratio 0.5 --calibration "$SRC/eval/calibration.txt" --generations "$tmp/h2.json" \
    > /dev/null 2> "$tmp/err"
check "a second run gives the same answers" "$(cmp -s "$tmp/h1.json" "$tmp/h2.json" && echo same)" same
for f in "$tmp"/cache/kvz/heads/*.npy; do echo junk > "$f"; done
XDG_CACHE_HOME=$tmp/cache kvz eval --model "$MODEL" --tasks "$tmp/tasks.jsonl" --recon "$RECON" --chunk 64 \
    --policy kvzip-head --ratio 0.5 --calibration "$SRC/eval/calibration.txt" --json > /dev/null 2> "$tmp/err"
check "a damaged kept file is read, not recomputed: exit 1" "$?" 1
check "and named" "$(grep -c 'kvz/heads/.*npy' "$tmp/err")" 1

finish
