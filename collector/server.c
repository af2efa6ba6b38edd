/* server.c -- libmicrohttpd glue: daemon options, routing, body reading,
 * early rejection, response headers, the wait for the store, the request
 * deadline and the graceful stop. It never parses a body itself and never
 * uses MHD_PostProcessor (where libmicrohttpd's past CVEs were): the
 * ingest body is read raw through the access handler's upload calls.
 *
 * Thread model: MHD's internal thread pool (limits.threads, default 4),
 * each thread polling its own share of connections with epoll. No pool
 * thread ever waits for SQLite to write: ingest decodes and checks a batch
 * on its thread, queues it for the store's writer thread (store_submit)
 * and suspends the connection; the writer's done call, once the group
 * commit that holds the batch is durable, resumes it, and the handler then
 * sends the Ack. So a few threads serve many agents at once, and many
 * agents' batches wait in the writer queue together, where one group
 * commit takes them all. A full queue is a 503 with Retry-After at once,
 * never a wait. Queries (/api/) run on the pool thread through the store's
 * read connections (WAL): a long query stalls only that thread's other
 * connections, never ingest's commits. A reaper thread enforces
 * limits.request_timeout (see server_reap). At limits.connections the
 * oldest idle connection is shut down to let a new one in (server_shed),
 * so a flood of idle connections cannot lock out health checks. Framing
 * a proxy could read differently (Transfer-Encoding, two Content-Length)
 * is refused on every route before any body is read (server_framing).
 *
 * HTTPS (config tls:) is libmicrohttpd's, over GnuTLS. With
 * tls.client_ca_file, MHD asks every client for a certificate but GnuTLS
 * does not judge it during the handshake; we do, per request, before an
 * ingest request's body is read: none is 401, one that does not verify
 * against that CA is 403, each with a JSON reason. Only ingest asks:
 * /healthz, /readyz and /metrics serve probes and scrapers, and the API
 * has its own tokens (api_tokens), and none carries a certificate. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "util.h"

#define SERVER_CONN_MEMORY (64u << 10) /* per-connection pool: headers */
#define SERVER_MAX_PARAMS  16u
/* Longest URL and most query parameters we let libmicrohttpd parse (see
 * server_uri_check): both far below what SERVER_CONN_MEMORY can hold. */
#define SERVER_MAX_URL      (8u << 10)
#define SERVER_MAX_URL_ARGS 64u
#define SERVER_INITIAL_BODY (64u << 10)
#define SERVER_REAP_TICK_MS 250        /* deadline checks at most this far
                                        * apart (less for short timeouts) */
/* MHD's own connection cap is limits.connections plus this: room for the
 * connections we have shut down to make space and MHD has not closed yet
 * (see server_shed). */
#define SERVER_CONN_SPARE  64u
#define SERVER_FD_SPARE    64u         /* database, logs, listen socket */
#define SERVER_RETRY_BUSY  1           /* Retry-After, seconds: queue full */
#define SERVER_RETRY_START 5           /* migrations still running */
/* TLS 1.2 and 1.3 only; GnuTLS picks the ciphers ("NORMAL"). */
#define SERVER_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

enum server_route {
    ROUTE_NONE,         /* reply already decided at the first call */
    ROUTE_INGEST,
    ROUTE_TIMELINE,
    ROUTE_LATENCY,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
};

/* Where a submitted batch is, between the HTTP thread that queued it, the
 * writer thread's done call and server_stop(). Exactly one of them resumes
 * a suspended connection: whoever moves the state away from SUSPENDED. */
enum server_wait {
    WAIT_QUEUED,        /* submitted; the connection is not suspended yet */
    WAIT_SUSPENDED,     /* suspended, waiting for the done call */
    WAIT_DONE,          /* the done call came: rc and acked are set */
    WAIT_ABANDONED,     /* server_stop() gave up waiting: answer 503 */
};

/* One submitted batch. Two references: the request's (dropped when the
 * request completes) and the store's (dropped by the done call), so a
 * request that ends first (the collector stopping) leaves the batch to
 * the store, which borrows it until done. */
struct server_ticket {
    atomic_int state;                   /* enum server_wait */
    atomic_int refs;
    struct server *srv;
    struct MHD_Connection *conn;        /* resumed through this */
    Sextant__V1__Batch *batch;          /* owned; freed with the ticket */
    int64_t recv_ms;
    int rc;                             /* written before WAIT_DONE */
    uint64_t acked;
    struct server_ticket *abandoned_next;   /* server_abandon() only */
};

/* One TCP connection, for the request deadline and the stop. Created and
 * freed by MHD's connection notifications; listed in srv->conns. */
