/* server_ingest.c -- POST /v1/ingest: the client certificate, token and
 * header checks before any body is read, the capped body buffer, the
 * decode and submit to the store's writer, the suspended wait for its
 * group commit and the reply; at stop, the 503 for batches still waiting
 * (server_abandon). Parsing and checking a batch is ingest.c's; why a
 * pool thread never waits for SQLite is in server.c's thread model. */
#include "server_priv.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "ingest.h"
#include "log.h"
#include "util.h"

#define SERVER_INITIAL_BODY (64u << 10) /* body buffer's first size: a
                                         * typical batch fits, no regrowth */

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
enum MHD_Result server_ingest_headers(struct server *srv,
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

/* Appends a chunk of body (of an ingest, or of an annotation, whose cap
 * is API_ANNOTATION_MAX_BODY). Content-Length was checked against the cap
 * already; this check is the backstop, and can only close the connection
 * (MHD 0.9.75 refuses a response queued mid-body). */
enum MHD_Result server_body(struct server *srv,
                            struct server_req *rq, const char *data,
                            size_t *size)
{
    size_t max = rq->route == ROUTE_ANNOTATE ? API_ANNOTATION_MAX_BODY
                                             : (size_t)srv->cfg->max_body;

    if (*size > max - rq->len) {
        log_msg(LOGL_WARN, "http", "body over %zu bytes: closing", max);
        if (rq->route == ROUTE_INGEST)
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
            if (rq->route == ROUTE_INGEST)
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

void server_ticket_put(struct server_ticket *t)
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
enum MHD_Result server_ingest_done(struct MHD_Connection *c,
                                   struct server_req *rq)
{
    struct server_ticket *t = rq->ticket;
    struct reply r = { 0 };

    switch (atomic_load(&t->state)) {
    case WAIT_DONE:
        if (t->rc == -EUCLEAN)
            return server_corrupt(t->srv, c, rq);
        ingest_reply(t->batch, t->rc, t->acked, t->recv_ms, t->srv->live,
                     rq->cluster, &r);
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
    if (s.unavailable) {
        return server_refuse(c, rq, METRICS_REJ_BUSY, 503, "collector busy",
                             "the database is unreachable; retry after the "
                             "Retry-After seconds");
    }
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
enum MHD_Result server_ingest(struct server *srv,
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

/* After the grace: answers every request still waiting for the store with
 * a 503 (the store keeps the batch and may yet store it: a replay is
 * stored once) and refuses new submits, so no connection stays
 * suspended. Resumes outside conn_mu, since MHD takes its own locks; a
 * ticket moved to ABANDONED from SUSPENDED stays alive until then, as its
 * request cannot end while suspended. */
void server_abandon(struct server *srv)
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
