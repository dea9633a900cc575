/* kvz demo: KVzip on SmolLM2-135M-Instruct over a generated document of facts, with eight questions answered
 * from the full and the compressed cache side by side; the stories260K evaluation when that model is absent. */
#include <ctype.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_lm.h"
#include "cli/json.h"
#include "cli/model_dir.h"
#include "kvz_model.h"

#define SMOLLM2_FILE "SmolLM2-135M-Instruct.Q4_1.gguf"
#define N_PEOPLE     72
#define N_EVENTS     6
#define N_QUESTIONS  8
#define MAX_ANSWER   48

/* ---- the document: the records of an invented town, the same bytes on every run ---- */

/* as many first names as people, each used once: the entries repeat the full name, and a tiny model
   confuses people who share one */
static const char *const first_names[] = {
    "Mara",   "Tomas",  "Elsie",  "Bram",   "Ilse",   "Corin",  "Nell",  "Osric", "Petra",  "Anselm", "Wilma",
    "Jory",   "Greta",  "Silas",  "Fenna",  "Hollis", "Agnes",  "Rufus", "Lotte", "Emeric", "Dora",   "Caspar",
    "Ysolde", "Piet",   "Hugo",   "Ada",    "Linus",  "Maud",   "Felix", "Rosa",  "Otto",   "Clara",  "Ivo",
    "Edith",  "Jonas",  "Hilde",  "Viktor", "Bea",    "Arvid",  "Thea",  "Leon",  "Ida",    "Gustav", "Nora",
    "Konrad", "Elin",   "Magnus", "Vera",   "Oskar",  "Alma",   "Emil",  "Frida", "Sven",   "Ruth",   "Karl",
    "Lena",   "Anton",  "Sofie",  "Jakob",  "Greer",  "Tilda",  "Ansel", "Bodil", "Cyril",  "Dagny",  "Elias",
    "Freya",  "Gideon", "Halla",  "Ingmar", "Juno",   "Kasimir"};
/* surnames are built from two syllables, so that every person has one of their own */
static const char *const name_heads[] = {"Quill", "Ard",  "Bex", "Marl", "Thorn", "Pell", "Wick", "Dun",
                                         "Hask",  "Carr", "Bel", "Fenn", "Grim",  "Lud",  "Stan", "Tull"};
static const char *const name_tails[] = {"on", "ley", "ford", "wick", "by", "er", "ham", "more"};
static const char *const cities[] = {"Lisbon", "Oslo",   "Cairo",   "Dublin",  "Vienna",  "Naples",
                                     "Bergen", "Quebec", "Seville", "Riga",    "Tallinn", "Porto",
                                     "Lyon",   "Ghent",  "Zagreb",  "Antwerp", "Leipzig", "Bruges"};
static const char *const jobs[] = {"glassblower",   "baker",    "carpenter",  "beekeeper",   "clockmaker",
                                   "ferryman",      "potter",   "blacksmith", "librarian",   "tailor",
                                   "fisherman",     "weaver",   "cobbler",    "brewer",      "miller",
                                   "schoolteacher", "midwife",  "bookbinder", "candlemaker", "locksmith",
                                   "apothecary",    "shepherd", "stonemason", "printer"};
static const char *const pets[] = {"parrot", "tortoise", "goat",   "cat",   "dog",    "hedgehog",
                                   "rabbit", "goldfish", "donkey", "raven", "ferret", "canary"};
static const char *const colours[] = {"red",    "blue",  "green", "yellow", "purple",
                                      "orange", "white", "black", "silver", "brown"};
static const char *const buildings[N_EVENTS] = {"the stone bridge over the river Wren",
                                                "the clock tower",
                                                "the town library",
                                                "the windmill on Hob Hill",
                                                "the lighthouse",
                                                "the covered market"};

typedef struct person {
    const char *first, *city, *job, *pet, *colour;
    char last[16];
    int year;
} person;

typedef struct event {
    int year;
    size_t builder; /* a person of the records */
} event;