struct server_conn {
    struct server_conn *prev, *next;    /* under srv->conn_mu */
    int fd;                             /* MHD's: shutdown(), never close() */
    atomic_int_fast64_t since_us;       /* monotonic start of the request
                                         * being read; 0: not reading */
    int reaped;                         /* under conn_mu: shut down by us */
    int answered;                       /* its pool thread only: a reply
                                         * went out past MHD; serve no more */
    atomic_int busy;                    /* a request is past its headers
                                         * (read, waiting or answering) */
    struct server_ticket *ticket;       /* under conn_mu; NULL: none */
    char peer[INET6_ADDRSTRLEN];
};

struct server {
    struct MHD_Daemon *d;
    const struct collector_config *cfg;     /* borrowed */
    struct store *st;                       /* borrowed */
    atomic_int inflight;                    /* requests begun, not done */
    atomic_int suspended;                   /* connections suspended */
    atomic_int stopping;                    /* server_stop() has begun */
    uint16_t port;

    pthread_mutex_t conn_mu;
    struct server_conn *conns;              /* under conn_mu */
    long long n_live;                       /* under conn_mu: in conns
                                             * and not shut down by us */
    atomic_uint shed;                       /* since the reaper's last
                                             * log line */
    int draining;                           /* under conn_mu: no submits */
    int reaper_stop;                        /* under conn_mu */
    pthread_cond_t reaper_cv;               /* CLOCK_MONOTONIC */
    pthread_t reaper;
    int reaper_started;
};

/* Per request; created at the first call of the access handler, freed by
 * the completion callback. Owned by the connection's pool thread. */
struct server_req {
    enum server_route route;
    const struct collector_cluster *cluster;  /* ingest: from the token */
    struct server_conn *conn;               /* NULL: untracked */
    uint8_t *body;
    size_t len, cap;
    struct server_ticket *ticket;           /* ingest: once submitted */
    enum metrics_reject why;                /* ingest: why not 200 */
    unsigned retry_after;                   /* seconds; 0: no header */
    int replied;                            /* a response is queued */
};

static void server_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    util_rtrim(line);
    log_msg(LOGL_WARN, "http", "%s", line);
}

static enum metrics_route server_metrics_route(enum server_route r)
{
    switch (r) {
    case ROUTE_INGEST: return METRICS_ROUTE_INGEST;
    case ROUTE_TIMELINE: return METRICS_ROUTE_TIMELINE;
    case ROUTE_LATENCY: return METRICS_ROUTE_LATENCY;
    case ROUTE_HEALTHZ: return METRICS_ROUTE_HEALTHZ;
    case ROUTE_READYZ: return METRICS_ROUTE_READYZ;
    case ROUTE_METRICS: return METRICS_ROUTE_METRICS;
    case ROUTE_NONE: break;
    }
    return METRICS_ROUTE_OTHER;
}

/* The request is all in, or answered early: its deadline no longer runs
 * (waiting for the store, or for the client to read, is not slowloris). */
static void server_clock_stop(struct server_req *rq)
{
    if (rq->conn)
        atomic_store(&rq->conn->since_us, 0);
}

/* Headers every response of ours carries, beside Content-Type. */
static const char *const server_headers[][2] = {
    { "X-Content-Type-Options", "nosniff" },
    { "Referrer-Policy", "no-referrer" },
    { "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'" },
    { "Cache-Control", "no-store" },
};
#define SERVER_N_HEADERS (sizeof(server_headers) / sizeof(server_headers[0]))

/* Queues @r with the security headers every response carries; takes the
 * body. Counts the response. */
static enum MHD_Result server_send(struct MHD_Connection *c,
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
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type);
    for (size_t i = 0; i < SERVER_N_HEADERS; i++)
        MHD_add_response_header(resp, server_headers[i][0],
                                server_headers[i][1]);
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer");
    if (r->status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                rq->route == ROUTE_INGEST ? "POST" : "GET");
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
static enum MHD_Result server_refuse(struct MHD_Connection *c,
                                     struct server_req *rq,
                                     enum metrics_reject why, unsigned status,
                                     const char *error, const char *detail)
{
    rq->why = why;
    return server_fail(c, rq, status, error, detail);
}

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *server_bearer(struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7])
        return NULL;
    return auth + 7;
}

/* With tls.client_ca_file: the client's certificate must verify against
 * that CA (GnuTLS checks the signature chain up to it, the validity dates
 * and, where the certificate names its purposes, that client
 * authentication is one: the collector's own server certificate, signed
 * by the same CA, is no client certificate). Refusals are logged: a
 * misconfigured agent shows up here before anywhere else. */
