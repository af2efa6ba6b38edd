/* jsonw.h -- a growable JSON text buffer with a hard size cap, for the
 * collector's replies and the event fields it stores. Writes nothing but
 * valid JSON text (a string's bytes that are not UTF-8 become U+FFFD),
 * except what jsonw_raw and jsonw_value are given; does not parse. */
#ifndef SEXTANT_JSONW_H
#define SEXTANT_JSONW_H

#include <stddef.h>
#include <stdint.h>

struct jsonw {
    char *buf;          /* NUL-terminated; owned */
    size_t len;
    size_t cap;         /* allocated */
    size_t toobig;      /* growing past this fails and sets err */
    int err;            /* sticky: -ENOMEM or -EMSGSIZE once anything failed */
    int need_comma;     /* inside an object/array after a member */
};

void jsonw_init(struct jsonw *w, size_t toobig);
void jsonw_free(struct jsonw *w);
/* Hands the text to the caller (who frees it); returns NULL and frees on
 * a sticky error. */
char *jsonw_take(struct jsonw *w, size_t *len);
/* Empties @w for reuse, keeping its buffer and cap; clears its error. */
void jsonw_reset(struct jsonw *w);

void jsonw_raw(struct jsonw *w, const char *s, size_t n);   /* as is */
void jsonw_obj_begin(struct jsonw *w);
void jsonw_obj_end(struct jsonw *w);
void jsonw_arr_begin(struct jsonw *w);
void jsonw_arr_end(struct jsonw *w);
void jsonw_key(struct jsonw *w, const char *k);
void jsonw_str(struct jsonw *w, const char *s);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_uint(struct jsonw *w, uint64_t v);
void jsonw_double(struct jsonw *w, double v);   /* NaN/Inf as strings */
void jsonw_bool(struct jsonw *w, int v);
void jsonw_null(struct jsonw *w);
/* A JSON value given as text (e.g. from SQLite's json functions). */
void jsonw_value(struct jsonw *w, const char *json);

#endif
