/* web.c -- serves the dashboard compiled into the collector (the table
 * tools/embed.c generates): "/" (and "/index.html", the name people
 * type) is index.html, revalidated on every load
 * (no-cache) because it names the build's asset folder; everything else
 * lives under "/assets/<build id>/", whose names change with any byte of
 * any asset, so they are cached for a year. Assets are stored gzipped:
 * sent as they are to clients that take gzip, inflated per request for
 * the rare one that does not. Also the ETag helpers the API's replies
 * use (server_route.c). No tokens here: assets hold no data. */
#include "web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#define ZLIB_CONST                      /* next_in is const: our table is */
#include <zlib.h>

#include "util.h"

#define WEB_ASSETS_PREFIX "/assets/"
#define WEB_ID_LEN        16u
#define WEB_CACHE_INDEX   "no-cache"
#define WEB_CACHE_ASSET   "public, max-age=31536000, immutable"

const struct web_asset *web_lookup(const char *path)
{
    size_t lo = 0, hi = web_n_assets;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(path, web_assets[mid].path);

        if (c == 0)
            return &web_assets[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* 1 if @url is the page itself, not one of its assets. */
static int web_is_index(const char *url)
{
    return strcmp(url, "/") == 0 || strcmp(url, "/" WEB_INDEX) == 0;
}

int web_is_route(const char *url)
{
    return web_is_index(url) ||
           strncmp(url, WEB_ASSETS_PREFIX, sizeof(WEB_ASSETS_PREFIX) - 1)
               == 0;
}

/* The asset @url names, or NULL: "/" and "/index.html" are index.html; "/assets/<id>/<p>"
 * is <p> when <id> is this build's (index.html is not an asset there). */
static const struct web_asset *web_find(const char *url)
{
    const char *p;

    if (web_is_index(url))
        return web_lookup(WEB_INDEX);
    if (strncmp(url, WEB_ASSETS_PREFIX, sizeof(WEB_ASSETS_PREFIX) - 1) != 0)
        return NULL;
    p = url + sizeof(WEB_ASSETS_PREFIX) - 1;
    if (strncmp(p, web_build_id, WEB_ID_LEN) != 0 || p[WEB_ID_LEN] != '/')
        return NULL;
    p += WEB_ID_LEN + 1;
    if (!util_safe_relpath(p, WEB_MAX_PATH) || strcmp(p, WEB_INDEX) == 0)
        return NULL;
    return web_lookup(p);
}

/* Inflates @a into a new buffer of exactly its raw length; caller frees.
 * -1 if the embedded stream is not what the table says (a build bug). */
static int web_gunzip(const struct web_asset *a, uint8_t **out)
{
    z_stream z;
    uint8_t *buf = malloc(a->raw_len ? a->raw_len : 1);
    int rc = -1, zrc;

    if (!buf)
        return -1;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 16) != Z_OK)      /* 16: gzip wrapper */
        goto out;
    z.next_in = a->gz;
    z.avail_in = (uInt)a->gz_len;
    z.next_out = buf;
    z.avail_out = (uInt)a->raw_len;
    zrc = inflate(&z, Z_FINISH);
    if (zrc == Z_STREAM_END && z.total_out == a->raw_len) {
        *out = buf;
        buf = NULL;
        rc = 0;
    }
    inflateEnd(&z);
out:
    free(buf);
    return rc;
}

/* The body of @a for this request: its gzip bytes (copied: MHD takes no
 * const buffer, and an asset is fetched once per build and browser) or
 * them inflated. -1: out of memory or a broken table. */
static int web_body(const struct web_asset *a, int gzip, struct reply *r)
{
    if (!gzip) {
        if (web_gunzip(a, &r->body) < 0)
            return -1;
        r->len = a->raw_len;
        return 0;
    }
    r->body = malloc(a->gz_len);
    if (!r->body)
        return -1;
    memcpy(r->body, a->gz, a->gz_len);
    r->len = a->gz_len;
    r->encoding = "gzip";
    return 0;
}

