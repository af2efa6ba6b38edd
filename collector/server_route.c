/* server_route.c -- the collector's requests from first header to
 * completion: framing checks (request smuggling), routing and the API's
 * read tokens, the replies with their security headers and the API's
 * ETags (and the raw 414 for URLs MHD cannot parse), and the per-request
 * state. The ingest path is server_ingest.c's, the status pages
 * server_status.c's, the dashboard's files web.c's. */
#include "server_priv.h"

#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api.h"
#include "log.h"
#include "util.h"
#include "web.h"

#define SERVER_MAX_PARAMS  16u         /* query parameters the API reads */
/* Longest URL and most query parameters we let libmicrohttpd parse (see
 * server_uri_check): both far below what the connection's memory pool
 * (SERVER_CONN_MEMORY, server.c) can hold. */
#define SERVER_MAX_URL      (8u << 10)
#define SERVER_MAX_URL_ARGS 64u

static enum metrics_route server_metrics_route(enum server_route r)
{
    switch (r) {
    case ROUTE_INGEST: return METRICS_ROUTE_INGEST;
    case ROUTE_TIMELINE: return METRICS_ROUTE_TIMELINE;
    case ROUTE_LATENCY: return METRICS_ROUTE_LATENCY;
    case ROUTE_HEALTHZ: return METRICS_ROUTE_HEALTHZ;
    case ROUTE_READYZ: return METRICS_ROUTE_READYZ;
    case ROUTE_METRICS: return METRICS_ROUTE_METRICS;
    case ROUTE_STATUS: return METRICS_ROUTE_STATUS;
    case ROUTE_SERVICES:
    case ROUTE_SERVICE: return METRICS_ROUTE_SERVICES;
    case ROUTE_INCIDENTS:
    case ROUTE_INCIDENT:
    case ROUTE_EXPORT: return METRICS_ROUTE_INCIDENTS;
    case ROUTE_ANNOTATE: return METRICS_ROUTE_ANNOTATIONS;
    case ROUTE_CLUSTERS: return METRICS_ROUTE_CLUSTERS;
    case ROUTE_WEB: return METRICS_ROUTE_DASHBOARD;
    case ROUTE_ASSETS: return METRICS_ROUTE_ASSETS;
    case ROUTE_NONE: break;
    }
    return METRICS_ROUTE_OTHER;
}

/* API GET replies below this many bytes go as they are: gzip would save
 * less than a TCP segment and cost a deflate state (~256 KB) per reply. */
#define SERVER_GZIP_MIN   1024u
/* zlib level of the API's replies: see bench/RESULTS.md "API replies in
 * gzip" for 1 against 6 on the status and timeline replies. */
#define SERVER_GZIP_LEVEL 1

/* An API 200 gets a strong ETag, the hash of its body; its gzip, sent
 * when Accept-Encoding allows it and the body is not tiny, is another
 * representation and so gets another strong ETag: the same hash with
 * "-gz". If-None-Match holding either gets a 304 with the one that
 * matched (the dashboard's polling: api.js poll()), without compressing
 * anything. Vary on both: the encoding depends on the request's
 * Accept-Encoding. Still no-store: the browser keeps the last body
 * itself, no cache does. A failed gzip sends the identity body. */
static void server_api_negotiate(struct MHD_Connection *c, struct reply *r)
{
    const char *inm = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    const char *ae = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    char id[WEB_ETAG_LEN], gz[REPLY_ETAG_LEN];
    const char *match;

    if (r->status != 200)
        return;
    r->vary_encoding = 1;
    web_etag(r->body, r->len, id);
    web_etag_gz(id, gz);
    match = web_etag_match(inm, id) ? id : web_etag_match(inm, gz) ? gz
                                                                 : NULL;
    if (match) {
        free(r->body);
        r->body = NULL;
        r->len = 0;
        r->status = 304;
        r->content_type = NULL;
        r->attachment[0] = '\0';
        snprintf(r->etag, sizeof(r->etag), "%s", match);
        return;
    }
    if (r->len >= SERVER_GZIP_MIN && web_accepts_gzip(ae) &&
        reply_gzip(r, SERVER_GZIP_LEVEL) == 0)
        snprintf(r->etag, sizeof(r->etag), "%s", gz);
    else
        snprintf(r->etag, sizeof(r->etag), "%s", id);
}