static enum MHD_Result server_client_cert(struct server *srv,
                                          struct MHD_Connection *c,
                                          struct server_req *rq)
{
    const union MHD_ConnectionInfo *ci;
    gnutls_session_t sess;
    gnutls_datum_t why = { NULL, 0 };
    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
    };
    unsigned n_peer = 0, status = 0;
    char detail[256];
    unsigned code;
    int g;

    if (!srv->cfg->tls.client_ca_pem)
        return MHD_YES;
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    sess = ci ? (gnutls_session_t)ci->tls_session : NULL;
    if (!sess || !gnutls_certificate_get_peers(sess, &n_peer) ||
        n_peer == 0) {
        code = 401;
        snprintf(detail, sizeof(detail), "this collector requires a client "
                 "certificate signed by its tls.client_ca_file");
    } else {
        code = 403;
        g = gnutls_certificate_verify_peers(sess, &purpose, 1, &status);
        if (g < 0) {
            snprintf(detail, sizeof(detail), "client certificate not "
                     "verified: %s", gnutls_strerror(g));
        } else if (status != 0) {
            if (gnutls_certificate_verification_status_print(
                    status, GNUTLS_CRT_X509, &why, 0) < 0)
                why.data = NULL;
            snprintf(detail, sizeof(detail), "client certificate not "
                     "trusted: %s", why.data ? (char *)why.data : "invalid");
            gnutls_free(why.data);
        } else {
            return MHD_YES;
        }
    }
    util_rtrim(detail);             /* GnuTLS ends its text with a blank */
    log_msg(LOGL_WARN, "http", "ingest refused (%u): %s", code, detail);
    return server_refuse(c, rq, code == 401 ? METRICS_REJ_UNAUTHORIZED
                                            : METRICS_REJ_FORBIDDEN,
                         code, code == 401 ? "unauthorized" : "forbidden",
                         detail);
}

/* Checks an ingest request's headers before any of its body is read, so a
 * bad or oversized request is refused without reading the body at all. */
static enum MHD_Result server_ingest_headers(struct server *srv,
                                             struct MHD_Connection *c,
                                             struct server_req *rq)
{
    const char *token, *ctype, *cenc, *clen;
    char detail[96];

    if (server_client_cert(srv, c, rq) != MHD_YES || rq->replied)
        return MHD_YES;
    token = server_bearer(c);
    if (!token)
        return server_refuse(c, rq, METRICS_REJ_UNAUTHORIZED, 401,
                             "unauthorized",
                             "Authorization: Bearer <cluster token> "
                             "required");
    rq->cluster = collector_config_cluster_by_token(srv->cfg, token);
    if (!rq->cluster)
        return server_refuse(c, rq, METRICS_REJ_UNAUTHORIZED, 401,
                             "unauthorized", "unknown token");
    ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ctype || strcasecmp(ctype, "application/x-protobuf") != 0)
        return server_refuse(c, rq, METRICS_REJ_UNSUPPORTED_MEDIA, 415,
                             "unsupported media type",
                             "Content-Type must be application/x-protobuf");
    cenc = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (!cenc || strcasecmp(cenc, "deflate") != 0)
        return server_refuse(c, rq, METRICS_REJ_UNSUPPORTED_MEDIA, 415,
                             "unsupported media type",
                             "Content-Encoding must be deflate");
    /* libmicrohttpd 0.9.75 (Debian 12) cannot send a response once the
     * body has started, so an over-cap body must be caught here, from its
     * Content-Length. A chunked upload has none: refuse it rather than
     * read an unknown amount or drop the connection without a reason. */
    clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!clen)
        return server_refuse(c, rq, METRICS_REJ_LENGTH_REQUIRED, 411,
                             "length required",
                             "send Content-Length; chunked uploads are not "
                             "accepted");
    if (strtoull(clen, NULL, 10) > (unsigned long long)srv->cfg->max_body) {
        snprintf(detail, sizeof(detail), "body over %lld bytes",
                 srv->cfg->max_body);
        return server_refuse(c, rq, METRICS_REJ_TOO_LARGE, 413,
                             "body too large", detail);
    }
    return MHD_YES;
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

/* Appends a chunk of body. Content-Length was checked against the cap
 * already; this check is the backstop, and can only close the connection
 * (MHD 0.9.75 refuses a response queued mid-body). */