void web_reply(const char *url, const char *if_none_match,
               const char *accept_encoding, struct reply *r)
{
    const struct web_asset *a = web_find(url);
    int gzip = web_accepts_gzip(accept_encoding);
    char gz[REPLY_ETAG_LEN];

    if (!a) {
        reply_error(r, 404, "not found", "no such path");
        return;
    }
    web_etag_gz(a->etag, gz);
    if (web_etag_match(if_none_match, a->etag)) {
        r->status = 304;                /* no body, no Content-Type */
        gzip = 0;                       /* the ETag that matched */
    } else if (web_etag_match(if_none_match, gz)) {
        r->status = 304;
        gzip = 1;
    } else if (web_body(a, gzip, r) == 0) {
        r->status = 200;
        r->content_type = a->content_type;
    } else {
        reply_error(r, 500, "internal error", "cannot read the asset");
        return;
    }
    snprintf(r->etag, sizeof(r->etag), "%s", gzip ? gz : a->etag);
    r->cache_control = web_is_index(url) ? WEB_CACHE_INDEX : WEB_CACHE_ASSET;
    r->vary_encoding = 1;
}

void web_etag(const void *body, size_t len, char out[WEB_ETAG_LEN])
{
    uint64_t h = util_fnv1a64(UTIL_FNV1A64_INIT, body, len);

    snprintf(out, WEB_ETAG_LEN, "\"%016llx\"", (unsigned long long)h);
}

void web_etag_gz(const char *id, char out[REPLY_ETAG_LEN])
{
    snprintf(out, REPLY_ETAG_LEN, "%.*s-gz\"", (int)strlen(id) - 1, id);
}

static const char *web_skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

int web_etag_match(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p, *end;

    if (!inm)
        return 0;
    p = web_skip_ows(inm);
    if (p[0] == '*' && *web_skip_ows(p + 1) == '\0')
        return 1;
    while (*p) {
        p = web_skip_ows(p);
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p == '"') {
            end = strchr(p + 1, '"');
            if (!end)
                return 0;               /* unterminated: nothing more */
            if ((size_t)(end + 1 - p) == elen &&
                memcmp(p, etag, elen) == 0)
                return 1;
            p = end + 1;
        }
        p += strcspn(p, ",");           /* to the next tag, if any */
        if (*p == ',')
            p++;
    }
    return 0;
}

/* 1 if qvalue @q (@n bytes; RFC 9110: "0", "0.5", "1.000"...) is above
 * 0. Anything unreadable counts as 0: identity is always safe to send. */
static int web_q_positive(const char *q, size_t n)
{
    int nonzero = 0;

    if (n == 0 || n > 5 || (q[0] != '0' && q[0] != '1') ||
        (n > 1 && q[1] != '.'))
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (q[i] < '0' || q[i] > '9')
            return 0;
        nonzero |= q[i] != '0';
    }
    return q[0] == '1' || nonzero;
}

/* The q of one Accept-Encoding entry whose parameters start at @s (a ';',
 * or anything else when there are none) and end at @end: 1 when absent. */
static int web_coding_q(const char *s, const char *end)
{
    while (s < end && *s == ';') {
        const char *v = web_skip_ows(s + 1), *next = v;
        size_t n;

        while (next < end && *next != ';')
            next++;
        if (v + 1 < next && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
            n = (size_t)(next - (v + 2));
            while (n > 0 && (v[1 + n] == ' ' || v[1 + n] == '\t'))
                n--;
            return web_q_positive(v + 2, n);
        }
        s = next;
    }
    return 1;
}

int web_accepts_gzip(const char *ae)
{
    int gzip = -1, star = -1;           /* -1: not named */
    const char *p = ae;

    while (p && *p) {
        const char *end = p + strcspn(p, ",");
        size_t n;
        int ok;

        p = web_skip_ows(p);
        n = strcspn(p, ";, \t");
        ok = web_coding_q(web_skip_ows(p + n), end);
        if ((n == 4 && strncasecmp(p, "gzip", 4) == 0) ||
            (n == 6 && strncasecmp(p, "x-gzip", 6) == 0))
            gzip = ok;
        else if (n == 1 && p[0] == '*')
            star = ok;
        p = *end ? end + 1 : end;
    }
    if (gzip >= 0)
        return gzip;
    return star > 0;
}
