/* reply.h -- a response built by a handler before server_route.c sends it: a
 * status, a content type, an owned body and the few headers a handler
 * decides. Errors are always JSON {"error": ..., "detail": ...}. Also
 * the gzip of a reply's body (the API's GETs, server_route.c). */
#ifndef SEXTANT_REPLY_H
#define SEXTANT_REPLY_H

#include <stddef.h>
#include <stdint.h>

/* "\"" + 16 hex + "-gz" (a gzip body's, server_route.c) + "\"" + NUL */
#define REPLY_ETAG_LEN 24u

struct reply {
    unsigned status;
    uint8_t *body;              /* owned: free() it; may be NULL */
    size_t len;
    const char *content_type;   /* static string */
    /* Not "": sent as the X-Next-Cursor header (a paged reply's next
     * page, GET /api/v1/timeline). */
    char next[96];
    char attachment[64];        /* a download's file name (Content-
                                 * Disposition: attachment); "": none */
    /* The dashboard's (web.c); the API's ETag is server_route.c's: */
    const char *cache_control;  /* static; NULL: "no-store" */
    const char *encoding;       /* Content-Encoding, static; NULL: none */
    int vary_encoding;          /* 1: "Vary: Accept-Encoding" */
    char etag[REPLY_ETAG_LEN];  /* strong ETag with its quotes; "": none */
};

/* Fills @r with a JSON error; on allocation failure the body is empty. */
void reply_error(struct reply *r, unsigned status, const char *error,
                 const char *detail);

/* Replaces @r's body by its gzip at zlib @level and sets r->encoding to
 * "gzip". The output buffer is deflateBound's, sized before allocating.
 * -ENOMEM, or -EIO on a zlib failure: @r is untouched (sent as it is). */
int reply_gzip(struct reply *r, int level);

#endif