static enum MHD_Result server_body(struct server *srv,
                                   struct server_req *rq, const char *data,
                                   size_t *size)
{
    size_t max = (size_t)srv->cfg->max_body;

    if (*size > max - rq->len) {
        log_msg(LOGL_WARN, "http", "body over %zu bytes: closing", max);
        metrics_ingest_rejected(METRICS_REJ_TOO_LARGE);
        return MHD_NO;
    }
    if (rq->len + *size > rq->cap) {
        size_t ncap = rq->cap ? rq->cap : SERVER_INITIAL_BODY;
        uint8_t *nb;

        while (ncap < rq->len + *size)
            ncap *= 2;
        if (ncap > max)
            ncap = max;
        nb = realloc(rq->body, ncap);
        if (!nb) {
            metrics_ingest_rejected(METRICS_REJ_NO_MEMORY);
            return MHD_NO;          /* see above: no response possible */
        }
        rq->body = nb;
        rq->cap = ncap;
    }
    memcpy(rq->body + rq->len, data, *size);
    rq->len += *size;
    *size = 0;
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

/* Picks the route, or replies 401/404/405 at once. */
static enum MHD_Result server_route(struct server *srv,
                                    struct MHD_Connection *c,
                                    struct server_req *rq, const char *url,
                                    const char *method)
{
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

    if (strcmp(url, "/v1/ingest") == 0) {
        rq->route = ROUTE_INGEST;
        return is_post ? MHD_YES
                       : server_refuse(c, rq, METRICS_REJ_METHOD, 405,
                                       "method not allowed", "use POST");
    }
    if (strncmp(url, "/api/", 5) == 0 &&
        (server_read_token(srv, c, rq) != MHD_YES || rq->replied))
        return MHD_YES;
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
    else
        return server_fail(c, rq, 404, "not found", "no such path");
    return is_get ? MHD_YES
                  : server_fail(c, rq, 405, "method not allowed", "use GET");
}

static void server_ticket_put(struct server_ticket *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    wire_batch_free(t->batch);
    free(t);
}

/* store_done_fn, on the writer thread: records the outcome and resumes the
 * connection if its handler already suspended it. Touches @srv only then:
 * server_stop() waits for srv->suspended to reach 0. */
static void server_store_done(void *ctx, int rc, uint64_t acked_seq)
{
    struct server_ticket *t = ctx;
    struct MHD_Connection *conn = t->conn;
    struct server *srv = t->srv;

    t->rc = rc;
    t->acked = acked_seq;
    if (atomic_exchange(&t->state, WAIT_DONE) == WAIT_SUSPENDED) {
        MHD_resume_connection(conn);
        atomic_fetch_sub(&srv->suspended, 1);
    }
    server_ticket_put(t);
}

/* Suspends the connection until the done call (or server_stop) resumes
 * it. If either came already, between the submit and here, it saw the
 * state still WAIT_QUEUED and left the resume to us. */
static void server_suspend(struct server *srv, struct MHD_Connection *c,
                           struct server_ticket *t)
{
    int expect = WAIT_QUEUED;

    atomic_fetch_add(&srv->suspended, 1);
    MHD_suspend_connection(c);
    if (!atomic_compare_exchange_strong(&t->state, &expect,
                                        WAIT_SUSPENDED)) {
        MHD_resume_connection(c);
        atomic_fetch_sub(&srv->suspended, 1);
    }
}

/* The database file is damaged: 500 with why, and no Retry-After (the
 * agent retries anyway, but no hint says a retry could help). */
static enum MHD_Result server_corrupt(struct server *srv,
                                      struct MHD_Connection *c,
                                      struct server_req *rq)
{
    char detail[192];

    store_corrupt_detail(srv->st, detail, sizeof(detail));
    return server_refuse(c, rq, METRICS_REJ_STORE_ERROR, 500,
                         "database corrupt", detail);
}

/* Called again after the suspension: the store's verdict, or the stop. */
static enum MHD_Result server_ingest_done(struct MHD_Connection *c,
                                          struct server_req *rq)
{
    struct server_ticket *t = rq->ticket;
    struct reply r = { 0 };

    switch (atomic_load(&t->state)) {
    case WAIT_DONE:
        if (t->rc == -EUCLEAN)
            return server_corrupt(t->srv, c, rq);
        ingest_reply(t->batch, t->rc, t->acked, t->recv_ms, &r);
        if (r.status == 200)
            metrics_ingest_stored(t->batch->n_events, rq->len);
        else if (t->rc < 0)
            rq->why = METRICS_REJ_STORE_ERROR;
        return server_send(c, rq, &r);
    case WAIT_ABANDONED:
        rq->retry_after = SERVER_RETRY_BUSY;
        return server_refuse(c, rq, METRICS_REJ_STOPPING, 503,
                             "collector stopping", "the batch may or may "
                             "not be stored; retry (a replay is stored "
                             "once)");
    default:                /* resumed by nobody: cannot happen */
        return MHD_NO;
    }
}

/* store_submit() refused the batch with @rc: 503, and when to retry. */
static enum MHD_Result server_not_queued(struct server *srv,
                                         struct MHD_Connection *c,
                                         struct server_req *rq, int rc)
{
    struct store_stats s;

    if (rc == -EUCLEAN)
        return server_corrupt(srv, c, rq);
    rq->retry_after = SERVER_RETRY_BUSY;
    if (rc != -EAGAIN)
        return server_refuse(c, rq, METRICS_REJ_STOPPING, 503,
                             "collector stopping",
                             "the batch was not stored; retry");
    store_stats(srv->st, &s);
    if (!s.ready) {
        rq->retry_after = SERVER_RETRY_START;
        return server_refuse(c, rq, METRICS_REJ_BUSY, 503, "collector busy",
                             "the database is migrating; retry after the "
                             "Retry-After seconds");
    }
    return server_refuse(c, rq, METRICS_REJ_BUSY, 503, "collector busy",
                         "the store's writer queue is full; retry after "
                         "the Retry-After seconds");
}

/* The whole ingest body is in: decode and check it, queue it for the store
 * and suspend (the Ack goes out from server_ingest_done), or reply now. */
static enum MHD_Result server_ingest(struct server *srv,
                                     struct MHD_Connection *c,
                                     struct server_req *rq)
{
    struct server_ticket *t;
    struct reply r = { 0 };
    Sextant__V1__Batch *b = NULL;
    int64_t recv_ms = util_now_ms();
    size_t cost = 0;
    int rc, draining;

    if (ingest_decode(srv->cfg, rq->cluster, rq->body, rq->len, &b, &cost,
                      &r, &rq->why) < 0)
        return server_send(c, rq, &r);
    free(rq->body);                     /* not needed while queued */
    rq->body = NULL;
    rq->cap = 0;
    /* Without its connection record (server_notify could not allocate
     * one) a suspended request could not be found at stop. */
    t = rq->conn ? calloc(1, sizeof(*t)) : NULL;
    if (!t) {
        wire_batch_free(b);
        return server_refuse(c, rq, METRICS_REJ_NO_MEMORY, 503,
                             "out of memory", "try again later");
    }
    atomic_init(&t->state, WAIT_QUEUED);
    atomic_init(&t->refs, 2);
    t->srv = srv;
    t->conn = c;
    t->batch = b;
    t->recv_ms = recv_ms;
    rq->ticket = t;
    /* Registered and checked under conn_mu, so server_stop() either sees
     * this ticket or we see it draining: none is left suspended. */
    pthread_mutex_lock(&srv->conn_mu);
    draining = srv->draining;
    if (!draining)
        rq->conn->ticket = t;
    pthread_mutex_unlock(&srv->conn_mu);
    rc = draining ? -ESHUTDOWN
                  : store_submit(srv->st, b, recv_ms, cost, server_store_done,
                                 t);
    if (rc < 0) {
        atomic_fetch_sub(&t->refs, 1);  /* no done call will come */
        return server_not_queued(srv, c, rq, rc);
    }
    if (atomic_load(&t->state) != WAIT_QUEUED)  /* done already */
        return server_ingest_done(c, rq);
    server_suspend(srv, c, t);
    return MHD_YES;                     /* called again once resumed */
}

/* A 200 with a fixed JSON body. */
static void server_ok_json(struct reply *r, const char *json)
{
    r->status = 200;
    r->content_type = "application/json";
    r->body = (uint8_t *)strdup(json);
    r->len = r->body ? strlen(json) : 0;
}

/* GET /readyz: ready for batches, or 503 naming why (and when to ask
 * again). */
static void server_readyz(struct server *srv, struct server_req *rq,
                          struct reply *r)
{
    struct store_stats s;
    char detail[192];

    store_stats(srv->st, &s);
    if (atomic_load(&srv->stopping)) {
        reply_error(r, 503, "not ready", "the collector is stopping");
    } else if (s.corrupt) {
        store_corrupt_detail(srv->st, detail, sizeof(detail));
        reply_error(r, 503, "not ready", detail);
    } else if (!s.ready) {
        rq->retry_after = SERVER_RETRY_START;
        reply_error(r, 503, "not ready", "the database is migrating");
    } else if (s.overloaded) {
        rq->retry_after = SERVER_RETRY_BUSY;
        snprintf(detail, sizeof(detail), "writer queue over its high-water "
                 "mark: %llu of %llu batches, %llu of %llu bytes",
                 (unsigned long long)s.queue_batches,
                 (unsigned long long)s.queue_max_batches,
                 (unsigned long long)s.queue_bytes,
                 (unsigned long long)s.queue_max_bytes);
        reply_error(r, 503, "not ready", detail);
    } else if (s.commits_failing) {
        snprintf(detail, sizeof(detail), "commits failing: %s",
                 s.commit_error);
        reply_error(r, 503, "not ready", detail);
    } else {
        server_ok_json(r, "{\"status\":\"ready\"}");
    }
}

static void server_metrics(struct server *srv, struct reply *r)
{
    char *page = NULL;
    size_t len = 0;

    if (metrics_render(srv->st, util_now_ms(), &page, &len) < 0) {
        reply_error(r, 500, "internal error", "cannot render the metrics");
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    r->body = (uint8_t *)page;
    r->len = len;
}

/* The request's connection record, made by server_notify. */
static struct server_conn *server_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci;

    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
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
 * fail or not: the access handler serves nothing more on it. Returns the
 * request context, which must stay NULL (server_access makes it). */
static void *server_uri_check(void *cls, const char *uri,
                              struct MHD_Connection *c)
{
    struct server_conn *sc = server_conn_of(c);
    const char *q = strchr(uri, '?');
    size_t len = strlen(uri), n_args = 0;
    char detail[96];

    (void)cls;
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

static enum MHD_Result server_access(void *cls, struct MHD_Connection *c,
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
        return MHD_YES;
    }
    if (rq->replied)                    /* refused early: read no more */
        return MHD_YES;
    if (*upload_len) {
        if (rq->route != ROUTE_INGEST)
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
        MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, server_param,
                                    &ps);
        if (ps.overflow)
            reply_error(&r, 400, "bad parameter", "too many parameters");
        else if (rq->route == ROUTE_TIMELINE)
            api_timeline(srv->st, ps.p, ps.n, util_now_ms(), &r);
        else
            api_latency(srv->st, ps.p, ps.n, util_now_ms(), &r);
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
    case ROUTE_NONE:
        reply_error(&r, 500, "internal error", "no route");
        break;
    }
    return server_send(c, rq, &r);
}

static void server_completed(void *cls, struct MHD_Connection *c,
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
        atomic_store(&rq->conn->busy, 0);
    }
    if (rq->ticket)
        server_ticket_put(rq->ticket);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
}

