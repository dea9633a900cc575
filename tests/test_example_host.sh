#!/bin/sh
# examples/toy_host, a host written only against kvz.h, end to end: it must run (its own checks: the
# cache saved and loaded answers both questions as before), keep about the ratio asked, and keep exactly
# the context rows that KVzip's pair rule picks from the scores it wrote (spec/kvzip.md §3.2, written out
# here in Python: the score at rank max(int(N*r) - 1, 0) of all N, kept when strictly greater).
# Skips (77) without python3.
set -u
. "$(dirname "$0")/testlib.sh"
HOST=${KVZ_EXAMPLE:-./examples/toy_host}
RUNNER=${KVZ_RUNNER:-}
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"

for ratio in 0.3 0.5; do
    $RUNNER "$HOST" --ratio $ratio --scores "$tmp/scores.txt" --kept "$tmp/kept.txt" --save "$tmp/toy.kvz" > "$tmp/out.txt" 2>&1
    rc=$?
    cat "$tmp/out.txt"
    check "toy_host --ratio $ratio runs" "$rc" 0
    check "... and its loaded cache answers as the one in memory" \
        "$(grep -c 'answers both questions the same' "$tmp/out.txt")" 1
    check "... and leaves its .kvz file" "$([ -s "$tmp/toy.kvz" ] && echo yes)" yes
    verdict=$(python3 - "$tmp/scores.txt" "$tmp/kept.txt" "$ratio" <<'PY'
import sys
scores = [l.split() for l in open(sys.argv[1])]
kept = {tuple(map(int, l.split())) for l in open(sys.argv[2])}
r = float(sys.argv[3])
vals = sorted((float(s[3]) for s in scores), reverse=True)
thr = vals[max(int(len(vals) * r) - 1, 0)]
want = {(int(l), int(h), int(j)) for (l, h, j, s) in scores if float(s) > thr}
print("same" if want == kept else "differ", "%.3f" % (len(want) / len(vals)))
PY
)
    check "... the kept rows are the pair rule's on its scores" "${verdict%% *}" same
    frac=${verdict#* }
    check "... about the ratio kept" "$(python3 -c "print(abs($frac - $ratio) < 0.02)")" True
done
$RUNNER "$HOST" --bogus > /dev/null 2>&1
check "an unknown option: exit 2" "$?" 2
finish
