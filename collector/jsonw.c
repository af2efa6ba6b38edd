/* jsonw.c -- append-only JSON writer with a cap; errors are sticky so
 * callers check once at the end. Strings are escaped and checked as
 * UTF-8 (wire.c's rules) so that a reply is always JSON. */
#include "jsonw.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void jsonw_init(struct jsonw *w, size_t toobig)
{
    memset(w, 0, sizeof(*w));
    w->toobig = toobig;
}

void jsonw_free(struct jsonw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

void jsonw_reset(struct jsonw *w)
{
    w->len = 0;
    w->err = 0;
    w->need_comma = 0;
    if (w->buf)
        w->buf[0] = '\0';
}

char *jsonw_take(struct jsonw *w, size_t *len)
{
    char *s;

    if (w->err || !w->buf) {
        jsonw_free(w);
        return NULL;
    }
    s = w->buf;
    if (len)
        *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return s;
}

static int jsonw_grow(struct jsonw *w, size_t n)
{
    size_t want, ncap;
    char *nb;

    if (w->err)
        return -1;
    want = w->len + n + 1;
    if (want > w->toobig) {
        w->err = -EMSGSIZE;
        return -1;
    }
    if (want <= w->cap)
        return 0;
    ncap = w->cap ? w->cap : 256;
    while (ncap < want)
        ncap *= 2;
    if (ncap > w->toobig + 1)
        ncap = w->toobig + 1;
    nb = realloc(w->buf, ncap);
    if (!nb) {
        w->err = -ENOMEM;
        return -1;
    }
    w->buf = nb;
    w->cap = ncap;
    return 0;
}

void jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
    if (jsonw_grow(w, n) < 0)
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void jsonw_sep(struct jsonw *w)
{
    if (w->need_comma)
        jsonw_raw(w, ",", 1);
    w->need_comma = 1;
}

void jsonw_obj_begin(struct jsonw *w)
{
    jsonw_sep(w);
    jsonw_raw(w, "{", 1);
    w->need_comma = 0;
}

void jsonw_obj_end(struct jsonw *w)
{
    jsonw_raw(w, "}", 1);
    w->need_comma = 1;
}

void jsonw_arr_begin(struct jsonw *w)
{
    jsonw_sep(w);
    jsonw_raw(w, "[", 1);
    w->need_comma = 0;
}

void jsonw_arr_end(struct jsonw *w)
{
    jsonw_raw(w, "]", 1);
    w->need_comma = 1;
}

/* Bytes that are not UTF-8 (a stored value from before validation, a
 * parameter echoed in an error) become U+FFFD, one per byte: the text
 * stays valid JSON whatever it was given. */
static void jsonw_quoted(struct jsonw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0, left = strlen(s), k;

    jsonw_raw(w, "\"", 1);
    for (; p[run]; ) {                  /* copy plain runs in one go */
        unsigned char c = p[run];
        char esc[7];

        if (c >= 0x80) {
            k = util_utf8_char(p + run, left - run, NULL);
            if (k > 0) {
                run += k;
                continue;
            }
        } else if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        jsonw_raw(w, (const char *)p, run);
        p += run + 1;
        left -= run + 1;
        run = 0;
        if (c >= 0x80) {
            jsonw_raw(w, "\\ufffd", 6);
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jsonw_raw(w, esc, 2);
        } else if (c == '\n') {
            jsonw_raw(w, "\\n", 2);
        } else if (c == '\t') {
            jsonw_raw(w, "\\t", 2);
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            jsonw_raw(w, esc, 6);
        }
    }
    jsonw_raw(w, (const char *)p, run);
    jsonw_raw(w, "\"", 1);
}

void jsonw_key(struct jsonw *w, const char *k)
{
    jsonw_sep(w);
    jsonw_quoted(w, k);
    jsonw_raw(w, ":", 1);
    w->need_comma = 0;
}

void jsonw_str(struct jsonw *w, const char *s)
{
    jsonw_sep(w);
    jsonw_quoted(w, s ? s : "");
}

void jsonw_int(struct jsonw *w, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%" PRId64, v);

    jsonw_sep(w);
    jsonw_raw(w, b, (size_t)n);
}

void jsonw_uint(struct jsonw *w, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%" PRIu64, v);

    jsonw_sep(w);
    jsonw_raw(w, b, (size_t)n);
}

void jsonw_double(struct jsonw *w, double v)
{
    char b[32];
    int n;

    if (isnan(v)) {
        jsonw_str(w, "NaN");
        return;
    }
    if (isinf(v)) {
        jsonw_str(w, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    n = snprintf(b, sizeof(b), "%.17g", v);
    jsonw_sep(w);
    jsonw_raw(w, b, (size_t)n);
}

void jsonw_bool(struct jsonw *w, int v)
{
    jsonw_sep(w);
    jsonw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void jsonw_null(struct jsonw *w)
{
    jsonw_sep(w);
    jsonw_raw(w, "null", 4);
}

void jsonw_value(struct jsonw *w, const char *json)
{
    jsonw_sep(w);
    jsonw_raw(w, json, strlen(json));
}