/* Shuts @sc down (the reaper and server_shed): MHD sees the socket end
 * and closes it itself. Under conn_mu. */
static void server_conn_drop(struct server *srv, struct server_conn *sc)
{
    sc->reaped = 1;
    srv->n_live--;
    shutdown(sc->fd, SHUT_RDWR);
}

/* limits.connections, kept by us, under conn_mu, as @newest arrives. At
 * the limit MHD would stop accepting, and a new client (a load balancer's
 * /healthz) would wait in the kernel's queue behind connections that
 * hold a slot doing nothing. So the oldest idle connection makes room: no
 * request past its headers (a keep-alive client between requests, or one
 * still sending headers, as a slowloris does), idle longest. Requests
 * being read, waiting for the store or answered are never cut; when all
 * are such, the newcomer is refused instead. MHD's own cap is ours plus
 * SERVER_CONN_SPARE, for connections shut down but not closed yet. */
static void server_shed(struct server *srv, struct server_conn *newest)
{
    struct server_conn *oldest = NULL;

    if (srv->n_live <= srv->cfg->conn_limit)
        return;
    for (struct server_conn *sc = srv->conns; sc; sc = sc->next) {
        if (sc == newest || sc->reaped || atomic_load(&sc->busy))
            continue;
        if (!oldest || atomic_load(&sc->since_us) <
                           atomic_load(&oldest->since_us))
            oldest = sc;
    }
    server_conn_drop(srv, oldest ? oldest : newest);
    atomic_fetch_add(&srv->shed, 1);
}

