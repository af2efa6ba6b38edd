/* reply.c -- the JSON error body every handler uses, and the gzip of a
 * reply's body. Choosing when to compress (Accept-Encoding, size, ETags)
 * is server_route.c's. */
#include "reply.h"

#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

#include "jsonw.h"

#define REPLY_ERR_BYTES 4096u

void reply_error(struct reply *r, unsigned status, const char *error,
                 const char *detail)
{
    struct jsonw w;

    jsonw_init(&w, REPLY_ERR_BYTES);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "error");
    jsonw_str(&w, error);
    jsonw_key(&w, "detail");
    jsonw_str(&w, detail);
    jsonw_obj_end(&w);
    r->status = status;
    r->content_type = "application/json";
    r->body = (uint8_t *)jsonw_take(&w, &r->len);
    if (!r->body)
        r->len = 0;
}

int reply_gzip(struct reply *r, int level)
{
    z_stream z = { 0 };
    uint8_t *out = NULL;
    uLong cap;
    int rc = -EIO;

    /* One deflate() over the whole body: zlib's counters are uInt. */
    if (r->len > UINT32_MAX / 2)
        return -EMSGSIZE;
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)    /* 16: gzip wrapper */
        return -ENOMEM;
    cap = deflateBound(&z, (uLong)r->len);    /* gzip wrapper included */
    out = malloc(cap);
    if (!out) {
        rc = -ENOMEM;
        goto out;
    }
    z.next_in = r->body;
    z.avail_in = (uInt)r->len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        goto out;
    free(r->body);
    /* Give back the bound's slack (a few bytes to most of it: JSON
     * compresses 5-20 fold); a failed shrink keeps the larger buffer. */
    r->body = realloc(out, z.total_out ? z.total_out : 1);
    if (!r->body)
        r->body = out;
    r->len = z.total_out;
    r->encoding = "gzip";
    out = NULL;
    rc = 0;
out:
    deflateEnd(&z);
    free(out);
    return rc;
}