/* The headers a handler decided (reply.h), beside the fixed ones. */
static void server_reply_headers(struct MHD_Response *resp,
                                 const struct reply *r)
{
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type);
    if (r->etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
    if (r->encoding)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
                                r->encoding);
    if (r->vary_encoding)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY,
                                MHD_HTTP_HEADER_ACCEPT_ENCODING);
    if (r->attachment[0]) {
        char disp[96];

        snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"",
                 r->attachment);
        MHD_add_response_header(resp, "Content-Disposition", disp);
    }
    if (r->next[0])
        MHD_add_response_header(resp, "X-Next-Cursor", r->next);
}

/* The request is all in, or answered early: its deadline no longer runs
 * (waiting for the store, or for the client to read, is not slowloris). */
static void server_clock_stop(struct server_req *rq)
{
    if (rq->conn)
        atomic_store(&rq->conn->since_us, 0);
}

/* Headers every response of ours carries, beside Content-Type; a reply
 * with its own cache_control (the dashboard's) replaces "no-store". */
static const char *const server_headers[][2] = {
    { "X-Content-Type-Options", "nosniff" },
    { "Referrer-Policy", "no-referrer" },
    { "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'" },
    { "Cache-Control", "no-store" },
};
#define SERVER_N_HEADERS (sizeof(server_headers) / sizeof(server_headers[0]))

/* Queues @r with the security headers every response carries; takes the
 * body. Counts the response. */
enum MHD_Result server_send(struct MHD_Connection *c,
                            struct server_req *rq, struct reply *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char retry[16];

    server_clock_stop(rq);
    metrics_http_request(server_metrics_route(rq->route), r->status);
    if (rq->route == ROUTE_INGEST && r->status != 200)
        metrics_ingest_rejected(r->status == 500 ? METRICS_REJ_INTERNAL
                                                 : rq->why);
    resp = MHD_create_response_from_buffer_with_free_callback(
        r->len, r->body, free);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL;
    server_reply_headers(resp, r);
    for (size_t i = 0; i < SERVER_N_HEADERS; i++) {
        const char *v = server_headers[i][1];

        if (r->cache_control &&
            strcmp(server_headers[i][0], "Cache-Control") == 0)
            v = r->cache_control;
        MHD_add_response_header(resp, server_headers[i][0], v);
    }
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer");
    if (r->status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                rq->route == ROUTE_INGEST ||
                                        rq->route == ROUTE_ANNOTATE
                                    ? "POST"
                                : rq->route == ROUTE_WEB ||
                                        rq->route == ROUTE_ASSETS
                                    ? "GET, HEAD"
                                    : "GET");
    if (rq->retry_after) {
        snprintf(retry, sizeof(retry), "%u", rq->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
    }
    ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    rq->replied = 1;
    return ret;
}

static enum MHD_Result server_fail(struct MHD_Connection *c,
                                   struct server_req *rq, unsigned status,
                                   const char *error, const char *detail)
{
    struct reply r = { 0 };

    reply_error(&r, status, error, detail);
    return server_send(c, rq, &r);
}

/* An ingest refusal: counted under @why. */
enum MHD_Result server_refuse(struct MHD_Connection *c,
                              struct server_req *rq,
                              enum metrics_reject why, unsigned status,
                              const char *error, const char *detail)
{
    rq->why = why;
    return server_fail(c, rq, status, error, detail);
}

/* The token of "Authorization: Bearer <token>", or NULL. */
const char *server_bearer(struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7])
        return NULL;
    return auth + 7;
}

/* What server_framing_count sees of the framing headers. */
struct server_framing {
    unsigned n_te, n_cl;
};

/* 1 if header name @key is @name, ignoring case and any blanks before
 * the colon: MHD 0.9.75 keeps "Transfer-Encoding :" as a name with a
 * trailing blank, which a proxy in front of us may well read as the
 * header itself. */