/* MHD_OPTION_NOTIFY_CONNECTION: keeps srv->conns, the table the reaper
 * walks. An entry goes at CLOSED, before MHD closes the fd, under the
 * mutex the reaper holds: it never shuts down a reused fd. */
static void server_notify(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct server *srv = cls;
    struct server_conn *sc = *socket_context;
    const union MHD_ConnectionInfo *fd, *addr;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (!sc)
            return;
        pthread_mutex_lock(&srv->conn_mu);
        if (!sc->reaped)
            srv->n_live--;
        if (sc->prev)
            sc->prev->next = sc->next;
        else
            srv->conns = sc->next;
        if (sc->next)
            sc->next->prev = sc->prev;
        pthread_mutex_unlock(&srv->conn_mu);
        free(sc);
        *socket_context = NULL;
        return;
    }
    fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    sc = calloc(1, sizeof(*sc));
    if (!sc || !fd) {
        /* A connection without a deadline is what the deadline is for:
         * refuse it rather than serve it unguarded. */
        if (fd)
            shutdown(fd->connect_fd, SHUT_RDWR);
        free(sc);
        return;
    }
    sc->fd = fd->connect_fd;
    atomic_init(&sc->since_us, util_mono_us());
    if (!addr || !addr->client_addr ||
        !inet_ntop(addr->client_addr->sa_family,
                   addr->client_addr->sa_family == AF_INET6
                       ? (const void *)&((struct sockaddr_in6 *)
                                         addr->client_addr)->sin6_addr
                       : (const void *)&((struct sockaddr_in *)
                                         addr->client_addr)->sin_addr,
                   sc->peer, sizeof(sc->peer)))
        snprintf(sc->peer, sizeof(sc->peer), "?");
    atomic_init(&sc->busy, 0);
    pthread_mutex_lock(&srv->conn_mu);
    sc->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = sc;
    srv->conns = sc;
    srv->n_live++;
    server_shed(srv, sc);
    pthread_mutex_unlock(&srv->conn_mu);
    *socket_context = sc;
}

