#!/usr/bin/env python3
"""Relative accuracy from kvz eval --generations files: the policies' run and the full cache's run over
the same task file (a run whose --policy list left out full, before kvz eval added it by itself).
usage: combine_full.py POLICIES.jsonl FULL.jsonl > summary.md (doc/results/*-seed3/settings.txt)"""
import collections, json, sys

def load(path, only=None):
    acc = collections.defaultdict(list)   # (policy, task, length) -> per-query scores
    ctx = collections.defaultdict(set)    # (task, length) -> context ids
    for line in open(path):
        try:
            d = json.loads(line)
        except ValueError:
            continue  # the last line of a run that was stopped
        if only is not None and d["id"] not in only:
            continue
        task, length, _ = d["id"].split("/")
        acc[(d["policy"], task, int(length))].append(d["score"])
        ctx[(task, int(length))].add(d["id"])
    return acc, ctx

full, fctx = load(sys.argv[2])
pol, ctx = load(sys.argv[1], set().union(*fctx.values()))  # the contexts the full cache answered
groups = sorted(g for g in fctx if g in ctx and fctx[g] == ctx[g])
policies = sorted({k[0] for k in pol}, key=lambda p: ["kvzip-pair", "kvzip-pair-uniform", "snapkv", "pyramidkv", "h2o", "streaming"].index(p))
mean = lambda v: sum(v) / len(v)
fa = {g: mean(full[("full",) + g]) for g in groups}
lengths = sorted({g[1] for g in groups})
tasks = sorted({g[0] for g in groups})
print("## The full cache's accuracy per task and context length (contexts in brackets)\n")
print("| task | " + " | ".join(str(l) for l in lengths) + " |")
print("|---|" + "---:|" * len(lengths))
for t in tasks:
    cells = [("%.3f (%d)" % (fa[(t, l)], len(ctx[(t, l)]))) if (t, l) in fa else "-" for l in lengths]
    print("| %s | %s |" % (t, " | ".join(cells)))
good = [g for g in groups if fa[g] >= 0.5]
print("\n## Relative accuracy at kept ratio 0.3, multi-query, where the full cache scores at least 0.5\n")
print("Groups: " + ", ".join("%s/%d" % g for g in good) + ".\n")
print("| policy | mean relative accuracy | accuracy over those groups | groups where KVzip (pair) is ahead / level / behind |")
print("|---|---:|---:|---|")
rel = {p: {g: mean(pol[(p,) + g]) / fa[g] for g in good} for p in policies}
for p in policies:
    r = rel[p]
    k = rel["kvzip-pair"]
    ahead = sum(k[g] > r[g] + 1e-9 for g in good); level = sum(abs(k[g] - r[g]) <= 1e-9 for g in good)
    cmp = "-" if p == "kvzip-pair" else "%d / %d / %d" % (ahead, level, len(good) - ahead - level)
    print("| %s | %.3f | %.3f | %s |" % (p, mean(list(r.values())), mean([mean(pol[(p,) + g]) for g in good]), cmp))
print("\n## Accuracy per group (all groups)\n")
print("| group | contexts | full | " + " | ".join(policies) + " |")
print("|---|---:|---:|" + "---:|" * len(policies))
for g in groups:
    print("| %s/%d | %d | %.3f | %s |" % (g[0], g[1], len(ctx[g]), fa[g], " | ".join("%.3f" % mean(pol[(p,) + g]) for p in policies)))