static int server_header_is(const char *key, const char *name)
{
    size_t n = strlen(name);

    if (strncasecmp(key, name, n) != 0)
        return 0;
    key += n;
    while (*key == ' ' || *key == '\t')
        key++;
    return *key == '\0';
}

static enum MHD_Result server_framing_count(void *cls,
                                            enum MHD_ValueKind kind,
                                            const char *key,
                                            const char *value)
{
    struct server_framing *f = cls;

    (void)kind;
    (void)value;
    if (server_header_is(key, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        f->n_te++;
    else if (server_header_is(key, MHD_HTTP_HEADER_CONTENT_LENGTH))
        f->n_cl++;
    return MHD_YES;
}

/* Request smuggling: a proxy and we must agree where a request ends.
 * MHD 0.9.75 reads a body by the first Content-Length header and ignores
 * any other, and with Transfer-Encoding ignores Content-Length; a proxy
 * may pick the other one. So on every route, before any body is read: no
 * Transfer-Encoding at all (one alone is 411: we take only bodies of a
 * known length), and at most one Content-Length, even two equal ones (no
 * client of ours sends two, and "equal" is one more thing to get wrong). */
static enum MHD_Result server_framing(struct MHD_Connection *c,
                                      struct server_req *rq)
{
    struct server_framing f = { 0, 0 };

    MHD_get_connection_values(c, MHD_HEADER_KIND, server_framing_count, &f);
    if (f.n_te == 1 && f.n_cl == 0)
        return server_refuse(c, rq, METRICS_REJ_LENGTH_REQUIRED, 411,
                             "length required",
                             "send Content-Length; Transfer-Encoding "
                             "(chunked uploads) is not accepted");
    if (f.n_te > 0)
        return server_refuse(c, rq, METRICS_REJ_MALFORMED, 400,
                             "bad request",
                             f.n_cl ? "Transfer-Encoding with "
                                      "Content-Length is refused"
                                    : "more than one Transfer-Encoding "
                                      "header");
    if (f.n_cl > 1)
        return server_refuse(c, rq, METRICS_REJ_MALFORMED, 400,
                             "bad request",
                             "more than one Content-Length header");
    return MHD_YES;
}

/* With api_tokens, every /api/ path needs one of them, checked before the
 * path is: an unknown path under /api/ tells nothing without a token.
 * Ingest tokens are not read tokens. */
static enum MHD_Result server_read_token(struct server *srv,
                                         struct MHD_Connection *c,
                                         struct server_req *rq)
{
    const char *token;

    if (srv->cfg->n_api_tokens == 0)
        return MHD_YES;
    token = server_bearer(c);
    if (!token)
        return server_fail(c, rq, 401, "unauthorized",
                           "Authorization: Bearer <api token> required");
    if (!collector_config_api_token_ok(srv->cfg, token))
        return server_fail(c, rq, 401, "unauthorized", "unknown token");
    return MHD_YES;
}

struct server_params {
    struct api_param p[SERVER_MAX_PARAMS];
    size_t n;
    int overflow;
};

/* With the lengths: a %00 in a parameter must be seen, not cut. */
static enum MHD_Result server_param(void *cls, enum MHD_ValueKind kind,
                                    const char *key, size_t key_len,
                                    const char *value, size_t value_len)
{
    struct server_params *ps = cls;

    (void)kind;
    if (ps->n == SERVER_MAX_PARAMS) {
        ps->overflow = 1;
        return MHD_NO;
    }
    ps->p[ps->n].key = key;
    ps->p[ps->n].key_len = key_len;
    ps->p[ps->n].value = value;
    ps->p[ps->n].value_len = value_len;
    ps->n++;
    return MHD_YES;
}

/* The routes under /api/v1/status, services and incidents, from @url;
 * *@arg (when not NULL) gets the path's {name} or {id} segment (borrowed
 * from @url). ROUTE_NONE: none of them. */
static enum server_route server_api_route(const char *url, const char **arg)
{
    static const char svc[] = "/api/v1/services/";
    static const char inc[] = "/api/v1/incidents/";
    const char *p, *slash;

    if (strcmp(url, "/api/v1/status") == 0)
        return ROUTE_STATUS;
    if (strcmp(url, "/api/v1/services") == 0)
        return ROUTE_SERVICES;
    if (strcmp(url, "/api/v1/incidents") == 0)
        return ROUTE_INCIDENTS;
    if (strncmp(url, svc, sizeof(svc) - 1) == 0) {
        p = url + sizeof(svc) - 1;
        if (!p[0] || strchr(p, '/'))
            return ROUTE_NONE;
        if (arg)
            *arg = p;
        return ROUTE_SERVICE;
    }
    if (strncmp(url, inc, sizeof(inc) - 1) != 0)
        return ROUTE_NONE;
    p = url + sizeof(inc) - 1;
    slash = strchr(p, '/');
    if (!p[0] || slash == p)
        return ROUTE_NONE;
    if (arg)
        *arg = p;
    if (!slash)
        return ROUTE_INCIDENT;
    return strcmp(slash, "/export") == 0 ? ROUTE_EXPORT : ROUTE_NONE;
}

/* server_annotate_headers: who may annotate. With api_tokens, the read
 * check already let only known tokens in; their scope decides. Without
 * any, reads are open but no write is: there is no one to trust. */
static enum MHD_Result server_annotate_scope(struct server *srv,
                                             struct MHD_Connection *c,
                                             struct server_req *rq)
{
    const char *token = server_bearer(c);

    if (srv->cfg->n_api_tokens == 0)
        return server_fail(c, rq, 403, "forbidden", "annotations need an "
                           "API token: configure one in api_tokens with "
                           "scope: annotate and send it as "
                           "Authorization: Bearer <token>");
    if (!token || collector_config_api_token_scope(srv->cfg, token) !=
                      COLLECTOR_SCOPE_ANNOTATE)
        return server_fail(c, rq, 403, "forbidden", "this token's scope is "
                           "read; annotations need a token with scope: "
                           "annotate");
    return MHD_YES;
}

enum MHD_Result server_annotate_headers(struct server *srv,
                                        struct MHD_Connection *c,
                                        struct server_req *rq)
{
    const char *ctype, *clen;
    char detail[64];
    size_t n;

    if (server_annotate_scope(srv, c, rq) != MHD_YES || rq->replied)
        return MHD_YES;
    ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_CONTENT_TYPE);
    n = ctype ? strcspn(ctype, "; ") : 0;
    if (!ctype || n != 16 || strncasecmp(ctype, "application/json", 16) != 0)
        return server_fail(c, rq, 415, "unsupported media type",
                           "Content-Type must be application/json");
    clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!clen)
        return server_fail(c, rq, 411, "length required",
                           "send Content-Length");
    if (clen[strspn(clen, "0123456789")] != '\0' || strlen(clen) > 12 ||
        strtoull(clen, NULL, 10) > API_ANNOTATION_MAX_BODY) {
        snprintf(detail, sizeof(detail), "body over %u bytes",
                 API_ANNOTATION_MAX_BODY);
        return server_fail(c, rq, 413, "body too large", detail);
    }
    return MHD_YES;
}