/* limits.request_timeout. MHD's connection_timeout is an idle timeout: a
 * client sending a byte a second is never idle and holds its connection
 * (and a per-IP slot) forever. libmicrohttpd 0.9.75 has no deadline for a
 * whole request, so this thread keeps one: a connection whose request
 * (headers and body) is not all in within the timeout of its start (or of
 * the previous request's end, on a keep-alive connection) is shut down;
 * MHD then sees the socket end and closes it itself. Connections waiting
 * for the store or sending a reply are not reading, and not timed. */
static void server_reap(struct server *srv, int64_t now_us)
{
    int64_t limit_us = srv->cfg->request_timeout_ms * 1000;

    for (struct server_conn *sc = srv->conns; sc; sc = sc->next) {
        int64_t since = atomic_load(&sc->since_us);

        if (since == 0 || sc->reaped || now_us - since <= limit_us)
            continue;
        server_conn_drop(srv, sc);
        log_msg(LOGL_WARN, "http", "%s: request not complete after %lld ms "
                "(limits.request_timeout): closing", sc->peer,
                srv->cfg->request_timeout_ms);
    }
}

static void *server_reaper(void *arg)
{
    struct server *srv = arg;
    long long tick_ms = srv->cfg->request_timeout_ms / 4;
    struct timespec ts;

    if (tick_ms > SERVER_REAP_TICK_MS)
        tick_ms = SERVER_REAP_TICK_MS;
    pthread_mutex_lock(&srv->conn_mu);
    while (!srv->reaper_stop) {
        unsigned shed;

        server_reap(srv, util_mono_us());
        /* One line a tick, not one per connection: shedding is what a
         * flood of connections looks like. */
        shed = atomic_exchange(&srv->shed, 0);
        if (shed)
            log_msg(LOGL_WARN, "http", "at limits.connections (%lld): shed "
                    "%u idle connections", srv->cfg->conn_limit, shed);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += tick_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&srv->reaper_cv, &srv->conn_mu, &ts);
    }
    pthread_mutex_unlock(&srv->conn_mu);
    return NULL;
}

static int server_reaper_start(struct server *srv)
{
    pthread_condattr_t ca;
    int rc;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&srv->reaper_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -rc;
    rc = pthread_create(&srv->reaper, NULL, server_reaper, srv);
    if (rc != 0) {
        pthread_cond_destroy(&srv->reaper_cv);
        return -rc;
    }
    srv->reaper_started = 1;
    return 0;
}

static void server_reaper_stop(struct server *srv)
{
    if (!srv->reaper_started)
        return;
    pthread_mutex_lock(&srv->conn_mu);
    srv->reaper_stop = 1;
    pthread_cond_signal(&srv->reaper_cv);
    pthread_mutex_unlock(&srv->conn_mu);
    pthread_join(srv->reaper, NULL);
    pthread_cond_destroy(&srv->reaper_cv);
    srv->reaper_started = 0;
}

/* Every connection is a file descriptor: with a soft limit below
 * limits.connections, accept() would fail first, and new clients would
 * wait in the kernel's queue however many idle ones we shed. */
static void server_fd_budget(const struct collector_config *cfg)
{
    rlim_t want = (rlim_t)cfg->conn_limit + SERVER_CONN_SPARE +
                  SERVER_FD_SPARE;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                      ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        log_msg(LOGL_WARN, "http", "open files limit %llu is below "
                "limits.connections (%lld) + %u: raise ulimit -n",
                (unsigned long long)rl.rlim_cur, cfg->conn_limit,
                SERVER_CONN_SPARE + SERVER_FD_SPARE);
}

int server_start(const struct collector_config *cfg, struct store *st,
                 struct server **out)
{
    struct sockaddr_storage ss;
    const struct collector_tls *tls = &cfg->tls;
    const union MHD_DaemonInfo *info;
    struct MHD_OptionItem tls_opts[5];
    struct server *srv;
    unsigned flags;
    size_t n = 0;
    int rc;

