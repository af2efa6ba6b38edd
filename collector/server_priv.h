/* server_priv.h -- what the files of the collector's HTTP server share:
 * the server, connection, request and ticket structs and the functions
 * one file calls in another. Not for use outside server*.c: server.h is
 * the public face.
 *
 *   server.c         daemon options and limits, start, the stop path
 *   server_conn.c    connection accounting, shedding, the deadline reaper
 *   server_route.c   routing, framing checks, replies, request lifecycle
 *   server_ingest.c  the ingest path: headers, body, submit, the wait
 *   server_status.c  /healthz, /readyz and /metrics */
#ifndef SEXTANT_SERVER_PRIV_H
#define SEXTANT_SERVER_PRIV_H

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "live.h"
#include "metrics.h"
#include "reply.h"
#include "store.h"
#include "wire.h"

#define SERVER_RETRY_BUSY  1           /* Retry-After, seconds: queue full */
#define SERVER_RETRY_START 5           /* migrations still running */
/* MHD's own connection cap is limits.connections plus this: room for the
 * connections we have shut down to make space and MHD has not closed yet
 * (see server_shed). */
#define SERVER_CONN_SPARE  64u

enum server_route {
    ROUTE_NONE,         /* reply already decided at the first call */
    ROUTE_INGEST,
    ROUTE_TIMELINE,
    ROUTE_LATENCY,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_STATUS,       /* GET /api/v1/status */
    ROUTE_SERVICES,     /* GET /api/v1/services */
    ROUTE_SERVICE,      /* GET /api/v1/services/{name} */
    ROUTE_INCIDENTS,    /* GET /api/v1/incidents */
    ROUTE_INCIDENT,     /* GET /api/v1/incidents/{id} */
    ROUTE_EXPORT,       /* GET /api/v1/incidents/{id}/export */
    ROUTE_ANNOTATE,     /* POST /api/v1/annotations */
    ROUTE_CLUSTERS,     /* GET /api/v1/clusters */
    ROUTE_WEB,          /* GET/HEAD / and /index.html: the dashboard */
    ROUTE_ASSETS,       /* GET/HEAD /assets/...: its files */
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
    atomic_int_fast64_t rx_at_rest;     /* bytes received when the last
                                         * request ended: none since is
                                         * an idle keep-alive (reaper) */
    /* Its pool thread only, set per request by server_uri_check from the
     * raw path, which MHD hands on unescaped and cut at a %00: */
    int raw_nul;                        /* the path holds a %00 */
    int raw_escaped;                    /* the path holds a '%' at all */
    atomic_int busy;                    /* a request is past its headers
                                         * (read, waiting or answering) */
    struct server_ticket *ticket;       /* under conn_mu; NULL: none */
    char peer[INET6_ADDRSTRLEN];
};

struct server {
    struct MHD_Daemon *d;
    const struct collector_config *cfg;     /* borrowed */
    struct store *st;                       /* borrowed */
    struct live *live;                      /* owned: nodes heard from */
    atomic_int inflight;                    /* requests begun, not done */
    atomic_int suspended;                   /* connections suspended */
    atomic_int stopping;                    /* server_stop() has begun */
    uint16_t port;

    long long conn_limit;                   /* limits.connections, or
                                             * what the open-files limit
                                             * holds (server_fd_budget) */
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

/* server_route.c */
/* Queues @r with the security headers every response carries; takes the
 * body. Counts the response. */
enum MHD_Result server_send(struct MHD_Connection *c, struct server_req *rq,
                            struct reply *r);
/* An ingest refusal: an error reply counted under @why. */
enum MHD_Result server_refuse(struct MHD_Connection *c,
                              struct server_req *rq,
                              enum metrics_reject why, unsigned status,
                              const char *error, const char *detail);
/* The token of "Authorization: Bearer <token>" (borrowed from MHD), or
 * NULL. */
const char *server_bearer(struct MHD_Connection *c);
/* MHD callbacks, all with @cls the struct server. */
enum MHD_Result server_access(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_len, void **con_cls);
void server_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe);
void *server_uri_check(void *cls, const char *uri, struct MHD_Connection *c);

/* server_ingest.c */
enum MHD_Result server_ingest_headers(struct server *srv,
                                      struct MHD_Connection *c,
                                      struct server_req *rq);
enum MHD_Result server_body(struct server *srv, struct server_req *rq,
                            const char *data, size_t *size);
enum MHD_Result server_ingest(struct server *srv, struct MHD_Connection *c,
                              struct server_req *rq);
enum MHD_Result server_ingest_done(struct MHD_Connection *c,
                                   struct server_req *rq);
/* Drops one reference; the last frees the ticket and its batch. */
void server_ticket_put(struct server_ticket *t);
void server_abandon(struct server *srv);

/* server_route.c, POST /api/v1/annotations: the token's scope, the
 * content type and length, before any body is read. */
enum MHD_Result server_annotate_headers(struct server *srv,
                                        struct MHD_Connection *c,
                                        struct server_req *rq);

/* server_status.c; each fills @r, whose body the caller then owns. */
void server_ok_json(struct reply *r, const char *json);
void server_readyz(struct server *srv, struct server_req *rq,
                   struct reply *r);
void server_metrics(struct server *srv, struct reply *r);

/* server_conn.c */
/* @ts = CLOCK_MONOTONIC now + @ms: the deadline form of the timed waits. */
void server_mono_after(struct timespec *ts, long long ms);
struct server_conn *server_conn_of(struct MHD_Connection *c);
/* Bytes the kernel has received on socket @fd, or -1 when not known. */
int64_t server_conn_rx(int fd);
void server_notify(void *cls, struct MHD_Connection *c,
                   void **socket_context,
                   enum MHD_ConnectionNotificationCode toe);
int server_reaper_start(struct server *srv);
/* Stops the reaper, waiting @wait_ms at most; -ETIMEDOUT (logged) if it
 * did not end, and then srv->conn_mu and the reaper's fields must stay. */
int server_reaper_stop(struct server *srv, int wait_ms);

#endif