/* Answers an API route's request, its whole request in. */
static void server_api(struct server *srv, struct server_req *rq,
                       const char *url, const struct server_params *ps,
                       struct reply *r)
{
    const struct topology *topo = &srv->cfg->topo;
    const char *arg = NULL;
    char id[32];
    int64_t now = util_now_ms();

    server_api_route(url, &arg);
    /* An export's id is the segment before "/export". Cut to @id's size,
     * a longer one is still refused: no id has more than 18 digits. */
    if (rq->route == ROUTE_EXPORT) {
        size_t n = (size_t)(strchr(arg, '/') - arg);

        if (n >= sizeof(id))
            n = sizeof(id) - 1;
        memcpy(id, arg, n);
        id[n] = '\0';
        arg = id;
    }
    if (ps->overflow) {
        reply_error(r, 400, "bad parameter", "too many parameters");
        return;
    }
    switch (rq->route) {
    case ROUTE_TIMELINE:
        api_timeline(srv->st, topo, ps->p, ps->n, now, r);
        break;
    case ROUTE_LATENCY:
        api_latency(srv->st, topo, ps->p, ps->n, now, r);
        break;
    case ROUTE_STATUS:
        api_status(srv->st, ps->p, ps->n, r);
        break;
    case ROUTE_SERVICES:
    case ROUTE_SERVICE:
        api_services(srv->st, topo, arg, ps->p, ps->n, now, r);
        break;
    case ROUTE_INCIDENTS:
        api_incidents(srv->st, topo, ps->p, ps->n, r);
        break;
    case ROUTE_INCIDENT:
        api_incident(srv->st, arg, ps->p, ps->n, r);
        break;
    case ROUTE_EXPORT:
        api_incident_export(srv->st, arg, ps->p, ps->n, r);
        break;
    case ROUTE_ANNOTATE:
        api_annotate(srv->st, topo, (const char *)rq->body, rq->len, now, r);
        break;
    case ROUTE_CLUSTERS:
        api_clusters(srv->st, ps->p, ps->n, r);
        break;
    default:
        reply_error(r, 500, "internal error", "no route");
        break;
    }
}

