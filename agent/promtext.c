/* promtext.c -- the Prometheus text format (0.0.4), one line at a time,
 * into samples handed to a callback. Does not fetch anything, keep any
 * sample after the callback returns, or check rules that span lines. */
#include "promtext.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Where the current line's sample is unescaped. One per parse, so that a
 * scrape of a million lines costs one allocation; about 66 KiB, because a
 * sample may carry PROMTEXT_MAX_LABELS labels of PROMTEXT_MAX_STR bytes. */
struct promtext_scratch {
    char name[PROMTEXT_MAX_STR + 1];
    char lname[PROMTEXT_MAX_LABELS][PROMTEXT_MAX_STR + 1];
    char lvalue[PROMTEXT_MAX_LABELS][PROMTEXT_MAX_STR + 1];
    char num[PROMTEXT_MAX_NUM + 1];
    struct promtext_label labels[PROMTEXT_MAX_LABELS];
};

/* A cursor over one line, without its '\n' (and '\r'). */
struct pt_cur {
    const char *p;
    const char *end;
};

enum pt_kind { PT_SKIP, PT_SAMPLE, PT_BAD };

static int pt_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void pt_skip_blanks(struct pt_cur *c)
{
    while (c->p < c->end && pt_blank(*c->p))
        c->p++;
}

static int pt_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int pt_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Metric names may hold ':' (recording rules); label names may not. */
static int pt_name_char(char c, int first, int colon)
{
    return pt_alpha(c) || (!first && pt_digit(c)) || (colon && c == ':');
}

/* Reads a name at the cursor into @out (PROMTEXT_MAX_STR + 1 bytes, or
 * NULL to only skip it). NULL on success, else why the line is bad. */
static const char *pt_name(struct pt_cur *c, int colon, char *out)
{
    const char *s = c->p;
    size_t n;

    while (c->p < c->end && pt_name_char(*c->p, c->p == s, colon))
        c->p++;
    n = (size_t)(c->p - s);
    if (n == 0)
        return colon ? "bad metric name" : "bad label name";
    if (n > PROMTEXT_MAX_STR)
        return "name over the length cap";
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return NULL;
}

/* Strict UTF-8 (RFC 3629), as the wire validator wants it: a label value
 * that is not would make the collector refuse the whole batch. */
static int pt_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        k = util_utf8_char(s + i, n - i, NULL);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* Reads a quoted label value, the cursor on its opening '"', unescaping
 * \\ \" and \n into @out (PROMTEXT_MAX_STR + 1 bytes). */
static const char *pt_label_value(struct pt_cur *c, char *out)
{
    size_t n = 0;

    c->p++;                             /* the opening quote */
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;

        if (ch == '\\') {
            if (c->p == c->end)
                break;
            ch = *c->p++;
            if (ch == 'n')
                ch = '\n';
            else if (ch != '\\' && ch != '"')
                return "bad escape in label value";
        } else if (ch == '\0') {
            return "NUL byte in label value";
        }
        if (n == PROMTEXT_MAX_STR)
            return "label value over the length cap";
        out[n++] = ch;
    }
    if (c->p == c->end)
        return "unterminated label value";
    c->p++;                             /* the closing quote */
    out[n] = '\0';
    if (!pt_utf8_valid((const unsigned char *)out, n))
        return "label value is not UTF-8";
    return NULL;
}

