/* web.h -- the dashboard compiled into the collector: its asset table
 * (generated at build time by tools/embed.c from web/src/ and uPlot's dist
 * files; never committed) and the replies to "/" (also "/index.html")
 * and "/assets/<build id>/<path>", with ETags, 304s and gzip. Also the strong
 * ETag and If-None-Match check the API's GET replies use. */
#ifndef SEXTANT_WEB_H
#define SEXTANT_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"

#define WEB_MAX_PATH  128u      /* longest asset path after /assets/<id>/ */
#define WEB_ETAG_LEN  19u       /* "\"" + 16 hex + "\"" + NUL */
#define WEB_INDEX     "index.html"

/* One embedded file. The table is sorted by path (strcmp) and holds
 * index.html with "__ASSETS__" already replaced by "/assets/<id>". */
struct web_asset {
    const char *path;           /* "app.js", "vendor/uPlot.esm.js" */
    const char *content_type;
    const uint8_t *gz;          /* gzip (level 9) of the file's bytes */
    size_t gz_len;
    size_t raw_len;             /* before gzip */
    const char *etag;           /* "\"<FNV-1a 64 of the raw bytes, hex>\"" */
};

/* Generated (web_assets.c in the build folder). */
extern const struct web_asset web_assets[];
extern const size_t web_n_assets;
extern const char web_build_id[];       /* 16 hex: FNV-1a 64 of all files */

/* The asset at @path (no leading '/'), or NULL. */
const struct web_asset *web_lookup(const char *path);

/* 1 if @url is the dashboard's: "/", "/index.html" or under "/assets/". */
int web_is_route(const char *url);

/* Fills @r for GET or HEAD @url (web_is_route): 200 with the asset (gzip
 * when @accept_encoding, the request's Accept-Encoding or NULL, allows
 * it, else inflated), with the ETag of that representation (web_etag_gz
 * for the gzip one), 304 carrying the matched one when @if_none_match
 * matches either, 404 JSON
 * for anything else (another build id, an unknown or invalid path). */
void web_reply(const char *url, const char *if_none_match,
               const char *accept_encoding, struct reply *r);

/* Writes the strong ETag of @len bytes at @body ("\"<16 hex>\"") to @out. */
void web_etag(const void *body, size_t len, char out[WEB_ETAG_LEN]);

/* Writes the strong ETag of the gzip representation of a body whose
 * identity ETag is @id (web_etag's form) to @out: the same hash with
 * "-gz". A strong ETag names one representation, so the two encodings of
 * one body never share one. */
void web_etag_gz(const char *id, char out[REPLY_ETAG_LEN]);

/* 1 if If-None-Match value @inm (NULL: absent) matches @etag: "*", or one
 * of its comma-separated entity tags (W/ ignored, weak comparison as
 * RFC 9110 asks for If-None-Match). */
int web_etag_match(const char *inm, const char *etag);

/* 1 if Accept-Encoding value @ae (NULL: absent) allows gzip: "gzip",
 * "x-gzip" or "*" with a q above 0 (an explicit gzip entry wins over *). */
int web_accepts_gzip(const char *ae);

#endif