/* Picks the route, or replies 401/404/405 at once. */
static enum MHD_Result server_route(struct server *srv,
                                    struct MHD_Connection *c,
                                    struct server_req *rq, const char *url,
                                    const char *method)
{
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

    /* MHD hands on the path unescaped and cut at a NUL: "/x%00y" would be
     * served as "/x". No name of ours holds a NUL. */
    if (rq->conn && rq->conn->raw_nul)
        return server_refuse(c, rq, METRICS_REJ_MALFORMED, 400,
                             "bad request", "%00 in the path");
    if (strcmp(url, "/v1/ingest") == 0) {
        rq->route = ROUTE_INGEST;
        return is_post ? MHD_YES
                       : server_refuse(c, rq, METRICS_REJ_METHOD, 405,
                                       "method not allowed", "use POST");
    }
    if (web_is_route(url)) {            /* no token: assets hold no data */
        rq->route = strncmp(url, "/assets/", 8) == 0 ? ROUTE_ASSETS
                                                     : ROUTE_WEB;
        /* Asset names need no escapes; one means a path that is not
         * what it looks like decoded ("%2e%2e", "%2f"). */
        if (rq->conn && rq->conn->raw_escaped)
            return server_fail(c, rq, 404, "not found", "no such path");
        return is_get || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0
                   ? MHD_YES
                   : server_fail(c, rq, 405, "method not allowed",
                                 "use GET or HEAD");
    }
    if (strncmp(url, "/api/", 5) == 0 &&
        (server_read_token(srv, c, rq) != MHD_YES || rq->replied))
        return MHD_YES;
    if (strcmp(url, "/api/v1/annotations") == 0) {
        rq->route = ROUTE_ANNOTATE;
        return is_post ? MHD_YES
                       : server_fail(c, rq, 405, "method not allowed",
                                     "use POST");
    }
    if (strcmp(url, "/api/v1/timeline") == 0)
        rq->route = ROUTE_TIMELINE;
    else if (strcmp(url, "/api/v1/latency") == 0)
        rq->route = ROUTE_LATENCY;
    else if (strcmp(url, "/healthz") == 0)
        rq->route = ROUTE_HEALTHZ;
    else if (strcmp(url, "/readyz") == 0)
        rq->route = ROUTE_READYZ;
    else if (strcmp(url, "/metrics") == 0)
        rq->route = ROUTE_METRICS;
    else if (strcmp(url, "/api/v1/clusters") == 0)
        rq->route = ROUTE_CLUSTERS;
    else
        rq->route = server_api_route(url, NULL);
    if (rq->route == ROUTE_NONE)
        return server_fail(c, rq, 404, "not found", "no such path");
    return is_get ? MHD_YES
                  : server_fail(c, rq, 405, "method not allowed", "use GET");
}

