/* server.c -- libmicrohttpd glue: daemon options, routing, body reading,
 * early rejection and response headers. It never parses a body itself
 * and never uses MHD_PostProcessor (where libmicrohttpd's past CVEs were):
 * the ingest body is read raw through the access handler's upload calls.
 *
 * Thread model: MHD's internal thread pool (limits.threads, default 4),
 * each thread polling its own share of connections. A handler runs on its
 * pool thread; ingest waits there for its SQLite commit, so each thread
 * serves one ingest at a time and a slow commit stalls only that thread's
 * connections. Store handles are thread-safe (see store.h).
 *
 * HTTPS (config tls:) is libmicrohttpd's, over GnuTLS. With
 * tls.client_ca_file, MHD asks every client for a certificate but GnuTLS
 * does not judge it during the handshake; we do, per request, before an
 * ingest request's body is read: none is 401, one that does not verify
 * against that CA is 403, each with a JSON reason. Only ingest asks:
 * /healthz serves Kubernetes probes and the API has its own tokens, and
 * neither carries a certificate. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "ingest.h"
#include "log.h"
#include "reply.h"
#include "util.h"

#define SERVER_CONN_MEMORY (64u << 10) /* per-connection pool: headers */
#define SERVER_MAX_PARAMS  16u
#define SERVER_INITIAL_BODY (64u << 10)
/* TLS 1.2 and 1.3 only; GnuTLS picks the ciphers ("NORMAL"). */
#define SERVER_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

enum server_route {
    ROUTE_NONE,         /* reply already decided at the first call */
    ROUTE_INGEST,
    ROUTE_TIMELINE,
    ROUTE_HEALTHZ,
};

struct server {
    struct MHD_Daemon *d;
    const struct collector_config *cfg;     /* borrowed */
    struct store *st;                       /* borrowed */
    atomic_int inflight;                    /* requests begun, not done */
    uint16_t port;
};

/* Per request; created at the first call of the access handler, freed by
 * the completion callback. Owned by the connection's pool thread. */
struct server_req {
    enum server_route route;
    const struct collector_cluster *cluster;  /* ingest: from the token */
    uint8_t *body;
    size_t len, cap;
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

/* Queues @r with the security headers every response carries; takes the
 * body. */
static enum MHD_Result server_send(struct MHD_Connection *c,
                                   struct server_req *rq, struct reply *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer_with_free_callback(
        r->len, r->body, free);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer");
    if (r->status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                rq->route == ROUTE_INGEST ? "POST" : "GET");
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
    return server_fail(c, rq, code, code == 401 ? "unauthorized"
                                                : "forbidden", detail);
}

/* Checks an ingest request's headers before any of its body is read, so a
 * bad or oversized request is refused without reading the body at all. */
static enum MHD_Result server_ingest_headers(struct server *srv,
                                             struct MHD_Connection *c,
                                             struct server_req *rq)
{
    const char *auth, *ctype, *cenc, *clen;
    char detail[96];

    if (server_client_cert(srv, c, rq) != MHD_YES || rq->replied)
        return MHD_YES;
    auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7])
        return server_fail(c, rq, 401, "unauthorized",
                           "Authorization: Bearer <cluster token> required");
    rq->cluster = collector_config_cluster_by_token(srv->cfg, auth + 7);
    if (!rq->cluster)
        return server_fail(c, rq, 401, "unauthorized", "unknown token");
    ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ctype || strcasecmp(ctype, "application/x-protobuf") != 0)
        return server_fail(c, rq, 415, "unsupported media type",
                           "Content-Type must be application/x-protobuf");
    cenc = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (!cenc || strcasecmp(cenc, "deflate") != 0)
        return server_fail(c, rq, 415, "unsupported media type",
                           "Content-Encoding must be deflate");
    /* libmicrohttpd 0.9.75 (Debian 12) cannot send a response once the
     * body has started, so an over-cap body must be caught here, from its
     * Content-Length. A chunked upload has none: refuse it rather than
     * read an unknown amount or drop the connection without a reason. */
    clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!clen)
        return server_fail(c, rq, 411, "length required",
                           "send Content-Length; chunked uploads are not "
                           "accepted");
    if (strtoull(clen, NULL, 10) > (unsigned long long)srv->cfg->max_body) {
        snprintf(detail, sizeof(detail), "body over %lld bytes",
                 srv->cfg->max_body);
        return server_fail(c, rq, 413, "body too large", detail);
    }
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
        if (!nb)
            return MHD_NO;          /* see above: no response possible */
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

