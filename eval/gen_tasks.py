#!/usr/bin/env python3
"""Writes deterministic long-context task files (RULER and SCBench kinds) for evaluating KV-cache
compression in the multi-query protocol: each context is compressed once, then several questions are
asked of it.

Standard library only. Every context is sized in the model's own tokens through one long-running
`kvz tokenize --count-lines` process; the haystack text comes from a seeded sentence grammar over the
vocabulary below (nothing is downloaded). The same arguments give byte-identical output: every record
draws from its own random.Random seeded by (--seed, task, length, index), never from the global RNG.

Output: JSON Lines, one context a line:
  {"id": "niah_multikey/2048/3", "task": "niah_multikey", "length": 2048, "seed": 7, "n_tokens": 2031,
   "context": "...", "max_tokens": 24,
   "queries": [{"question": "...", "answers": ["..."], "match": "any", "answer_prefix": "..."}, ...]}
n_tokens is the context's length encoded without BOS (as kvz compress encodes a context), within
[0.97 * length, length]. match "any": a query is right when any answer appears in the generated text
(lower-cased, whitespace collapsed: RULER's string_match); "all": its score is the fraction of the
answers that appear (RULER's string_match_all). answer_prefix starts the answer after the assistant
opener, as RULER's templates do, so that the generation is the answer itself.
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
import uuid

# ---- vocabulary of the haystack grammar --------------------------------------------------------------
# No digits, no hyphens and no capitalised words but the first of a sentence: the needles (numbers,
# hyphenated keys, VAR names, people's names) can then never be spelled by the filler.

NOUNS = """river garden market library village mountain bridge harbor forest window lantern letter journey
season road orchard meadow kitchen workshop museum festival storm valley island tower painting story song
machine clock compass notebook engine ship train bicycle map theory question habit custom tradition decision
memory idea pattern signal surface shadow cloud field fountain station courtyard chimney staircase blanket
basket mirror ladder candle harvest recipe puzzle melody rumor promise argument experiment lesson chapter
border canal cottage valley garden pond hill path gate fence wall roof barn mill quarry coast cliff cave
desert glacier lake stream willow oak pine meadow feather stone shell pebble thread needle ribbon button
kettle teapot lamp shelf drawer cupboard carpet curtain""".split()

PEOPLE = """traveler student neighbor visitor stranger elder child crowd guest villager pilgrim scholar
wanderer hiker passenger audience family friend cousin rider swimmer runner dreamer reader listener
newcomer""".split()

ADJS = """quiet old bright narrow wide ancient gentle sudden curious silent golden distant heavy light
small large busy empty warm cold calm wild careful patient tired cheerful strange familiar hidden broken
simple elegant modest humble proud brave clever gray green blue crimson pale dark soft rough smooth
steady restless fragile sturdy crooked hollow dusty shiny fresh stale early late rare common vivid dim
crowded lonely open narrow peaceful noisy gentle remote sunny rainy windy foggy frozen""".split()

ADVS = """slowly quickly quietly carefully suddenly gently often rarely eagerly calmly patiently
happily sadly boldly softly loudly briefly steadily proudly nervously politely warmly silently
gradually easily""".split()

PREPS = "near behind beside across along beyond under above around inside toward past through".split()

TIMES = """in the morning|after the storm|during the long winter|every autumn|before dawn|at the end of
the day|for many years|last spring|on quiet evenings|once in a while|after a long pause|by late
afternoon|in the middle of the night|before the harvest|after the festival|during the rainy season|on
the first day of summer|at sunset|in those days|long ago""".replace("\n", " ").split("|")

CONNECTIVES = """However|Meanwhile|In the end|For a while|Still|Later|Sometimes|Often|As a result|Even
so|At first|Afterwards|Of course|In fact|Strangely enough|Before long""".replace("\n", " ").split("|")

# (base, third person singular, past)
TVERBS = [tuple(v.split("/")) for v in """follow/follows/followed carry/carries/carried build/builds/built
find/finds/found watch/watches/watched visit/visits/visited describe/describes/described
repair/repairs/repaired paint/paints/painted measure/measures/measured remember/remembers/remembered
explore/explores/explored protect/protects/protected change/changes/changed open/opens/opened
close/closes/closed cross/crosses/crossed study/studies/studied collect/collects/collected
share/shares/shared move/moves/moved clean/cleans/cleaned count/counts/counted admire/admires/admired
imagine/imagines/imagined discover/discovers/discovered draw/draws/drew keep/keeps/kept
leave/leaves/left bring/brings/brought hold/holds/held see/sees/saw take/takes/took make/makes/made
guard/guards/guarded decorate/decorates/decorated notice/notices/noticed ignore/ignores/ignored
borrow/borrows/borrowed return/returns/returned""".split()]
IVERBS = [tuple(v.split("/")) for v in """wait/waits/waited rest/rests/rested wander/wanders/wandered
gather/gathers/gathered arrive/arrives/arrived linger/lingers/lingered settle/settles/settled
listen/listens/listened travel/travels/traveled sleep/sleeps/slept rise/rises/rose fall/falls/fell
grow/grows/grew shine/shines/shone sing/sings/sang glow/glows/glowed drift/drifts/drifted
pause/pauses/paused vanish/vanishes/vanished remain/remains/remained""".split()]

# niah keys: "adjective-noun" (RULER uses word keys)
KEY_ADJS = """abundant amber ancient bitter brisk cobalt coral crimson dapper eager elastic fancy fierce
frosty gentle glossy grumpy hasty humble icy jolly lavish lively lucky marble mellow misty nimble
noble odd plucky polite rapid rustic scarlet shy silky sleepy snowy spicy stormy sunny swift tidy
velvet vivid wacky witty zesty""".split()
KEY_NOUNS = """anchor badger banjo beacon biscuit bucket cactus canyon carrot comet cricket dolphin
dragon falcon ferry gadget garlic giraffe hammock hedgehog iceberg jackal kayak kettle koala lagoon
lemon lobster magnet meteor muffin nugget octopus otter pepper pigeon pumpkin quill raccoon rocket
saddle sparrow squid tambourine teapot tornado trumpet tulip turnip violin walrus wombat""".split()

# people_facts
FIRST = """Alice Bruno Clara Dmitri Elena Felix Greta Hugo Ingrid Jonas Karin Leon Mira Nadia Oscar Petra
Quentin Rosa Stefan Tilda Ulrich Vera Walter Xenia Yusuf Zora Agnes Boris Cecile Dario Edith Frans
Gideon Hanna Ivo Judith Kasimir Lotte Magnus Nora Otto Pia Rafael Selma Tobias Ursula Viktor Wanda""".split()
LAST = """Abbott Brennan Castell Dunmore Ellery Falk Garrity Holloway Ivers Jansen Kessler Lindqvist
Moreau Novak Oakes Pellegrini Quist Rasmussen Sorensen Thorne Underhill Vance Whitlock Yarrow Zeller
Ashdown Birkett Corwin Delacroix Eastwick Fennimore Gallo Hartmann Iverson Kowalski Lockhart Marchetti
Nyberg Ostrander Prescott""".split()
CITY_HEADS = """Ash Bel Cor Dun El Fair Glen Hol Iron Kil Lark Mar North Oak Pen Red Stan Thorn Wes Wil Brack
Cald Fen Gold Har Lin Mor Quen Ros Sil Tor Val""".split()
CITY_TAILS = "ford haven mouth bury field wick dale port stead bridge more gate holm minster by combe".split()
# the invented cities that neither hold nor hide in a name (Dun + more would be Mr Dunmore)
CITIES = [h + t for h in CITY_HEADS for t in CITY_TAILS
          if not any(h + t in x or x in h + t for x in FIRST + LAST)]
JOBS = """carpenter pharmacist architect librarian plumber dentist accountant electrician veterinarian
translator surveyor jeweler florist locksmith blacksmith geologist optician cartographer beekeeper
upholsterer glassblower chemist economist meteorologist zoologist archivist bookbinder tailor baker
clockmaker""".split()

# prefix_suffix lines: six words each, so that no line can sit inside another
LINE_ADJS = ADJS
LINE_NOUNS = NOUNS + KEY_NOUNS

TASKS = ["niah_single", "niah_multikey", "niah_multivalue", "kv_retrieval", "variable_tracking",
         "people_facts", "prefix_suffix"]
# tokens generated after the answer prefix: the answer and some room (a UUID is up to ~30 tokens)
MAX_TOKENS = {"niah_single": 16, "niah_multikey": 16, "niah_multivalue": 48, "kv_retrieval": 40,
              "variable_tracking": 32, "people_facts": 12, "prefix_suffix": 24}


class GenError(Exception):
    pass


# ---- sentence grammar --------------------------------------------------------------------------------

def plural(n):
    if n.endswith(("s", "sh", "ch", "x")):
        return n + "es"
    if n.endswith("y") and n[-2] not in "aeiou":
        return n[:-1] + "ies"
    if n == "child":
        return "children"
    if n == "shelf":
        return "shelves"
    return n + "s"


def article(word):
    return "an" if word[0] in "aeiou" else "a"


class Grammar:
    """Filler sentences drawn from one random.Random."""

    def __init__(self, rng):
        self.r = rng

    def c(self, seq):
        return self.r.choice(seq)

    def np_sg(self, adj_p=0.5, people=False, dets=("the", "the", "the", "a", "this", "that", "every", "each")):
        n = self.c(PEOPLE if people else NOUNS)
        words = [self.c(ADJS), n] if self.r.random() < adj_p else [n]
        det = self.c(dets)
        if det == "a":
            det = article(words[0])
        return det + " " + " ".join(words)

    def np_pl(self, adj_p=0.4, people=False):
        n = plural(self.c(PEOPLE if people else NOUNS))
        words = [self.c(ADJS), n] if self.r.random() < adj_p else [n]
        return self.c(["the", "the", "these", "those", "some", "many", "a few"]) + " " + " ".join(words)

    def np(self, **kw):
        return self.np_sg(**kw) if self.r.random() < 0.6 else self.np_pl(**kw)

    def pp(self):
        return self.c(PREPS) + " " + self.np_sg()

    def sentence(self):
        c, r = self.c, self.r
        t, tv, iv = r.randrange(14), c(TVERBS), c(IVERBS)
        if t == 0:
            s = f"{self.np_sg()} {tv[2]} {self.np()} {self.pp()}"
        elif t == 1:
            s = f"{c(CONNECTIVES)}, {self.np_pl()} {iv[2]} {c(ADVS)}"
        elif t == 2:
            s = f"{c(TIMES)}, {self.np_pl(people=True)} {tv[2]} {self.np_sg(adj_p=0.9)}"
        elif t == 3:
            s = f"nobody knew why {self.np_sg()} {iv[2]} {self.pp()}"
        elif t == 4:
            s = f"{self.np_sg(adj_p=0)} {self.pp()} was {c(ADJS)} and {c(ADJS)}"
        elif t == 5:
            s = f"many {plural(c(PEOPLE))} {tv[0]} {self.np_pl()} {c(TIMES)}"
        elif t == 6:
            s = f"it seemed {c(ADJS)} that {self.np_sg(dets=('the', 'a', 'every', 'each'))} {tv[1]} {self.np()}"
        elif t == 7:
            s = f"{self.np_sg(people=True)} who {tv[2]} {self.np_sg()} {iv[2]} {c(ADVS)} {c(TIMES)}"
        elif t == 8:
            s = f"if {self.np_sg()} {tv[1]} {self.np()}, {self.np_pl(people=True)} will {c(TVERBS)[0]} {self.np()}"
        elif t == 9:
            s = f"the {plural(c(NOUNS))} of the {c(NOUNS)} are {c(ADJS)}, but {self.np_sg(adj_p=0)} is {c(ADJS)}"
        elif t == 10:
            a = c(ADJS)
            s = f"there was {article(a)} {a} {c(NOUNS)} {self.pp()}, and {self.np_sg(people=True)} {tv[2]} it {c(ADVS)}"
        elif t == 11:
            s = f"who {tv[2]} {self.np_sg(adj_p=0.8)} {self.pp()}"
            return s[0].upper() + s[1:] + "?"
        elif t == 12:
            s = f"{self.np_sg()} {iv[1]} {c(ADVS)} whenever {self.np_sg(people=True)} {tv[1]} {self.np()}"
        else:
            s = f"{c(CONNECTIVES)}, {self.np_sg(people=True)} {tv[2]} {self.np_pl()} and {iv[2]} {self.pp()}"
        return s[0].upper() + s[1:] + "."

    def short(self):
        """A sentence of a few tokens, to pad a context up to its length."""
        c, r = self.c, self.r
        t = r.randrange(4)
        if t == 0:
            s = f"the {c(NOUNS)} {c(IVERBS)[2]}"
        elif t == 1:
            s = f"it was {c(ADJS)}"
        elif t == 2:
            s = f"the {c(PEOPLE)} {c(IVERBS)[2]}"
        else:
            s = f"{c(PLURAL_NOUNS)} {c(IVERBS)[0]}"
        return s[0].upper() + s[1:] + "."


PLURAL_NOUNS = [plural(n) for n in NOUNS]
# the words the templates above spell out themselves
TEMPLATE_WORDS = """the a an this that every each these those some many few nobody knew why was and it seemed
who if will of are but is there whenever""".split()


# ---- the samples ----------------------------------------------------------------------------------

class Haystack:
    """Filler sentences (with paragraph breaks) into which items are inserted at fractional depths.

    Unit i is the same whatever the haystack's size, so that a sample is a function of its size n alone
    and the size can be searched for."""

    def __init__(self, rng):
        self.g = Grammar(rng)
        self.units = []  # (sentence, paragraph break before it)
        self.pad_g = Grammar(random.Random(rng.getrandbits(64)))
        self.pads = []

    def unit(self, i):
        while len(self.units) <= i:
            self.units.append((self.g.sentence(), self.g.r.random() < 0.2))
        return self.units[i]

    def pad(self, i):
        while len(self.pads) <= i:
            self.pads.append(self.pad_g.short())
        return self.pads[i]

    def render(self, n, inserts, pad):
        """inserts: (depth in [0, 1], text) in the order they must keep when they meet."""
        at = {}
        for d, text in inserts:
            at.setdefault(min(n, max(0, round(d * n))), []).append(text)
        out = []
        for i in range(n + 1):
            for text in at.get(i, ()):
                out.append((" " if out else "") + text)
            if i < n:
                s, para = self.unit(i)
                out.append(("\n\n" if para else " ") + s if out else s)
        for p in pad:
            out.append((" " if out else "") + p)
        return "".join(out)


def distinct(make, k, taken=None):
    """k different values of make()."""
    taken = set() if taken is None else taken
    out = []
    while len(out) < k:
        x = make()
        if x not in taken:
            taken.add(x)
            out.append(x)
    return out


def number7(rng):
    return str(rng.randrange(1000000, 10000000))


def magic_keys(rng, k):
    """k keys none of which hides in another (icy-quill in spicy-quill)."""
    keys = []
    while len(keys) < k:
        key = f"{rng.choice(KEY_ADJS)}-{rng.choice(KEY_NOUNS)}"
        if not any(key in x or x in key for x in keys):
            keys.append(key)
    return keys


def needle(key, value):
    return f"One of the special magic numbers for {key} is: {value}."


def q_any(question, answer, prefix):
    return {"question": question, "answers": [answer], "match": "any", "answer_prefix": prefix}


def magic_prefix(key):
    return f"The special magic number for {key} mentioned in the provided text is"


class Sample:
    """One record: render(n, pad) gives its context and queries for a size n (units) and padding."""

    n_min = 0

    def pad(self, i):
        return self.hay.pad(i)


class NiahSingle(Sample):
    """One needle "One of the special magic numbers for KEY is: NUMBER." in filler; its number."""

    def __init__(self, r):
        self.hay = Haystack(random.Random(r.getrandbits(64)))
        self.key, = magic_keys(r, 1)
        self.value = number7(r)
        self.depth = r.random()

    def render(self, n, pad):
        ctx = self.hay.render(n, [(self.depth, needle(self.key, self.value))], pad)
        q = f"What is the special magic number for {self.key} mentioned in the provided text?"
        return ctx, [q_any(q, self.value, magic_prefix(self.key))]

    def check(self, ctx, n):
        expect_count(ctx, [self.key, self.value], 1)


class NiahMultikey(Sample):
    """8 needles with different keys; 4 to 8 of them asked, one query each."""

    def __init__(self, r):
        self.hay = Haystack(random.Random(r.getrandbits(64)))
        self.keys = magic_keys(r, 8)
        self.values = distinct(lambda: number7(r), 8)
        self.depths = [r.random() for _ in self.keys]
        self.asked = r.sample(range(8), r.randint(4, 8))

    def render(self, n, pad):
        ctx = self.hay.render(n, [(d, needle(k, v)) for d, k, v in zip(self.depths, self.keys, self.values)], pad)
        qs = [q_any(f"What is the special magic number for {self.keys[i]} mentioned in the provided text?",
                    self.values[i], magic_prefix(self.keys[i])) for i in self.asked]
        return ctx, qs

    def check(self, ctx, n):
        expect_count(ctx, self.keys + self.values, 1)


class NiahMultivalue(Sample):
    """2 or 3 keys with 4 numbers each; one query a key for all its numbers (match all)."""

    def __init__(self, r):
        self.hay = Haystack(random.Random(r.getrandbits(64)))
        self.keys = magic_keys(r, r.randint(2, 3))
        self.values = distinct(lambda: number7(r), 4 * len(self.keys))
        self.items = [(r.random(), k, self.values[4 * i + j]) for i, k in enumerate(self.keys) for j in range(4)]
        r.shuffle(self.items)

    def render(self, n, pad):
        ctx = self.hay.render(n, [(d, needle(k, v)) for d, k, v in self.items], pad)
        qs = [{"question": f"What are all the special magic numbers for {k} mentioned in the provided text?",
               "answers": self.values[4 * i:4 * i + 4], "match": "all",
               "answer_prefix": f"The special magic numbers for {k} mentioned in the provided text are"}
              for i, k in enumerate(self.keys)]
        return ctx, qs

    def check(self, ctx, n):
        expect_count(ctx, self.keys, 4)
        expect_count(ctx, self.values, 1)


class KvRetrieval(Sample):
    """SCBench's Retr.KV: a JSON object of UUID pairs; the values of 4 to 8 keys.

    Short filler sentences before the object pad the context to its length."""

    n_min = 2

    def __init__(self, r):
        self.r = random.Random(r.getrandbits(64))
        self.pad_hay = Haystack(random.Random(r.getrandbits(64)))
        self.pairs, self.seen = [], set()
        self.depths = [r.random() for _ in range(r.randint(4, 8))]

    def uuid(self):
        while True:
            u = str(uuid.UUID(int=self.r.getrandbits(128), version=4))
            if u not in self.seen:
                self.seen.add(u)
                return u

    def pair(self, i):
        while len(self.pairs) <= i:
            self.pairs.append((self.uuid(), self.uuid()))
        return self.pairs[i]

    def pad(self, i):
        return self.pad_hay.pad(i)

    def render(self, n, pad):
        body = "{" + ", ".join(f'"{k}": "{v}"' for k, v in (self.pair(i) for i in range(n))) + "}"
        ctx = " ".join(pad) + "\n\n" + body if pad else body
        asked = []
        for d in self.depths:
            i = min(n - 1, int(d * n))
            if i not in asked:
                asked.append(i)
        qs = [q_any("Extract the value corresponding to the specified key in the JSON object above. "
                    f'Key: "{self.pairs[i][0]}"', self.pairs[i][1], "The value corresponding to the key is")
              for i in asked]
        return ctx, qs

    def check(self, ctx, n):
        expect_count(ctx, [u for p in self.pairs[:n] for u in p], 1)


class VariableTracking(Sample):
    """RULER's vt: 2 or 3 chains VAR A = 12345. VAR B = VAR A. ... (4 hops); each chain's names."""

    HOPS = 4

    def __init__(self, r):
        self.hay = Haystack(random.Random(r.getrandbits(64)))
        n_chains = r.randint(2, 3)
        vocab = NOUNS + PEOPLE + ADJS + ADVS + PREPS + [v for vs in TVERBS + IVERBS for v in vs] + \
            " ".join(TIMES + CONNECTIVES).lower().split() + [plural(w) for w in NOUNS + PEOPLE] + TEMPLATE_WORDS

        def name():
            while True:
                s = "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))
                if not any(s.lower() in w for w in vocab):
                    return s
        self.chains = []
        taken = set()
        values = distinct(lambda: str(r.randrange(10000, 100000)), n_chains)
        for c in range(n_chains):
            names = distinct(name, self.HOPS + 1, taken)
            depths = sorted(r.random() for _ in names)
            self.chains.append((values[c], names, depths))

    def render(self, n, pad):
        inserts = []
        for value, names, depths in self.chains:
            inserts.append((depths[0], f"VAR {names[0]} = {value}."))
            for j in range(1, len(names)):
                inserts.append((depths[j], f"VAR {names[j]} = VAR {names[j - 1]}."))
        inserts.sort(key=lambda x: x[0])  # stable: a chain's statements stay in their order at a tie
        ctx = self.hay.render(n, inserts, pad)
        qs = [{"question": f"Find all variables that are assigned the value {value} in the text above.",
               "answers": list(names), "match": "all",
               "answer_prefix": f"According to the chain of variable assignments in the text above, the variables "
                                f"assigned the value {value} are:"} for value, names, _ in self.chains]
        return ctx, qs

    def check(self, ctx, n):
        low = ctx.lower()
        for value, names, _ in self.chains:
            expect_count(ctx, [value], 1)
            for j, nm in enumerate(names):
                want = 1 if j == len(names) - 1 else 2
                if low.count(nm.lower()) != want:
                    raise GenError(f"variable {nm} occurs {low.count(nm.lower())} times, not {want}")


class PeopleFacts(Sample):
    """6 to 10 invented people, one sentence each; 4 to 6 questions on a city, job or birth year."""

    def __init__(self, r):
        self.hay = Haystack(random.Random(r.getrandbits(64)))
        k = r.randint(6, 10)
        firsts = r.sample(FIRST, k)
        lasts = r.sample(LAST, k)
        cities = r.sample(CITIES, k)
        jobs = r.sample(JOBS, k)
        years = distinct(lambda: str(r.randrange(1940, 2006)), k)
        self.people = [(f"{f} {l}", c, j, y) for f, l, c, j, y in zip(firsts, lasts, cities, jobs, years)]
        self.depths = [r.random() for _ in self.people]
        asked = r.sample(range(k), r.randint(4, min(6, k)))
        self.asked = [(i, r.choice(["city", "job", "year"])) for i in asked]

    def render(self, n, pad):
        inserts = [(d, f"{nm} lives in {c}, works as {article(j)} {j}, and was born in {y}.")
                   for d, (nm, c, j, y) in zip(self.depths, self.people)]
        ctx = self.hay.render(n, inserts, pad)
        qs = []
        for i, what in self.asked:
            nm, c, j, y = self.people[i]
            if what == "city":
                qs.append(q_any(f"In which city does {nm} live?", c, f"{nm} lives in"))
            elif what == "job":
                qs.append(q_any(f"What does {nm} work as?", j, f"{nm} works as"))
            else:
                qs.append(q_any(f"In which year was {nm} born?", y, f"{nm} was born in"))
        return ctx, qs

    def check(self, ctx, n):
        expect_count(ctx, [x for p in self.people for x in p], 1)


class PrefixSuffix(Sample):
    """A list of unique six-word lines; which line follows a given one (4 to 8 queries)."""

    n_min = 16

    def __init__(self, r):
        self.r = random.Random(r.getrandbits(64))
        self.lines, self.seen = [], set()
        self.depths = [r.random() for _ in range(r.randint(4, 8))]
        self.pad_r, self.pads = random.Random(r.getrandbits(64)), []

    def make(self):
        c = self.r.choice
        t = self.r.randrange(4)
        if t == 0:
            w = [c(LINE_ADJS), plural(c(LINE_NOUNS)), c(IVERBS)[0], c(PREPS), c(LINE_ADJS), plural(c(LINE_NOUNS))]
        elif t == 1:
            a = c(LINE_ADJS)
            w = [article(a), a, c(LINE_NOUNS), c(TVERBS)[1], "the", c(LINE_NOUNS)]
        elif t == 2:
            w = [plural(c(LINE_NOUNS)), c(IVERBS)[0], c(ADVS), c(PREPS), "the", c(LINE_NOUNS)]
        else:
            w = ["the", c(LINE_NOUNS), c(TVERBS)[2], c(LINE_ADJS), plural(c(LINE_NOUNS)), c(ADVS)]
        s = " ".join(w)
        return s[0].upper() + s[1:] + "."

    def line(self, i):
        while len(self.lines) <= i:
            s = self.make()
            if s.lower() not in self.seen:
                self.seen.add(s.lower())
                self.lines.append(s)
        return self.lines[i]

    def pad(self, i):
        """Two-word lines after the list, never asked about, when a whole line is too long to fit."""
        while len(self.pads) <= i:
            s = f"{self.pad_r.choice(LINE_ADJS)} {plural(self.pad_r.choice(LINE_NOUNS))}"
            if s not in self.pads:
                self.pads.append(s)
        return self.pads[i][0].upper() + self.pads[i][1:] + "."

    def render(self, n, pad):
        ctx = "\n".join([self.line(i) for i in range(n)] + pad)
        low = ctx.lower()
        qs, used = [], set()
        for d in self.depths:
            i = min(n - 2, int(d * (n - 1)))
            # the next line must be the only place its words stand in that order (a line could, in
            # principle, hide inside another one that ends and starts with longer words)
            for _ in range(n):
                if i not in used and low.count(self.lines[i + 1][:-1].lower()) == 1 and \
                        low.count(self.lines[i].lower()) == 1:
                    break
                i = (i + 1) % (n - 1)
            else:
                raise GenError("no line to ask about")
            used.add(i)
            qs.append(q_any(f"Which line comes right after the line '{self.lines[i]}' in the text above? "
                            "Quote it.", self.lines[i + 1][:-1], "The line right after it is:"))
        return ctx, qs

    def check(self, ctx, n):
        lines = ctx.split("\n")[:n]
        if len(set(s.lower() for s in lines)) != len(lines):
            raise GenError("two lines are the same")


KINDS = {"niah_single": NiahSingle, "niah_multikey": NiahMultikey, "niah_multivalue": NiahMultivalue,
         "kv_retrieval": KvRetrieval, "variable_tracking": VariableTracking, "people_facts": PeopleFacts,
         "prefix_suffix": PrefixSuffix}


def expect_count(ctx, strings, want):
    for s in strings:
        got = ctx.count(s)
        if got != want:
            raise GenError(f"{s!r} occurs {got} times in the context, not {want}")


# ---- token counts ---------------------------------------------------------------------------------

class Counter:
    """One `kvz tokenize --count-lines` process: a JSON string in, its token count (no BOS) out."""

    def __init__(self, kvz, model):
        self.calls = 0
        try:
            self.p = subprocess.Popen([kvz, "tokenize", "--model", model, "--count-lines"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, encoding="utf-8")
        except OSError as e:
            raise GenError(f"cannot run {kvz}: {e.strerror} (--kvz gives the kvz tool)")

    def count(self, text):
        self.calls += 1
        try:
            self.p.stdin.write(json.dumps(text) + "\n")
            self.p.stdin.flush()
            line = self.p.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line.strip().isdigit():
            raise GenError(f"kvz tokenize --count-lines stopped (exit status {self.p.wait()}); "
                           "its message is above")
        return int(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def fit(sample, length, counter):
    """The largest haystack whose context is at most length tokens, padded up to 0.97 * length."""
    low = math.ceil(0.97 * length)
    cache = {}

    def cnt(n, pad=()):
        if (n, pad) not in cache:
            cache[n, pad] = counter.count(sample.render(n, list(pad))[0])
        return cache[n, pad]

    lo = sample.n_min
    clo = cnt(lo)
    if clo > length:
        raise GenError(f"the smallest context of this task is {clo} tokens: a length of {length} is too short")
    probe = lo + 8
    per = max((cnt(probe) - clo) / 8, 1.0)
    hi = chi = None
    # bracket: lo fits, hi does not; the guesses aim a little past the length
    while hi is None:
        g = lo + max(1, math.ceil((length - clo) / per * 1.03))
        cg = cnt(g)
        if cg <= length:
            per = max((cg - clo) / (g - lo), 1.0)
            lo, clo = g, cg
        else:
            hi, chi = g, cg
    # narrow by interpolation, checking the neighbour of each guess
    while hi - lo > 1:
        g = lo + round((length - clo) * (hi - lo) / max(chi - clo, 1))
        g = min(max(g, lo + 1), hi - 1)
        cg = cnt(g)
        if cg <= length:
            lo, clo = g, cg
            if g + 1 < hi:
                c1 = cnt(g + 1)
                if c1 > length:
                    hi, chi = g + 1, c1
                else:
                    lo, clo = g + 1, c1
        else:
            hi, chi = g, cg
            if g - 1 > lo:
                c1 = cnt(g - 1)
                if c1 <= length:
                    lo, clo = g - 1, c1
                else:
                    hi, chi = g - 1, c1
    n, total, pad, tried = lo, clo, (), 0
    while total < low:
        cand = sample.pad(tried)
        tried += 1
        if cand is None or tried > 64:
            raise GenError(f"cannot fit the context between {low} and {length} tokens "
                           f"(at most {total} with {n} units)")
        c = cnt(n, pad + (cand,))
        if c <= length:
            pad, total = pad + (cand,), c
    ctx, queries = sample.render(n, list(pad))
    return ctx, queries, total, n


def generate(args, out):
    counter = Counter(args.kvz, args.model)
    t_all = time.time()
    try:
        for task in args.tasks:
            for length in args.lengths:
                for index in range(args.per_length):
                    t0, calls = time.time(), counter.calls
                    rid = f"{task}/{length}/{index}"
                    sample = KINDS[task](random.Random(f"kvz gen_tasks/{args.seed}/{rid}"))
                    try:
                        ctx, queries, n_tokens, n = fit(sample, length, counter)
                        sample.check(ctx, n)
                    except GenError as e:
                        raise GenError(f"{rid}: {e}")
                    for q in queries:
                        for a in q["answers"]:
                            if a not in ctx:
                                raise GenError(f"{rid}: the answer {a!r} is not in the context")
                    if not math.ceil(0.97 * length) <= n_tokens <= length:
                        raise GenError(f"{rid}: {n_tokens} tokens")
                    rec = {"id": rid, "task": task, "length": length, "seed": args.seed, "n_tokens": n_tokens,
                           "context": ctx, "max_tokens": MAX_TOKENS[task], "queries": queries}
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    print(f"gen_tasks: {rid}: {n_tokens} tokens, {len(queries)} queries "
                          f"({counter.calls - calls} counts, {time.time() - t0:.2f} s)", file=sys.stderr)
    finally:
        counter.close()
    print(f"gen_tasks: {time.time() - t_all:.1f} s in all", file=sys.stderr)


def default_kvz():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for p in (os.path.join(repo, "build", "native", "kvz"), os.path.join(repo, "kvz")):
        if os.access(p, os.X_OK):
            return p
    return "kvz"


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="tasks (--tasks):\n" + "\n".join(f"  {t:18} {KINDS[t].__doc__.splitlines()[0]}" for t in TASKS) +
        "\n\nThe needle tasks need lengths of about 300 tokens and up (512 and up is safe).")
    ap.add_argument("--model", required=True, help="the GGUF model whose tokenizer measures the contexts")
    ap.add_argument("--kvz", default=None,
                    help="the kvz tool (default: build/native/kvz in the repository, else ./kvz at the "
                         "repository's top (an in-tree build), else kvz on PATH)")
    ap.add_argument("--lengths", default="1024,2048,4096,8192",
                    help="target context lengths in tokens, comma-separated (default 1024,2048,4096,8192); "
                         "each context has between 0.97 x and 1 x its length")
    ap.add_argument("--per-length", type=int, default=1, help="contexts of each task per length (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="the seed of everything (default 0)")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task kinds (default all)")
    ap.add_argument("--out", required=True, help="the output file (.jsonl), or - for standard output")
    args = ap.parse_args()
    try:
        args.lengths = [int(x) for x in args.lengths.split(",")]
    except ValueError:
        ap.error(f"--lengths takes whole numbers separated by commas, not {args.lengths!r}")
    if any(x < 64 for x in args.lengths):
        ap.error("every length must be at least 64 tokens")
    if args.per_length < 1:
        ap.error("--per-length must be at least 1")
    args.tasks = [t for t in args.tasks.split(",") if t]
    bad = [t for t in args.tasks if t not in KINDS]
    if bad or not args.tasks:
        ap.error(f"unknown task {bad[0] if bad else '(none)'}; tasks: {', '.join(TASKS)}")
    if not os.path.isfile(args.model):
        ap.error(f"--model {args.model}: no such file")
    args.kvz = args.kvz or default_kvz()
    try:
        if args.out == "-":
            generate(args, sys.stdout)
        else:
            tmp = args.out + ".part"
            try:
                with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                    generate(args, f)
                os.replace(tmp, args.out)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
    except GenError as e:
        print(f"gen_tasks: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