/* Writes a whole "414" reply with our headers straight to @sc's socket
 * (through GnuTLS on HTTPS) and ends our side of it; MHD, which has no
 * way to answer at this stage, is then kept from answering too. */
static void server_answer_raw(struct MHD_Connection *c,
                              struct server_conn *sc, const char *detail)
{
    const union MHD_ConnectionInfo *ci;
    struct reply r = { 0 };
    char head[512];
    size_t n;
    int m;

    reply_error(&r, 414, "uri too long", detail);
    m = snprintf(head, sizeof(head), "HTTP/1.1 414 URI Too Long\r\n"
                 "Connection: close\r\nContent-Length: %zu\r\n"
                 "Content-Type: %s\r\n", r.len, r.content_type);
    n = m < 0 ? sizeof(head) : (size_t)m;
    for (size_t i = 0; i < SERVER_N_HEADERS && n < sizeof(head); i++) {
        m = snprintf(head + n, sizeof(head) - n, "%s: %s\r\n",
                     server_headers[i][0], server_headers[i][1]);
        n += m < 0 ? sizeof(head) : (size_t)m;
    }
    if (n + 2 < sizeof(head) && r.body) {
        memcpy(head + n, "\r\n", 2);
        n += 2;
        /* Both fit the socket's empty send buffer: one short reply, so
         * a partial write is not worth a retry (the client sees a
         * truncated reply and a closed connection at worst). */
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ci && ci->tls_session) {
            gnutls_session_t sess = (gnutls_session_t)ci->tls_session;

            if (gnutls_record_send(sess, head, n) == (ssize_t)n &&
                gnutls_record_send(sess, r.body, r.len) == (ssize_t)r.len)
                gnutls_bye(sess, GNUTLS_SHUT_WR);
        } else if (send(sc->fd, head, n, MSG_NOSIGNAL) == (ssize_t)n) {
            send(sc->fd, r.body, r.len, MSG_NOSIGNAL);
        }
    }
    free(r.body);
    shutdown(sc->fd, SHUT_WR);
    sc->answered = 1;
    metrics_http_request(METRICS_ROUTE_OTHER, 414);
}

/* MHD_OPTION_URI_LOG_CALLBACK: sees the URL before MHD 0.9.75 splits its
 * query into one record per parameter in the connection's memory pool.
 * When they do not fit, MHD queues its 431 but then overwrites its own
 * state and the connection hangs without a reply until a timeout (a ~21
 * KB URL of short parameters does it). No MHD response can be queued
 * here, so a URL over our caps, which also keep the records well within
 * the pool, gets our 414 written directly; MHD's parsing after that can
 * fail or not: the access handler serves nothing more on it. Also notes
 * what the raw path holds that MHD's unescaping hides (server_route).
 * Returns the request context, which must stay NULL (server_access makes
 * it). */
void *server_uri_check(void *cls, const char *uri,
                       struct MHD_Connection *c)
{
    struct server_conn *sc = server_conn_of(c);
    const char *q = strchr(uri, '?');
    size_t len = strlen(uri), n_args = 0;
    char detail[96];

    (void)cls;
    if (sc) {
        size_t plen = q ? (size_t)(q - uri) : len;

        sc->raw_escaped = memchr(uri, '%', plen) != NULL;
        sc->raw_nul = 0;
        for (size_t i = 0; i + 2 < plen; i++)
            sc->raw_nul |= uri[i] == '%' && uri[i + 1] == '0' &&
                           uri[i + 2] == '0';
    }
    for (; q && n_args <= SERVER_MAX_URL_ARGS; q = strchr(q + 1, '&'))
        n_args++;
    if (!sc || (len <= SERVER_MAX_URL && n_args <= SERVER_MAX_URL_ARGS))
        return NULL;
    if (len > SERVER_MAX_URL)
        snprintf(detail, sizeof(detail), "URL over %u bytes", SERVER_MAX_URL);
    else
        snprintf(detail, sizeof(detail), "more than %u query parameters",
                 SERVER_MAX_URL_ARGS);
    log_msg(LOGL_WARN, "http", "%s: %s: answered 414", sc->peer, detail);
    server_answer_raw(c, sc, detail);
    return NULL;
}

