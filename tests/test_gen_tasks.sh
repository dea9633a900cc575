#!/bin/sh
# Checks eval/gen_tasks.py, the long-context task generator, on SmolLM2-135M-Instruct's tokenizer: the
# same seed gives the same bytes and another seed other bytes; every record has the fixed format, its
# answers in its context and its token count within [0.97 L, L], which `kvz tokenize --json` confirms.
# Skips (77) without python3 or the model; under CI (where .ci/fetch-models has run) either fails.
set -u
. "$(dirname "$0")/testlib.sh"
model_tier
KVZ=${KVZ_BIN:-./kvz}
RUNNER=${KVZ_RUNNER:-} # e.g. qemu-aarch64 for a cross build
GEN=$(cd "$(dirname "$0")/.." && pwd)/eval/gen_tasks.py
MODEL=${KVZ_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kvz/models}/SmolLM2-135M-Instruct.Q4_1.gguf
command -v python3 > /dev/null 2>&1 || skip "python3 is absent"
[ -r "$MODEL" ] || skip "$MODEL is absent (.ci/fetch-models smollm2 fetches it)"

# the generator runs one kvz process; through a wrapper when kvz needs a runner (an emulator)
kvz_abs=$(cd "$(dirname "$KVZ")" && pwd)/$(basename "$KVZ")
if [ -n "$RUNNER" ]; then
    printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$RUNNER" "$kvz_abs" > "$tmp/kvz"
    chmod +x "$tmp/kvz"
    kvz_abs=$tmp/kvz
fi
gen() { python3 "$GEN" --model "$MODEL" --kvz "$kvz_abs" --lengths 512,1024 --per-length 1 "$@"; }

gen --seed 7 --out "$tmp/a.jsonl" 2> "$tmp/err"
check "generator exits 0" "$?" 0
check "progress on stderr, one line a record" "$(grep -c '^gen_tasks: [a-z_]*/[0-9]*/0: [0-9]* tokens' "$tmp/err")" 14
gen --seed 7 --out "$tmp/b.jsonl" 2> /dev/null
check "the same seed: the same bytes" "$(cmp "$tmp/a.jsonl" "$tmp/b.jsonl" > /dev/null 2>&1 && echo same)" same
gen --seed 8 --out "$tmp/c.jsonl" 2> /dev/null
check "another seed: other bytes" "$(cmp "$tmp/a.jsonl" "$tmp/c.jsonl" > /dev/null 2>&1 && echo same || echo differ)" differ
gen --seed 7 --tasks people_facts,kv_retrieval --out "$tmp/d.jsonl" 2> /dev/null
check "a record does not depend on the other tasks asked for" \
    "$(grep -e '"task": "people_facts"' -e '"task": "kv_retrieval"' "$tmp/a.jsonl" | sort | cksum)" \
    "$(sort "$tmp/d.jsonl" | cksum)"

# every record: the format, the answers in the context, the length; two contexts to files for kvz
got=$(python3 - "$tmp/a.jsonl" "$tmp" << 'EOF'
import json, sys
tasks = {"niah_single", "niah_multikey", "niah_multivalue", "kv_retrieval", "variable_tracking",
         "people_facts", "prefix_suffix"}
seen, bad = set(), []
for no, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    r = json.loads(line)
    where = f"line {no}"
    if list(r) != ["id", "task", "length", "seed", "n_tokens", "context", "max_tokens", "queries"]:
        bad.append(f"{where}: fields {list(r)}")
        continue
    seen.add((r["task"], r["length"]))
    if r["id"] != f'{r["task"]}/{r["length"]}/0' or r["task"] not in tasks or r["seed"] != 7:
        bad.append(f"{where}: id {r['id']}, seed {r['seed']}")
    if not 0.97 * r["length"] <= r["n_tokens"] <= r["length"]:
        bad.append(f"{where}: {r['n_tokens']} tokens for a length of {r['length']}")
    if not 8 <= r["max_tokens"] <= 64 or not r["queries"]:
        bad.append(f"{where}: max_tokens {r['max_tokens']}, {len(r['queries'])} queries")
    for q in r["queries"]:
        if sorted(q) != ["answer_prefix", "answers", "match", "question"] or q["match"] not in ("any", "all") or \
                not q["answers"] or not q["answer_prefix"]:
            bad.append(f"{where}: query {q}")
            continue
        for a in q["answers"]:
            if not a or a not in r["context"]:
                bad.append(f"{where}: the answer {a!r} is not in the context")
            if a in q["question"] or a in q["answer_prefix"]:
                bad.append(f"{where}: the answer {a!r} is in its question or answer prefix")
    if r["task"] in ("niah_single", "people_facts") and r["length"] == 1024:
        with open(f"{sys.argv[2]}/{r['task']}.txt", "w", encoding="utf-8") as f:
            f.write(r["context"])
        with open(f"{sys.argv[2]}/{r['task']}.n", "w") as f:
            f.write(str(r["n_tokens"]))
if len(seen) != 14:
    bad.append(f"{len(seen)} (task, length) pairs, not 14")
print("\n".join(bad) if bad else "all good")
EOF
)
check "every record well formed, its answers in its context, its length in range" "$got" "all good"

# n_tokens against the ids of kvz tokenize (less the BOS the model would add; none for SmolLM2)
bos=$(kvz tokenize --model "$MODEL" -- "" | wc -w)
for t in niah_single people_facts; do
    n=$(kvz tokenize --model "$MODEL" -- "$(cat "$tmp/$t.txt")" | wc -w)
    check "$t/1024: n_tokens is the count of kvz tokenize" "$((n - bos))" "$(cat "$tmp/$t.n")"
done

# bad arguments: exit 2 with the reason; a length too short: exit 1, no file left behind
gen --seed 7 --tasks niah_single,bogus --out "$tmp/e.jsonl" 2> "$tmp/err"
check "an unknown task exits 2" "$?" 2
check "an unknown task is named" "$(grep -c 'unknown task bogus' "$tmp/err")" 1
python3 "$GEN" --model "$MODEL" --kvz "$kvz_abs" --lengths 64 --tasks niah_multivalue --out "$tmp/f.jsonl" 2> "$tmp/err"
check "a length too short exits 1" "$?" 1
check "a length too short: the message" "$(grep -c '^gen_tasks: niah_multivalue/64/0: .* too short$' "$tmp/err")" 1
check "a length too short: no output file" "$(ls "$tmp" | grep -c '^f\.jsonl')" 0

finish