/* Reads "{name="value", ...}" with the cursor on the '{'. */
static const char *pt_labels(struct pt_cur *c, struct promtext_scratch *sc,
                             size_t *n_out)
{
    size_t n = 0;
    const char *why;

    c->p++;                             /* the '{' */
    for (;;) {
        pt_skip_blanks(c);
        if (c->p == c->end)
            return "unterminated label set";
        if (*c->p == '}')
            break;                      /* "{}", or a comma before '}' */
        if (n == PROMTEXT_MAX_LABELS)
            return "too many labels";
        why = pt_name(c, 0, sc->lname[n]);
        if (why)
            return why;
        for (size_t i = 0; i < n; i++)
            if (strcmp(sc->lname[i], sc->lname[n]) == 0)
                return "label given twice";
        pt_skip_blanks(c);
        if (c->p == c->end || *c->p != '=')
            return "expected '=' after a label name";
        c->p++;
        pt_skip_blanks(c);
        if (c->p == c->end || *c->p != '"')
            return "label value not quoted";
        why = pt_label_value(c, sc->lvalue[n]);
        if (why)
            return why;
        sc->labels[n].name = sc->lname[n];
        sc->labels[n].value = sc->lvalue[n];
        n++;
        pt_skip_blanks(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}')
            break;
        return "expected ',' or '}' after a label";
    }
    c->p++;                             /* the '}' */
    *n_out = n;
    return NULL;
}

/* The token at the cursor, up to a blank or the end of the line. */
static size_t pt_token(struct pt_cur *c, const char **tok)
{
    const char *s = c->p;

    while (c->p < c->end && !pt_blank(*c->p))
        c->p++;
    *tok = s;
    return (size_t)(c->p - s);
}

/* A value as Go's ParseFloat reads it (the format's definition), NaN and
 * [+-]Inf included. strtod takes a little more ("nan(...)", hex without
 * an exponent); the parenthesis is refused, the hex is harmless. strtod
 * follows LC_NUMERIC, and the agent never leaves the "C" locale. */
static const char *pt_value(struct pt_cur *c, char *num, double *out)
{
    const char *tok;
    size_t n = pt_token(c, &tok);
    char *end;
    double v;

    if (n == 0)
        return "missing value";
    if (n > PROMTEXT_MAX_NUM)
        return "value over the length cap";
    memcpy(num, tok, n);
    num[n] = '\0';
    if (memchr(num, '(', n))
        return "bad value";
    errno = 0;
    v = strtod(num, &end);
    if (end != num + n || (errno == ERANGE && isinf(v)))
        return "bad value";
    *out = v;
    return NULL;
}

/* An int64 of milliseconds with an optional sign. */
static const char *pt_timestamp(struct pt_cur *c, int64_t *out)
{
    const char *tok;
    size_t n = pt_token(c, &tok), i = 0;
    int neg = 0;
    uint64_t v = 0, lim;

    if (n > 0 && (tok[0] == '-' || tok[0] == '+')) {
        neg = tok[0] == '-';
        i = 1;
    }
    if (i == n)
        return "bad timestamp";
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d;

        if (!pt_digit(tok[i]))
            return "bad timestamp";
        d = (unsigned)(tok[i] - '0');
        if (v > (lim - d) / 10)
            return "timestamp out of range";
        v = v * 10 + d;
    }
    /* -(INT64_MAX + 1) without signed overflow. */
    *out = neg ? (v == 0 ? 0 : -(int64_t)(v - 1) - 1) : (int64_t)v;
    return NULL;
}

static int pt_ieq(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i];

        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != b[i])
            return 0;
    }
    return 1;
}

/* HELP text may hold only the escapes \\ and \n. */
static const char *pt_help_text(const struct pt_cur *c)
{
    for (const char *p = c->p; p < c->end; p++) {
        if (*p != '\\')
            continue;
        if (p + 1 == c->end || (p[1] != '\\' && p[1] != 'n'))
            return "bad escape in HELP text";
        p++;
    }
    return NULL;
}

/* A comment, the cursor past its '#'. "# HELP name text" and "# TYPE name
 * type" must be well formed (so a broken exporter shows in the count);
 * anything else after '#' is free text. */