enum MHD_Result server_access(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    struct server *srv = cls;
    struct server_req *rq = *con_cls;
    struct server_params ps = { .n = 0 };
    struct reply r = { 0 };

    (void)version;
    if (!rq) {                          /* first call: headers only */
        const struct server_conn *sc = server_conn_of(c);

        if (sc && sc->answered)         /* by server_uri_check */
            return MHD_NO;
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        rq->conn = server_conn_of(c);
        if (rq->conn)
            atomic_store(&rq->conn->busy, 1);
        rq->why = METRICS_REJ_INTERNAL;
        atomic_fetch_add(&srv->inflight, 1);
        /* Framing first, on every route; ingest's refusals count as
         * ingest's. */
        if (strcmp(url, "/v1/ingest") == 0)
            rq->route = ROUTE_INGEST;
        if (server_framing(c, rq) != MHD_YES || rq->replied)
            return MHD_YES;
        if (server_route(srv, c, rq, url, method) != MHD_YES || rq->replied)
            return MHD_YES;
        if (rq->route == ROUTE_INGEST)
            return server_ingest_headers(srv, c, rq);
        if (rq->route == ROUTE_ANNOTATE)
            return server_annotate_headers(srv, c, rq);
        return MHD_YES;
    }
    if (rq->replied)                    /* refused early: read no more */
        return MHD_YES;
    if (*upload_len) {
        if (rq->route != ROUTE_INGEST && rq->route != ROUTE_ANNOTATE)
            return MHD_NO;          /* GET with a body: nothing to say */
        return server_body(srv, rq, upload, upload_len);
    }
    server_clock_stop(rq);              /* whole request is in */
    switch (rq->route) {
    case ROUTE_INGEST:
        return rq->ticket ? server_ingest_done(c, rq)
                          : server_ingest(srv, c, rq);
    case ROUTE_TIMELINE:
    case ROUTE_LATENCY:
    case ROUTE_STATUS:
    case ROUTE_SERVICES:
    case ROUTE_SERVICE:
    case ROUTE_INCIDENTS:
    case ROUTE_INCIDENT:
    case ROUTE_EXPORT:
    case ROUTE_ANNOTATE:
    case ROUTE_CLUSTERS:
        MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, server_param,
                                    &ps);
        server_api(srv, rq, url, &ps, &r);
        if (rq->route != ROUTE_ANNOTATE)        /* the GETs */
            server_api_negotiate(c, &r);
        break;
    case ROUTE_HEALTHZ:
        server_ok_json(&r, "{\"status\":\"ok\"}");
        break;
    case ROUTE_READYZ:
        server_readyz(srv, rq, &r);
        break;
    case ROUTE_METRICS:
        server_metrics(srv, &r);
        break;
    case ROUTE_WEB:
    case ROUTE_ASSETS:
        web_reply(url,
                  MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_IF_NONE_MATCH),
                  MHD_lookup_connection_value(
                      c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING),
                  &r);
        break;
    case ROUTE_NONE:
        reply_error(&r, 500, "internal error", "no route");
        break;
    }
    return server_send(c, rq, &r);
}

void server_completed(void *cls, struct MHD_Connection *c,
                      void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct server *srv = cls;
    struct server_req *rq = *con_cls;

    (void)c;
    (void)toe;
    if (!rq)
        return;
    if (rq->conn) {
        if (rq->ticket) {
            pthread_mutex_lock(&srv->conn_mu);
            rq->conn->ticket = NULL;
            pthread_mutex_unlock(&srv->conn_mu);
        }
        /* A keep-alive connection's clock starts again for the next
         * request: the idle time before it counts. */
        atomic_store(&rq->conn->since_us, util_mono_us());
        atomic_store(&rq->conn->rx_at_rest, server_conn_rx(rq->conn->fd));
        atomic_store(&rq->conn->busy, 0);
    }
    if (rq->ticket)
        server_ticket_put(rq->ticket);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
}
