/* server_conn.c -- the collector's table of TCP connections, kept from
 * MHD's connection notifications: limits.connections (the oldest idle
 * connection makes room, server_shed) and limits.request_timeout (the
 * reaper thread, server_reap). It reads no request and sends no reply. */
#include "server_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/tcp.h>              /* tcpi_bytes_received: not glibc's */
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "util.h"

#define SERVER_REAP_TICK_MS 250        /* deadline checks at most this far
                                        * apart (less for short timeouts) */

void server_mono_after(struct timespec *ts, long long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

/* The request's connection record, made by server_notify. */
struct server_conn *server_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci;

    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
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

    if (srv->n_live <= srv->conn_limit)
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
void server_notify(void *cls, struct MHD_Connection *c,
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
    atomic_init(&sc->rx_at_rest, 0);
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

/* Bytes the kernel has received on @fd (TCP_INFO), or -1. */
int64_t server_conn_rx(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) +
                  sizeof(ti.tcpi_bytes_received))
        return -1;
    return (int64_t)ti.tcpi_bytes_received;
}

/* Whether @sc has received no byte since its last request ended (or since
 * it opened): a keep-alive client between requests, not a slow request.
 * MHD does not say whether a request has begun (its buffers are its pool
 * thread's), so the kernel's byte count tells. Not known: not idle, so
 * the closing is logged. Bytes of a next request that came before the
 * last one's end was counted make it look idle: it is closed all the
 * same, only not logged as slow. */
static int server_conn_idle(const struct server_conn *sc)
{
    int64_t rx = server_conn_rx(sc->fd);

    return rx >= 0 && rx == atomic_load(&sc->rx_at_rest);
}

/* limits.request_timeout. MHD's connection_timeout is an idle timeout: a
 * client sending a byte a second is never idle and holds its connection
 * (and a per-IP slot) forever. libmicrohttpd 0.9.75 has no deadline for a
 * whole request, so this thread keeps one: a connection whose request
 * (headers and body) is not all in within the timeout of its start (or of
 * the previous request's end, on a keep-alive connection) is shut down;
 * MHD then sees the socket end and closes it itself. Connections waiting
 * for the store or sending a reply are not reading, and not timed. One
 * that sent nothing since is an idle keep-alive connection, as an agent
 * with long probe intervals leaves: closed as well (the agent's libcurl
 * opens a new one for its next batch), but that is no attack, and 5000
 * agents must not log a warning each per interval. */
static void server_reap(struct server *srv, int64_t now_us)
{
    int64_t limit_us = srv->cfg->request_timeout_ms * 1000;

    for (struct server_conn *sc = srv->conns; sc; sc = sc->next) {
        int64_t since = atomic_load(&sc->since_us);

        if (since == 0 || sc->reaped || now_us - since <= limit_us)
            continue;
        if (server_conn_idle(sc)) {
            server_conn_drop(srv, sc);
            log_msg(LOGL_DEBUG, "http", "%s: idle for %lld ms "
                    "(limits.request_timeout): closing", sc->peer,
                    srv->cfg->request_timeout_ms);
            continue;
        }
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
                    "%u idle connections", srv->conn_limit, shed);
        server_mono_after(&ts, tick_ms);
        pthread_cond_timedwait(&srv->reaper_cv, &srv->conn_mu, &ts);
    }
    pthread_mutex_unlock(&srv->conn_mu);
    return NULL;
}

int server_reaper_start(struct server *srv)
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

int server_reaper_stop(struct server *srv, int wait_ms)
{
    struct timespec ts;

    if (!srv->reaper_started)
        return 0;
    pthread_mutex_lock(&srv->conn_mu);
    srv->reaper_stop = 1;
    pthread_cond_signal(&srv->reaper_cv);
    pthread_mutex_unlock(&srv->conn_mu);
    /* The reaper only ever waits on its condition variable, but a stuck
     * one must not hold the exit: joined against the monotonic clock. */
    server_mono_after(&ts, wait_ms);
    if (pthread_clockjoin_np(srv->reaper, NULL, CLOCK_MONOTONIC, &ts) != 0) {
        log_msg(LOGL_ERROR, "http", "reaper thread still running %d ms "
                "after stop: left behind", wait_ms);
        pthread_detach(srv->reaper);
        return -ETIMEDOUT;
    }
    pthread_cond_destroy(&srv->reaper_cv);
    srv->reaper_started = 0;
    return 0;
}