typedef struct question {
    char text[96], expected[32];
} question;

typedef struct doc {
    char *text;
    size_t len, cap;
    int oom;
    person people[N_PEOPLE];
    event events[N_EVENTS];
    question q[N_QUESTIONS];
} doc;

/* splitmix64: a fixed seed gives the same document everywhere */
static uint32_t draw(uint64_t *s, uint32_t n)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint32_t)((z ^ (z >> 31)) % n);
}

#define PICK(s, table) table[draw(s, sizeof table / sizeof table[0])]

static void put(doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(doc *d, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !d->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        const int n = vsnprintf(d->text + d->len, d->cap - d->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            d->oom = 1;
        } else if ((size_t)n < d->cap - d->len) {
            d->len += (size_t)n;
            return;
        } else {
            const size_t cap = 2 * (d->cap + (size_t)n);
            char *t = realloc(d->text, cap);
            if (!t)
                d->oom = 1;
            else
                d->text = t, d->cap = cap;
        }
    }
}

static const char *an(const char *noun) { return strchr("aeiou", noun[0]) ? "an" : "a"; }

/* One entry. The templates vary the wording and the order of the facts; every sentence names the
   person in full, which is what lets a 135M model tie a fact to its person at all. */
static void put_person(doc *d, const person *p, unsigned form)
{
    char n[48];
    snprintf(n, sizeof n, "%s %s", p->first, p->last);
    switch (form % 4) {
    case 0:
        put(d,
            "%s was born in %s and came to Wrenfield in %d. %s works as %s %s. %s keeps %s %s. %s's favourite "
            "colour is %s.",
            n, p->city, p->year, n, an(p->job), p->job, n, an(p->pet), p->pet, n, p->colour);
        break;
    case 1:
        put(d, "%s is %s %s from %s. %s arrived in Wrenfield in %d, has %s %s and likes %s best.", n,
            an(p->job), p->job, p->city, n, p->year, an(p->pet), p->pet, p->colour);
        break;
    case 2:
        put(d,
            "In %d, %s moved to Wrenfield from %s. %s is %s %s. %s keeps %s %s, and %s's favourite colour is "
            "%s.",
            p->year, n, p->city, n, an(p->job), p->job, n, an(p->pet), p->pet, n, p->colour);
        break;
    default:
        put(d,
            "%s, %s %s, came to Wrenfield from %s in %d. The pet of %s is %s %s. The favourite colour of %s is "
            "%s.",
            n, an(p->job), p->job, p->city, p->year, n, an(p->pet), p->pet, n, p->colour);
        break;
    }
}

/* The questions: which fact of which entry, from the beginning of the document to its end. SmolLM2-135M
   recalls about one fact in ten of this document from the full cache, mostly near its end; these eight are
   among those it recalls, so that the comparison is about answers worth keeping (doc/runner.md). */
typedef enum { ASK_JOB, ASK_CITY, ASK_PET, ASK_COLOUR, ASK_YEAR, ASK_BUILT_YEAR, ASK_BUILDER } ask_kind;
static const struct {
    ask_kind kind;
    size_t index; /* a person, or an event for ASK_BUILT_YEAR and ASK_BUILDER */
} asks[N_QUESTIONS] = {{ASK_CITY, 4},       {ASK_BUILDER, 0}, {ASK_PET, 9},  {ASK_COLOUR, 26},
                       {ASK_BUILT_YEAR, 2}, {ASK_CITY, 55},   {ASK_JOB, 60}, {ASK_YEAR, 71}};

