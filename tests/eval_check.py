#!/usr/bin/env python3
"""The independent check of kvz eval's scoring: RULER's string_match / string_match_all recomputed on
every generation of --generations, then every summary line of --json recomputed from those scores.

usage: eval_check.py TASKS.jsonl GENERATIONS.jsonl EVAL.jsonl
Prints "scores ok", "summaries ok", "full agree A kl zero|K", "cells N", then one line per summary
over all tasks: "cell PROTOCOL POLICY RATIO kept K accuracy A" (two decimals).
"""
import json
import sys


def norm(s):
    return " ".join(s.lower().split())


def main():
    tasks = {t["id"]: t for t in map(json.loads, open(sys.argv[1]))}
    gens = [json.loads(line) for line in open(sys.argv[2])]
    lines = [json.loads(line) for line in open(sys.argv[3])]
    bad, per = 0, {}
    for g in gens:
        q = tasks[g["id"]]["queries"][g["query"]]
        found = sum(norm(a) in norm(g["text"]) for a in q["answers"])
        want = found / len(q["answers"]) if q.get("match") == "all" else float(found > 0)
        if abs(want - g["score"]) > 1e-9:
            bad += 1
            print("score mismatch:", g, want)
        s = per.setdefault((g["protocol"], g["policy"], g["ratio"]), [0.0, 0, 0])
        s[0] += want
        s[1] += 1
        s[2] += g["agree"]
    print("scores", "ok" if not bad else "bad %d" % bad)
    totals = [line for line in lines if line["task"] == "all"]
    bad = 0
    for line in totals:
        s = per[(line["protocol"], line["policy"], line["ratio"])]
        if abs(s[0] / s[1] - line["accuracy"]) > 1e-6 or abs(s[2] / s[1] - line["agree"]) > 1e-6 or \
                s[1] != line["queries"]:
            bad += 1
            print("summary mismatch:", line, s)
    print("summaries", "ok" if not bad else "bad %d" % bad)
    full = [line for line in totals if line["policy"] == "full"]
    if full:
        print("full agree", full[0]["agree"], "kl", "zero" if abs(full[0]["kl"]) < 1e-6 else full[0]["kl"])
    print("cells", len({(line["protocol"], line["policy"]) for line in totals}))
    for line in totals:
        print("cell %s %s %g kept %.2f accuracy %.2f" % (line["protocol"], line["policy"], line["ratio"],
                                                         line["kept_ratio"], line["accuracy"]))


main()