static const char *pt_comment(struct pt_cur *c)
{
    static const char *const types[] = { "counter", "gauge", "histogram",
                                         "summary", "untyped", NULL };
    const char *tok, *why;
    size_t n;
    int help;

    pt_skip_blanks(c);
    n = pt_token(c, &tok);
    help = n == 4 && memcmp(tok, "HELP", 4) == 0;
    if (!help && !(n == 4 && memcmp(tok, "TYPE", 4) == 0))
        return NULL;
    pt_skip_blanks(c);
    if (c->p == c->end)
        return NULL;                    /* "# HELP" alone: just a comment */
    why = pt_name(c, 1, NULL);
    if (why)
        return help ? "bad metric name in HELP" : "bad metric name in TYPE";
    if (c->p < c->end && !pt_blank(*c->p))
        return help ? "bad metric name in HELP" : "bad metric name in TYPE";
    pt_skip_blanks(c);
    if (help)
        return pt_help_text(c);
    n = pt_token(c, &tok);
    pt_skip_blanks(c);
    if (n == 0)
        return "missing metric type";
    if (c->p != c->end)
        return "unknown metric type";
    for (size_t i = 0; types[i]; i++)
        if (pt_ieq(tok, n, types[i]))
            return NULL;
    return "unknown metric type";
}

/* Judges one line: PT_SAMPLE with @s filled, PT_SKIP for a blank line or a
 * good comment, PT_BAD with *why. */
static enum pt_kind pt_line(struct pt_cur *c, struct promtext_scratch *sc,
                            struct promtext_sample *s, const char **why)
{
    pt_skip_blanks(c);
    if (c->p == c->end)
        return PT_SKIP;
    if (*c->p == '#') {
        c->p++;
        *why = pt_comment(c);
        return *why ? PT_BAD : PT_SKIP;
    }
    *why = pt_name(c, 1, sc->name);
    if (*why)
        return PT_BAD;
    s->n_labels = 0;
    if (c->p < c->end && *c->p == '{') {
        *why = pt_labels(c, sc, &s->n_labels);
        if (*why)
            return PT_BAD;
    } else if (c->p < c->end && !pt_blank(*c->p)) {
        *why = "bad metric name";
        return PT_BAD;
    }
    pt_skip_blanks(c);
    *why = pt_value(c, sc->num, &s->value);
    if (*why)
        return PT_BAD;
    pt_skip_blanks(c);
    s->has_timestamp = 0;
    s->timestamp_ms = 0;
    if (c->p < c->end) {
        *why = pt_timestamp(c, &s->timestamp_ms);
        if (*why)
            return PT_BAD;
        s->has_timestamp = 1;
        pt_skip_blanks(c);
        if (c->p < c->end) {
            *why = "text after the timestamp";
            return PT_BAD;
        }
    }
    s->name = sc->name;
    s->labels = sc->labels;
    return PT_SAMPLE;
}

int promtext_parse(const char *data, size_t len, promtext_sample_fn fn,
                   void *arg, struct promtext_stats *out)
{
    struct promtext_stats st = { 0 };
    struct promtext_scratch *sc;
    size_t off = 0;
    int rc = 0;

    sc = malloc(sizeof(*sc));
    if (!sc)
        return -ENOMEM;
    while (off < len) {
        const char *line = data + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t n = nl ? (size_t)(nl - line) : len - off;
        struct pt_cur c = { line, line + n };
        struct promtext_sample s;
        const char *why = NULL;

        off += n + (nl ? 1 : 0);
        st.lines++;
        if (c.end > c.p && c.end[-1] == '\r')
            c.end--;                    /* CRLF: from a Windows exporter */
        switch (pt_line(&c, sc, &s, &why)) {
        case PT_SKIP:
            break;
        case PT_BAD:
            if (st.malformed++ == 0) {
                st.first_bad_line = st.lines;
                st.first_bad_why = why;
            }
            break;
        case PT_SAMPLE:
            s.line = st.lines;
            st.samples++;
            rc = fn(&s, arg);
            if (rc < 0)
                goto out;
            break;
        }
    }
    if (out)
        *out = st;
out:
    free(sc);
    return rc;
}
