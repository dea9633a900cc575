/* A recursive-descent JSON reader (RFC 8259, with a depth limit) and a string escaper. */
#include "cli/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *p, *end, *start;
    char *err;
    size_t err_size;
    int depth;
} parser;

static int fail(parser *ps, const char *why)
{
    if (ps->err && !ps->err[0])
        snprintf(ps->err, ps->err_size, "offset %zu: %s", (size_t)(ps->p - ps->start), why);
    return 0;
}

static void ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int value(parser *ps, kvz_json *out);

/* Appends the UTF-8 form of code point c. */
static size_t put_utf8(char *o, unsigned c)
{
    if (c < 0x80)
        return o[0] = (char)c, 1;
    if (c < 0x800)
        return o[0] = (char)(0xC0 | c >> 6), o[1] = (char)(0x80 | (c & 63)), 2;
    if (c < 0x10000)
        return o[0] = (char)(0xE0 | c >> 12), o[1] = (char)(0x80 | (c >> 6 & 63)), o[2] = (char)(0x80 | (c & 63)), 3;
    o[0] = (char)(0xF0 | c >> 18), o[1] = (char)(0x80 | (c >> 12 & 63)), o[2] = (char)(0x80 | (c >> 6 & 63));
    o[3] = (char)(0x80 | (c & 63));
    return 4;
}

/* Reads the 4 hex digits of a \u escape that must end before stop (the string's closing quote).
 * Anything but a hex digit is refused: the first scan of string() took these 4 bytes for plain
 * characters, so letting one of them be a quote or a backslash would desynchronize the copy
 * from the length that scan allocated for. */
static int hex4(parser *ps, const char *stop, unsigned *c)
{
    if (stop - ps->p < 4)
        return fail(ps, "short \\u escape");
    *c = 0;
    for (int i = 0; i < 4; i++) {
        const char h = *ps->p;
        const int d = h >= '0' && h <= '9'   ? h - '0'
                      : h >= 'a' && h <= 'f' ? h - 'a' + 10
                      : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                             : -1;
        if (d < 0)
            return fail(ps, "bad \\u escape");
        *c = *c * 16 + (unsigned)d;
        ps->p++;
    }
    return 1;
}

static int string(parser *ps, char **out)
{
    ps->p++; /* the opening quote */
    /* the unescaped text is never longer than the escaped one (\uXXXX: 6 bytes -> at most 4) */
    const char *q = ps->p;
    while (q < ps->end && *q != '"')
        q += *q == '\\' && ps->end - q >= 2 ? 2 : 1;
    if (q >= ps->end)
        return fail(ps, "unterminated string");
    char *s = malloc((size_t)(q - ps->p) + 1), *o = s;
    if (!s)
        return fail(ps, "out of memory");
    /* the copy never passes q, the closing quote the scan found, so it stays inside the text and
     * inside s whatever the escapes hold */
    while (ps->p < q) {
        char ch = *ps->p++;
        if ((unsigned char)ch < 0x20) {
            free(s);
            return fail(ps, "control character in string");
        }
        if (ch != '\\') {
            *o++ = ch;
            continue;
        }
        ch = *ps->p++; /* the scan made sure a character follows a backslash before q */
        const char *simple = strchr("\"\\/bfnrt", ch);
        if (simple && ch) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            *o++ = map[simple - "\"\\/bfnrt"];
        } else if (ch == 'u') {
            unsigned c;
            if (!hex4(ps, q, &c)) {
                free(s);
                return 0;
            }
            if (c >= 0xD800 && c < 0xDC00 && q - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                unsigned lo;
                ps->p += 2;
                if (!hex4(ps, q, &lo)) {
                    free(s);
                    return 0;
                }
                c = lo >= 0xDC00 && lo < 0xE000 ? 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00) : 0xFFFD;
            } else if (c >= 0xD800 && c < 0xE000) {
                c = 0xFFFD; /* a lone surrogate */
            }
            o += put_utf8(o, c);
        } else {
            free(s);
            return fail(ps, "bad escape");
        }
    }
    ps->p++;
    *o = '\0';
    *out = s;
    return 1;
}

static int push(parser *ps, kvz_json *j, size_t *cap, kvz_json **slot)
{
    if (j->n_items == *cap) {
        const size_t nc = *cap ? 2 * *cap : 8;
        kvz_json *it = realloc(j->items, nc * sizeof *it);
        if (!it)
            return fail(ps, "out of memory");
        j->items = it, *cap = nc;
    }
    *slot = &j->items[j->n_items];
    memset(*slot, 0, sizeof **slot);
    return 1;
}