static enum MHD_Result server_param(void *cls, enum MHD_ValueKind kind,
                                    const char *key, const char *value)
{
    struct server_params *ps = cls;

    (void)kind;
    if (ps->n == SERVER_MAX_PARAMS) {
        ps->overflow = 1;
        return MHD_NO;
    }
    ps->p[ps->n].key = key;
    ps->p[ps->n].value = value;
    ps->n++;
    return MHD_YES;
}

/* Picks the route, or replies 404/405 at once. */
static enum MHD_Result server_route(struct MHD_Connection *c,
                                    struct server_req *rq, const char *url,
                                    const char *method)
{
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

    if (strcmp(url, "/v1/ingest") == 0) {
        rq->route = ROUTE_INGEST;
        return is_post ? MHD_YES
                       : server_fail(c, rq, 405, "method not allowed",
                                     "use POST");
    }
    if (strcmp(url, "/api/v1/timeline") == 0)
        rq->route = ROUTE_TIMELINE;
    else if (strcmp(url, "/healthz") == 0)
        rq->route = ROUTE_HEALTHZ;
    else
        return server_fail(c, rq, 404, "not found", "no such path");
    return is_get ? MHD_YES
                  : server_fail(c, rq, 405, "method not allowed", "use GET");
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
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add(&srv->inflight, 1);
        if (server_route(c, rq, url, method) != MHD_YES || rq->replied)
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
    switch (rq->route) {                /* whole request is in */
    case ROUTE_INGEST:
        ingest_handle(srv->cfg, srv->st, rq->cluster, rq->body, rq->len, &r);
        break;
    case ROUTE_TIMELINE:
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, server_param,
                                  &ps);
        if (ps.overflow)
            reply_error(&r, 400, "bad parameter", "too many parameters");
        else
            api_timeline(srv->st, ps.p, ps.n, util_now_ms(), &r);
        break;
    case ROUTE_HEALTHZ:
        r.status = 200;
        r.content_type = "application/json";
        r.body = (uint8_t *)strdup("{\"status\":\"ok\"}");
        r.len = r.body ? strlen((char *)r.body) : 0;
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
    free(rq->body);
    free(rq);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
}

/* Fills @ss from "HOST:PORT" (IPv4 or [IPv6]). */
static int server_sockaddr(const char *listen, struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    char host[128];
    uint16_t port;

    if (util_parse_hostport(listen, host, sizeof(host), &port) < 0)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        return 0;
    }
    return -EINVAL;
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

    if (server_sockaddr(cfg->listen, &ss) < 0) {
        log_msg(LOGL_ERROR, "http", "listen: %s is not IP:PORT", cfg->listen);
        return -EINVAL;
    }
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->cfg = cfg;
    srv->st = st;
    atomic_init(&srv->inflight, 0);
    /* epoll: select() would silently drop every socket numbered past
     * FD_SETSIZE (1024), below our own connection limit. */
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
            MHD_USE_ERROR_LOG |
            MHD_USE_ITC;                /* ITC: quiesce works with a pool */
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
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_limit,
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)((cfg->conn_timeout_ms + 999) / 1000),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, server_completed, srv,
        MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    if (!srv->d) {
        log_msg(LOGL_ERROR, "http", "cannot listen on %s", cfg->listen);
        free(srv);
        return -EADDRINUSE;
    }
    info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    log_msg(LOGL_INFO, "http", "listening on %.*s:%u (%s)",
            (int)(strrchr(cfg->listen, ':') - cfg->listen), cfg->listen,
            srv->port, !tls->cert_pem ? "http"
                       : tls->client_ca_pem ? "https, client certificates "
                                              "required for ingest"
                       : "https");
    *out = srv;
    return 0;
}

uint16_t server_port(const struct server *srv)
{
    return srv->port;
}

void server_stop(struct server *srv, int grace_ms)
{
    MHD_socket lsock;
    int64_t deadline;

    if (!srv)
        return;
    lsock = MHD_quiesce_daemon(srv->d);     /* no new connections */
    deadline = util_mono_us() + (int64_t)grace_ms * 1000;
    while (atomic_load(&srv->inflight) > 0 && util_mono_us() < deadline)
        usleep(10000);
    if (atomic_load(&srv->inflight) > 0)
        log_msg(LOGL_WARN, "http", "%d requests still running at stop",
                atomic_load(&srv->inflight));
    MHD_stop_daemon(srv->d);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    free(srv);
}