static int make_doc(doc *d)
{
    memset(d, 0, sizeof *d);
    uint64_t s = 20260101;
    unsigned char used[sizeof name_heads / sizeof name_heads[0]][sizeof name_tails / sizeof name_tails[0]] = {
        {0}};
    unsigned char first_used[sizeof first_names / sizeof first_names[0]] = {0};
    for (size_t i = 0; i < N_PEOPLE; i++) {
        person *p = &d->people[i];
        size_t h, t;
        do
            h = draw(&s, sizeof name_heads / sizeof name_heads[0]),
            t = draw(&s, sizeof name_tails / sizeof name_tails[0]);
        while (used[h][t]);
        used[h][t] = 1;
        snprintf(p->last, sizeof p->last, "%s%s", name_heads[h], name_tails[t]);
        size_t f;
        do /* a first name of their own */
            f = draw(&s, sizeof first_names / sizeof first_names[0]);
        while (first_used[f]);
        first_used[f] = 1;
        p->first = first_names[f];
        p->city = PICK(&s, cities);
        p->job = PICK(&s, jobs);
        p->pet = PICK(&s, pets);
        p->colour = PICK(&s, colours);
        p->year = 1840 + (int)draw(&s, 60);
    }
    for (size_t e = 0; e < N_EVENTS; e++) {
        /* a builder who appears before the event, in a year after they arrived */
        const size_t at = (e + 1) * N_PEOPLE / (N_EVENTS + 1);
        d->events[e].builder = draw(&s, (uint32_t)at);
        d->events[e].year = d->people[d->events[e].builder].year + 3 + (int)draw(&s, 20);
    }
    put(d, "The records of the town of Wrenfield\n\n"
           "Wrenfield is a small market town on the river Wren. Its records were kept by the town clerk, who "
           "wrote "
           "down everyone who came to live in the town: where they were born, the year they arrived, the work "
           "they "
           "do, the animal they keep and the colour they like best. The clerk also noted when the town's "
           "buildings "
           "were built and by whom. The entries follow in the order in which they were written.\n\n");
    size_t next_event = 0;
    for (size_t i = 0; i < N_PEOPLE; i++) {
        put_person(d, &d->people[i], draw(&s, 4));
        put(d, "\n\n");
        if (next_event < N_EVENTS && i + 1 == (next_event + 1) * N_PEOPLE / (N_EVENTS + 1)) {
            const event *e = &d->events[next_event];
            const person *b = &d->people[e->builder];
            put(d, "In %d, %s was built by %s %s.\n\n", e->year, buildings[next_event], b->first, b->last);
            next_event++;
        }
    }
    for (size_t k = 0; k < N_QUESTIONS; k++) {
        question *q = &d->q[k];
        const person *p = &d->people[asks[k].index % N_PEOPLE];
        const event *e = &d->events[asks[k].index % N_EVENTS];
        switch (asks[k].kind) {
        case ASK_JOB:
            snprintf(q->text, sizeof q->text, "What is %s %s's job?", p->first, p->last);
            snprintf(q->expected, sizeof q->expected, "%s", p->job);
            break;
        case ASK_CITY:
            snprintf(q->text, sizeof q->text, "In which city was %s %s born?", p->first, p->last);
            snprintf(q->expected, sizeof q->expected, "%s", p->city);
            break;
        case ASK_PET:
            snprintf(q->text, sizeof q->text, "What pet does %s %s keep?", p->first, p->last);
            snprintf(q->expected, sizeof q->expected, "%s", p->pet);
            break;
        case ASK_COLOUR:
            snprintf(q->text, sizeof q->text, "What is %s %s's favourite colour?", p->first, p->last);
            snprintf(q->expected, sizeof q->expected, "%s", p->colour);
            break;
        case ASK_YEAR:
            snprintf(q->text, sizeof q->text, "In which year did %s %s arrive in Wrenfield?", p->first,
                     p->last);
            snprintf(q->expected, sizeof q->expected, "%d", p->year);
            break;
        case ASK_BUILT_YEAR:
            snprintf(q->text, sizeof q->text, "In which year was %s built?",
                     buildings[asks[k].index % N_EVENTS]);
            snprintf(q->expected, sizeof q->expected, "%d", e->year);
            break;
        case ASK_BUILDER:
            snprintf(q->text, sizeof q->text, "Who built %s?", buildings[asks[k].index % N_EVENTS]);
            snprintf(q->expected, sizeof q->expected, "%s", d->people[e->builder].last);
            break;
        }
    }
    return d->oom ? kvz_cli_error("out of memory") : 0;
}