    if (util_sockaddr(cfg->listen, &ss) < 0) {
        log_msg(LOGL_ERROR, "http", "listen: %s is not IP:PORT", cfg->listen);
        return -EINVAL;
    }
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->cfg = cfg;
    srv->st = st;
    server_fd_budget(cfg);
    atomic_init(&srv->shed, 0);
    atomic_init(&srv->inflight, 0);
    atomic_init(&srv->suspended, 0);
    atomic_init(&srv->stopping, 0);
    pthread_mutex_init(&srv->conn_mu, NULL);
    rc = server_reaper_start(srv);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "http", "cannot start the reaper: %s",
                strerror(-rc));
        goto err;
    }
    /* epoll: select() would silently drop every socket numbered past
     * FD_SETSIZE (1024), below our own connection limit. Suspend/resume
     * brings the ITC, which quiesce needs with a pool too. */
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
            MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The PEM strings are borrowed from @cfg, which outlives the daemon. */
    if (tls->cert_pem) {
        flags |= MHD_USE_TLS;
        tls_opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
                                                 tls->key_pem };
        tls_opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT,
                                                 0, tls->cert_pem };
        tls_opts[n++] = (struct MHD_OptionItem){
            MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)SERVER_TLS_PRIORITIES };
        if (tls->client_ca_pem)     /* makes MHD request a certificate */
            tls_opts[n++] = (struct MHD_OptionItem){
                MHD_OPTION_HTTPS_MEM_TRUST, 0, tls->client_ca_pem };
    }
    tls_opts[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    /* Every limit set on purpose: MHD's defaults have no timeout and no
     * per-IP cap. */
    srv->d = MHD_start_daemon(
        flags, 0, NULL, NULL, server_access, srv,
        MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, NULL,   /* first */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->conn_limit + SERVER_CONN_SPARE,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_limit,
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)((cfg->conn_timeout_ms + 999) / 1000),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, server_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, server_notify, srv,
        MHD_OPTION_URI_LOG_CALLBACK, server_uri_check, srv,
        MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    if (!srv->d) {
        log_msg(LOGL_ERROR, "http", "cannot listen on %s", cfg->listen);
        rc = -EADDRINUSE;
        goto err;
    }
    info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    log_msg(LOGL_INFO, "http", "listening on %.*s:%u (%s)",
            (int)(strrchr(cfg->listen, ':') - cfg->listen), cfg->listen,
            srv->port, !tls->cert_pem ? "http"
                       : tls->client_ca_pem ? "https, client certificates "
                                              "required for ingest"
                       : "https");
    if (cfg->n_api_tokens == 0)
        log_msg(LOGL_WARN, "http", "no api_tokens: the API under /api/ is "
                "open to anyone who can reach this port");
    *out = srv;
    return 0;
err:
    server_reaper_stop(srv);
    pthread_mutex_destroy(&srv->conn_mu);
    free(srv);
    return rc;
}

uint16_t server_port(const struct server *srv)
{
    return srv->port;
}

/* After the grace: answers every request still waiting for the store with
 * a 503 (the store keeps the batch and may yet store it: a replay is
 * stored once) and refuses new submits, so no connection stays
 * suspended. Resumes outside conn_mu, since MHD takes its own locks; a
 * ticket moved to ABANDONED from SUSPENDED stays alive until then, as its
 * request cannot end while suspended. */
static void server_abandon(struct server *srv)
{
    struct server_ticket *resume = NULL;
    size_t n = 0;

    pthread_mutex_lock(&srv->conn_mu);
    srv->draining = 1;
    for (struct server_conn *sc = srv->conns; sc; sc = sc->next) {
        struct server_ticket *t = sc->ticket;
        int expect = WAIT_QUEUED;

        if (!t || atomic_compare_exchange_strong(&t->state, &expect,
                                                 WAIT_ABANDONED))
            continue;               /* QUEUED: its handler resumes */
        expect = WAIT_SUSPENDED;
        if (!atomic_compare_exchange_strong(&t->state, &expect,
                                            WAIT_ABANDONED))
            continue;               /* DONE: the done call resumes it */
        t->abandoned_next = resume;
        resume = t;
    }
    pthread_mutex_unlock(&srv->conn_mu);
    while (resume) {
        struct server_ticket *t = resume;

        resume = t->abandoned_next;     /* before t can go */
        MHD_resume_connection(t->conn);
        atomic_fetch_sub(&srv->suspended, 1);
        n++;
    }
    if (n)
        log_msg(LOGL_WARN, "http", "%zu batches still waiting for the store "
                "at stop: answered 503", n);
}

void server_stop(struct server *srv, int grace_ms)
{
    MHD_socket lsock;
    int64_t deadline;

    if (!srv)
        return;
    atomic_store(&srv->stopping, 1);
    lsock = MHD_quiesce_daemon(srv->d);     /* no new connections */
    deadline = util_mono_us() + (int64_t)grace_ms * 1000;
    while (atomic_load(&srv->inflight) > 0 && util_mono_us() < deadline)
        usleep(10000);
    if (atomic_load(&srv->inflight) > 0)
        log_msg(LOGL_WARN, "http", "%d requests still running at stop",
                atomic_load(&srv->inflight));
    /* MHD aborts the process if stopped with a suspended connection. */
    server_abandon(srv);
    while (atomic_load(&srv->suspended) > 0)
        usleep(1000);
    server_reaper_stop(srv);
    MHD_stop_daemon(srv->d);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    pthread_mutex_destroy(&srv->conn_mu);
    free(srv);
}