static int container(parser *ps, kvz_json *out, int object)
{
    if (++ps->depth > 64)
        return fail(ps, "nesting deeper than 64");
    out->type = object ? KVZ_JSON_OBJECT : KVZ_JSON_ARRAY;
    ps->p++;
    ws(ps);
    size_t cap = 0;
    const char close = object ? '}' : ']';
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++, ps->depth--;
        return 1;
    }
    for (;;) {
        kvz_json *slot = NULL;
        if (!push(ps, out, &cap, &slot))
            return 0;
        ws(ps);
        char *key = NULL;
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"' || !string(ps, &key))
                return fail(ps, "expected a member name");
            ws(ps);
            if (ps->p >= ps->end || *ps->p++ != ':') {
                free(key);
                return fail(ps, "expected ':'");
            }
        }
        out->n_items++;
        slot->key = key;
        if (!value(ps, slot))
            return 0;
        ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++, ps->depth--;
            return 1;
        }
        return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int value(parser *ps, kvz_json *out)
{
    ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end");
    const char c = *ps->p;
    if (c == '{' || c == '[')
        return container(ps, out, c == '{');
    if (c == '"') {
        out->type = KVZ_JSON_STRING;
        return string(ps, &out->string);
    }
    static const struct {
        const char *word;
        kvz_json_type type;
        double v;
    } lits[] = {{"true", KVZ_JSON_BOOL, 1}, {"false", KVZ_JSON_BOOL, 0}, {"null", KVZ_JSON_NULL, 0}};
    for (size_t i = 0; i < 3; i++) {
        const size_t n = strlen(lits[i].word);
        if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, lits[i].word, n)) {
            out->type = lits[i].type, out->number = lits[i].v, ps->p += n;
            return 1;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64];
        size_t n = 0;
        while (ps->p + n < ps->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", ps->p[n]))
            n++;
        memcpy(buf, ps->p, n);
        buf[n] = '\0';
        char *e;
        out->number = strtod(buf, &e);
        if (e != buf + n || !isfinite(out->number))
            return fail(ps, "bad number");
        out->type = KVZ_JSON_NUMBER;
        ps->p += n;
        return 1;
    }
    return fail(ps, "unexpected character");
}

kvz_json *kvz_json_parse(const char *text, size_t len, char *err, size_t err_size)
{
    if (err && err_size)
        err[0] = '\0';
    kvz_json *j = calloc(1, sizeof *j);
    parser ps = {text, text + len, text, err, err_size, 0};
    if (!j) {
        fail(&ps, "out of memory");
        return NULL;
    }
    if (!value(&ps, j)) {
        kvz_json_free(j);
        return NULL;
    }
    ws(&ps);
    if (ps.p != ps.end) {
        fail(&ps, "trailing characters");
        kvz_json_free(j);
        return NULL;
    }
    return j;
}

static void free_inner(kvz_json *j)
{
    for (size_t i = 0; i < j->n_items; i++)
        free_inner(&j->items[i]);
    free(j->items), free(j->string), free(j->key);
}

void kvz_json_free(kvz_json *j)
{
    if (!j)
        return;
    free_inner(j);
    free(j);
}

const kvz_json *kvz_json_get(const kvz_json *obj, const char *key)
{
    if (!obj || obj->type != KVZ_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n_items; i++)
        if (obj->items[i].key && !strcmp(obj->items[i].key, key))
            return &obj->items[i];
    return NULL;
}

int kvz_json_int_array(const kvz_json *j, int32_t **out, size_t *n)
{
    if (!j || j->type != KVZ_JSON_ARRAY)
        return -1;
    int32_t *v = malloc((j->n_items ? j->n_items : 1) * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < j->n_items; i++) {
        const double d = j->items[i].number;
        if (j->items[i].type != KVZ_JSON_NUMBER || d != floor(d) || d < -2147483648.0 || d > 2147483647.0) {
            free(v);
            return -1;
        }
        v[i] = (int32_t)d;
    }
    *out = v, *n = j->n_items;
    return 0;
}

void kvz_json_write_ids(FILE *f, const int32_t *ids, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? ", " : "", (int)ids[i]);
    fputc(']', f);
}

void kvz_json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}