/* ---- the run ---- */

typedef struct answer {
    char *text; /* one line */
    int has_fact;
} answer;

typedef struct side {
    kvz_cache *cache;
    kvz_lm_compress_report rep;
    kvz_cache_stats stats;
    double decode_s;
    size_t decode_steps;
    answer a[N_QUESTIONS];
    size_t correct;
} side;

static int contains_nocase(const char *hay, const char *needle)
{
    const size_t n = strlen(needle);
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (i < n && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* Greedy answer of one question through its own query tail; the generation steps are timed. */
static kvz_status ask_one(kvz_lm *lm, side *sd, const int32_t *ids, size_t n, float *logits, int32_t *out,
                          size_t *n_out)
{
    kvz_query *q = NULL;
    kvz_status st = kvz_query_create(sd->cache, &q);
    if (st == KVZ_OK)
        st = kvz_lm_prefill(lm, NULL, q, ids, n, logits);
    const kvz_lm_gen_opts go = {.struct_size = sizeof go, .max_tokens = MAX_ANSWER};
    const double t0 = omp_get_wtime();
    if (st == KVZ_OK)
        st = kvz_lm_decode(lm, NULL, q, logits, &go, out, n_out);
    /* the first token comes from the prefill's logits: generation ran one step per later token */
    sd->decode_s += omp_get_wtime() - t0;
    sd->decode_steps += *n_out ? *n_out - 1 : 0;
    kvz_query_destroy(q);
    return st;
}

static int to_line(const kvz_lm *lm, int32_t *out, size_t n, char **line)
{
    if (n && kvz_lm_is_eog(lm, out[n - 1]))
        n--; /* the end-of-turn token ends the answer; it is not part of it */
    if (kvz_cli_lm_text(lm, out, n, 0, line))
        return 1;
    char *s = *line, *w = s;
    for (const char *r = s; *r; r++) /* one line: runs of whitespace become one space */
        if (!isspace((unsigned char)*r))
            *w++ = *r;
        else if (w > s && w[-1] != ' ')
            *w++ = ' ';
    while (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
    return 0;
}

typedef struct demo_args {
    const char *model, *weights;
    double ratio;
    int json;
} demo_args;

static double per_ms(double s, size_t n) { return n ? 1e3 * s / (double)n : 0; }

static double mb(size_t bytes) { return (double)bytes / 1e6; }

static void print_text(const demo_args *a, const doc *d, size_t n_c, const side *full, const side *kz,
                       size_t identical, double build_full_s)
{
    const kvz_lm_compress_report *r = &kz->rep;
    const char *name = kvz_cli_basename(a->model);
    printf("libkvz demo: KVzip on %s (%d threads, %s kernels)\n\n", name, kvz_num_threads(),
           kvz_isa_name(kvz_isa_active()));
    const int name_len = (int)strcspn(name, "."); /* the model's name without the file's quantization */
    printf(
        "The task: %.*s reads a document of invented facts (the records of the town of Wrenfield,\n"
        "%zu tokens) into its KV cache. KVzip compresses that cache once, with no question known: it scores\n"
        "every cached key/value pair by the attention it gets while the model repeats the document, and keeps\n"
        "the top %.0f %%. Then %d questions about the document are answered from the full cache and from the\n"
        "compressed one (greedy, at most %d tokens, each question in its own query tail so that the answers\n"
        "do not see each other).\n\n",
        name_len, name, n_c, 100 * a->ratio, N_QUESTIONS, MAX_ANSWER);
    printf("%-26s %14s %14s\n", "", "full cache", "KVzip cache");
    printf("%-26s %11.1f MB %11.1f MB   (%.1f %% of the full cache)\n", "KV bytes", mb(full->stats.bytes_used),
           mb(kz->stats.bytes_used), 100.0 * (double)kz->stats.bytes_used / (double)full->stats.bytes_used);
    printf("%-26s %14.3f %14.3f   (the system prompt's rows are always kept)\n", "kept share of the KV rows",
           full->stats.kept_ratio, kz->stats.kept_ratio);
    printf("%-26s %14.1f %14.1f   (while answering: %zu and %zu steps)\n", "decode ms/token",
           per_ms(full->decode_s, full->decode_steps), per_ms(kz->decode_s, kz->decode_steps),
           full->decode_steps, kz->decode_steps);
    printf("%-26s %12.2f s %12.2f s   (full: a plain prefill; KVzip: prefill,\n", "building the cache",
           build_full_s, r->prefill_s + r->score_s + r->select_s);
    printf("%-26s %14s %14s    scoring passes and selection)\n", "", "", "");
    printf("\nKVzip's compression: prefill %.2f s, %zu scoring passes %.2f s (%.2fx the prefill), selection "
           "%.3f s;\n"
           "in all %.2fx a plain prefill. All times are taken after an untimed warm-up prefill. (The cost\n"
           "in prefills depends on the model's shape: kvz bench model measures it on an 8B-shaped model.)\n\n",
           r->prefill_s, r->passes, r->score_s, r->prefill_s > 0 ? r->score_s / r->prefill_s : 0, r->select_s,
           r->prefill_s > 0 ? (r->prefill_s + r->score_s + r->select_s) / r->prefill_s : 0);
    printf("[+] the answer contains the expected fact, [ ] it does not; = the same answer as the full "
           "cache's\n\n");
    for (size_t qi = 0; qi < N_QUESTIONS; qi++) {
        const answer *af = &full->a[qi], *ak = &kz->a[qi];
        printf("%zu. %s   (expected: %s)\n", qi + 1, d->q[qi].text, d->q[qi].expected);
        printf("   full   [%c]   %.*s%s\n", af->has_fact ? '+' : ' ', 80, af->text,
               strlen(af->text) > 80 ? "..." : "");
        printf("   KVzip  [%c] %c %.*s%s\n", ak->has_fact ? '+' : ' ', strcmp(af->text, ak->text) ? ' ' : '=',
               80, ak->text, strlen(ak->text) > 80 ? "..." : "");
    }
    printf(
        "\nVerdict: holding %.0f %% of the KV bytes, KVzip's answers contain the expected fact %zu times of "
        "%d\n"
        "(the full cache's %zu of %d), and %zu of its %d answers are word for word the full cache's. A good\n"
        "result keeps the full cache's answers, right or wrong.\n",
        100.0 * (double)kz->stats.bytes_used / (double)full->stats.bytes_used, kz->correct, N_QUESTIONS,
        full->correct, N_QUESTIONS, identical, N_QUESTIONS);
}

static void print_json(const demo_args *a, const doc *d, size_t n_c, const side *full, const side *kz,
                       size_t identical, double build_full_s)
{
    const kvz_lm_compress_report *r = &kz->rep;
    printf("{\"model\": ");
    kvz_json_write_string(stdout, a->model);
    printf(", \"document_tokens\": %zu, \"questions\": %d, \"ratio\": %g, \"kv_bytes_full\": %zu, "
           "\"kv_bytes_kvzip\": %zu, \"kept_ratio_full\": %.6f, \"kept_ratio_kvzip\": %.6f, \"full_build_s\": "
           "%.4f, "
           "\"prefill_s\": %.4f, \"score_s\": %.4f, \"select_s\": %.4f, \"passes\": %zu, "
           "\"score_over_prefill\": %.4f, "
           "\"decode_ms_per_token_full\": %.3f, \"decode_ms_per_token_kvzip\": %.3f, \"answers\": [",
           n_c, N_QUESTIONS, a->ratio, full->stats.bytes_used, kz->stats.bytes_used, full->stats.kept_ratio,
           kz->stats.kept_ratio, build_full_s, r->prefill_s, r->score_s, r->select_s, r->passes,
           r->prefill_s > 0 ? r->score_s / r->prefill_s : 0, per_ms(full->decode_s, full->decode_steps),
           per_ms(kz->decode_s, kz->decode_steps));
    for (size_t qi = 0; qi < N_QUESTIONS; qi++) {
        printf("%s{\"question\": ", qi ? ", " : "");
        kvz_json_write_string(stdout, d->q[qi].text);
        printf(", \"expected\": ");
        kvz_json_write_string(stdout, d->q[qi].expected);
        printf(", \"full\": ");
        kvz_json_write_string(stdout, full->a[qi].text);
        printf(", \"kvzip\": ");
        kvz_json_write_string(stdout, kz->a[qi].text);
        printf(", \"full_has_fact\": %s, \"kvzip_has_fact\": %s}", full->a[qi].has_fact ? "true" : "false",
               kz->a[qi].has_fact ? "true" : "false");
    }
    printf("], \"full_correct\": %zu, \"kvzip_correct\": %zu, \"identical\": %zu}\n", full->correct,
           kz->correct, identical);
}

static int run_demo(const demo_args *a)
{
    kvz_lm *lm = NULL;
    doc *d = calloc(1, sizeof *d);
    int32_t *ctx = NULL;
    size_t n_c = 0;
    side sides[2] = {{0}};
    float *logits = NULL;
    int32_t out[MAX_ANSWER];
    if (!d)
        return kvz_cli_error("out of memory");
    int rc = make_doc(d);
    if (!rc)
        rc = kvz_cli_open_lm(a->model, a->weights, 0, 0, &lm);
    kvz_lm_info mi = {.struct_size = sizeof mi};
    if (!rc)
        kvz_lm_get_info(lm, &mi);
    /* the document is plain text: no BOS (the system prompt opens the cache), no special tokens */
    if (!rc)
        rc = kvz_cli_lm_tokenize(lm, d->text, 0, &ctx, &n_c);
    if (!rc && !(logits = malloc(mi.n_vocab * sizeof *logits)))
        rc = kvz_cli_error("out of memory");
    const kvz_lm_compress_opts pol[2] = {
        {.struct_size = sizeof pol[0], .policy = KVZ_POLICY_FULL},
        {.struct_size = sizeof pol[1], .policy = KVZ_POLICY_KVZIP_PAIR, .ratio = a->ratio}};
    /* both builds timed after the same warm-up, so that neither carries the process's one-time costs */
    if (!rc)
        rc = kvz_cli_lm_warm_up(lm, ctx, n_c, &pol[0]);
    double build_full_s = 0;
    for (int k = 0; k < 2 && !rc; k++) {
        const double t0 = omp_get_wtime();
        sides[k].rep.struct_size = sizeof sides[k].rep;
        kvz_status st = kvz_lm_compress_ids(lm, ctx, n_c, &pol[k], &sides[k].cache, &sides[k].rep);
        if (!k)
            build_full_s = omp_get_wtime() - t0;
        sides[k].stats.struct_size = sizeof sides[k].stats;
        if (st == KVZ_OK)
            st = kvz_cache_get_stats(sides[k].cache, &sides[k].stats);
        if (st != KVZ_OK)
            rc = kvz_cli_error("%s cache: %s (%s)", k ? "KVzip" : "full", kvz_last_error(), kvz_strerror(st));
    }
    size_t identical = 0;
    for (size_t qi = 0; !rc && qi < N_QUESTIONS; qi++) {
        int32_t *ids = NULL;
        size_t n = 0;
        rc = kvz_cli_lm_question(lm, d->q[qi].text, NULL, 0, &ids, &n);
        for (int k = 0; k < 2 && !rc; k++) {
            size_t n_out = 0;
            const kvz_status st = ask_one(lm, &sides[k], ids, n, logits, out, &n_out);
            if (st != KVZ_OK)
                rc = kvz_cli_error("question %zu: %s (%s)", qi + 1, kvz_last_error(), kvz_strerror(st));
            answer *an = &sides[k].a[qi];
            if (!rc && !(rc = to_line(lm, out, n_out, &an->text))) {
                an->has_fact = contains_nocase(an->text, d->q[qi].expected);
                sides[k].correct += (size_t)an->has_fact;
            }
        }
        if (!rc)
            identical += !strcmp(sides[0].a[qi].text, sides[1].a[qi].text);
        free(ids);
    }
    if (!rc)
        (a->json ? print_json : print_text)(a, d, n_c, &sides[0], &sides[1], identical, build_full_s);
    for (int k = 0; k < 2; k++) {
        for (size_t qi = 0; qi < N_QUESTIONS; qi++)
            free(sides[k].a[qi].text);
        kvz_cache_destroy(sides[k].cache);
    }
    free(logits), free(ctx);
    if (d)
        free(d->text);
    free(d);
    kvz_lm_close(lm);
    return rc;
}

/* ---- options and the fallback ---- */

static int usage(FILE *f)
{
    fprintf(
        f,
        "usage: kvz demo [--model M] [--ratio R] [--weights auto|f32|bf16] [--json]\n"
        "       kvz demo --stories [the stories260K demo's options: kvz demo --stories --help]\n"
        "  SmolLM2-135M-Instruct reads a generated document of about 3,600 tokens; KVzip compresses its KV\n"
        "  cache to the kept ratio R, in (0, 1] (default 0.3: 30 %%), and eight questions are answered from\n"
        "  the full and from the compressed cache side by side. M: a SmolLM2-style instruct GGUF; default\n"
        "  $KVZ_MODEL_DIR/" SMOLLM2_FILE ", else ${XDG_CACHE_HOME:-~/.cache}/kvz/models/ (fetched by\n"
        "  .ci/fetch-models smollm2). Without it, or with --stories, the stories260K evaluation: every\n"
        "  policy at kept ratios 0.5, 0.3 and 0.2 on the shared task file.\n");
    return f == stdout ? 0 : 2;
}

int kvz_cmd_demo(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--stories")) {
            /* the stories demo sees every other option as given */
            memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof *argv);
            return kvz_cli_demo_stories(argc - 1, argv);
        }
    char def[4096];
    kvz_model_cache_path(SMOLLM2_FILE, def, sizeof def);
    demo_args a = {.model = def, .weights = "auto", .ratio = 0.3};
    int other = 0, model_at = 0; /* an option of the stories demo; where --model is */
    if (kvz_cli_wants_help(argc, argv))
        return usage(stdout);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--json")) {
            a.json = 1;
            continue;
        }
        if (!v)
            return kvz_cli_usage_error("demo", "%s needs a value, or is not an option", o);
        i++;
        if (!strcmp(o, "--model"))
            a.model = v, model_at = i - 1;
        else if (!strcmp(o, "--weights"))
            a.weights = v;
        else if (!strcmp(o, "--ratio")) {
            if (kvz_cli_parse_ratio(v, o, &a.ratio))
                return 2;
        } else
            other = i - 1;
    }
    if (access(a.model, R_OK) != 0) {
        fprintf(a.json ? stderr : stdout,
                "kvz demo: %s is absent (fetch it with .ci/fetch-models smollm2); running the stories260K demo "
                "instead.\n\n",
                a.model);
        if (model_at) /* the missing model is not the stories demo's */
            memmove(argv + model_at, argv + model_at + 2, (size_t)(argc - model_at - 1) * sizeof *argv),
                argc -= 2;
        return kvz_cli_demo_stories(argc, argv);
    }
    if (other)
        return kvz_cli_usage_error("demo",
                                   "%s is not an option of this demo; of the stories260K demo, it is given as "
                                   "kvz demo --stories %s ...",
                                   argv[other], argv[other]);
    return run_demo(&a);
}
