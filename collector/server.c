/* server.c -- the collector's HTTP server as a whole: libmicrohttpd's
 * daemon with every limit set on purpose, TLS, the start, and the stop
 * path, each of whose waits has a deadline. The rest is split by
 * responsibility (server_priv.h lists the files): connections and the
 * request deadline, routing and replies, the ingest path, status pages.
 * It never parses a body itself and never uses MHD_PostProcessor (where
 * libmicrohttpd's past CVEs were): the ingest body is read raw through
 * the access handler's upload calls.
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

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server_priv.h"
#include "util.h"

#define SERVER_CONN_MEMORY (64u << 10) /* per-connection pool: headers */
#define SERVER_FD_SPARE    64u         /* database, logs, listen socket */
/* TLS 1.2 and 1.3 only; GnuTLS picks the ciphers ("NORMAL"). */
#define SERVER_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
/* How long the stop path waits, after the grace, for each part to end.
 * A healthy collector needs milliseconds; past these a thread is stuck,
 * and the process exits around it (logged) rather than hang until a
 * SIGKILL that would leave no word of why. */
#define SERVER_STOP_RESUME_MS 5000     /* suspended connections resumed */
#define SERVER_STOP_JOIN_MS   5000     /* the reaper thread ends */
#define SERVER_STOP_DAEMON_MS 10000    /* MHD closes and joins its pool */

static void server_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    util_rtrim(line);
    log_msg(LOGL_WARN, "http", "%s", line);
}

/* Every connection is a file descriptor: with a soft limit below
 * limits.connections, accept() would fail first, and new clients would
 * wait in the kernel's queue however many idle ones we shed. So the soft
 * limit is raised as far as the connections need (not further: nothing
 * else here wants thousands of descriptors), up to the hard limit. When
 * the hard limit cannot hold them: a limit the operator wrote is refused
 * (-EMFILE, logged), since shedding agents under load is worse than a
 * collector that says at start what to fix; the default is lowered to
 * what fits, with a warning, so a collector still starts out of the box
 * on a host with a small hard limit. Sets srv->conn_limit. */
static int server_fd_budget(struct server *srv)
{
    const struct collector_config *cfg = srv->cfg;
    const rlim_t spare = SERVER_CONN_SPARE + SERVER_FD_SPARE;
    rlim_t want = (rlim_t)cfg->conn_limit + spare, fit;
    struct rlimit rl;

    srv->conn_limit = cfg->conn_limit;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return 0;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                      ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl))
        return 0;                       /* cannot tell: leave it to MHD */
    if (rl.rlim_cur >= want)
        return 0;
    fit = rl.rlim_cur > spare ? rl.rlim_cur - spare : 0;
    if (cfg->conn_limit_set || fit == 0) {
        log_msg(LOGL_ERROR, "http", "limits.connections (%lld) needs %llu "
                "open files, and the limit is %llu (hard %llu): raise "
                "ulimit -n (LimitNOFILE= in systemd) or lower "
                "limits.connections to %llu", cfg->conn_limit,
                (unsigned long long)want, (unsigned long long)rl.rlim_cur,
                (unsigned long long)rl.rlim_max, (unsigned long long)fit);
        return -EMFILE;
    }
    srv->conn_limit = (long long)fit;
    log_msg(LOGL_WARN, "http", "open files limit %llu (hard) holds %llu "
            "connections, not the default limits.connections (%lld): "
            "serving %llu; raise ulimit -n (LimitNOFILE= in systemd) for "
            "more agents", (unsigned long long)rl.rlim_cur,
            (unsigned long long)fit, cfg->conn_limit,
            (unsigned long long)fit);
    return 0;
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
    if (!srv || live_new(cfg, &srv->live) < 0) {
        free(srv);
        return -ENOMEM;
    }
    srv->cfg = cfg;
    srv->st = st;
    rc = server_fd_budget(srv);
    if (rc < 0) {
        free(srv);
        return rc;
    }
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
        (unsigned)srv->conn_limit + SERVER_CONN_SPARE,
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
    if (server_reaper_stop(srv, SERVER_STOP_JOIN_MS) < 0)
        return rc;                      /* the reaper may still use srv */
    pthread_mutex_destroy(&srv->conn_mu);
    live_free(srv->live);
    free(srv);
    return rc;
}

uint16_t server_port(const struct server *srv)
{
    return srv->port;
}

static void *server_stop_daemon_main(void *arg)
{
    MHD_stop_daemon(arg);
    return NULL;
}

/* MHD_stop_daemon() joins MHD's pool threads, and one stuck in a handler
 * would hold it forever: it runs on a helper thread, waited for @wait_ms.
 * 0, or -ETIMEDOUT (logged) with the daemon left running. */
static int server_stop_daemon(struct MHD_Daemon *d, int wait_ms)
{
    struct timespec ts;
    pthread_t t;

    if (pthread_create(&t, NULL, server_stop_daemon_main, d) != 0) {
        MHD_stop_daemon(d);             /* no thread to spare: unbounded */
        return 0;
    }
    server_mono_after(&ts, wait_ms);
    if (pthread_clockjoin_np(t, NULL, CLOCK_MONOTONIC, &ts) != 0) {
        log_msg(LOGL_ERROR, "http", "HTTP threads still running %d ms after "
                "stop: left behind", wait_ms);
        pthread_detach(t);
        return -ETIMEDOUT;
    }
    return 0;
}

/* Waits for MHD to resume every suspended connection (server_abandon
 * resumed or answered them all; a handler may still be between its
 * submit and its suspend), at most SERVER_STOP_RESUME_MS. */
static int server_wait_resumed(struct server *srv)
{
    int64_t deadline = util_mono_us() + SERVER_STOP_RESUME_MS * 1000LL;

    while (atomic_load(&srv->suspended) > 0 && util_mono_us() < deadline)
        usleep(1000);
    if (atomic_load(&srv->suspended) == 0)
        return 0;
    log_msg(LOGL_ERROR, "http", "%d connections still suspended %d ms after "
            "stop: HTTP threads left behind", atomic_load(&srv->suspended),
            SERVER_STOP_RESUME_MS);
    return -ETIMEDOUT;
}

int server_stop(struct server *srv, int grace_ms)
{
    MHD_socket lsock;
    int64_t deadline;
    int rc, reaper_rc;

    if (!srv)
        return 0;
    atomic_store(&srv->stopping, 1);
    lsock = MHD_quiesce_daemon(srv->d);     /* no new connections */
    deadline = util_mono_us() + (int64_t)grace_ms * 1000;
    while (atomic_load(&srv->inflight) > 0 && util_mono_us() < deadline)
        usleep(10000);
    if (atomic_load(&srv->inflight) > 0)
        log_msg(LOGL_WARN, "http", "%d requests still running at stop",
                atomic_load(&srv->inflight));
    server_abandon(srv);
    /* MHD aborts the process if stopped with a suspended connection: past
     * the deadline, the daemon is left running and the process exits
     * around it. */
    rc = server_wait_resumed(srv);
    reaper_rc = server_reaper_stop(srv, SERVER_STOP_JOIN_MS);
    if (rc == 0)
        rc = server_stop_daemon(srv->d, SERVER_STOP_DAEMON_MS);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    if (rc < 0 || reaper_rc < 0)
        return -ETIMEDOUT;      /* threads left may still use @srv */
    pthread_mutex_destroy(&srv->conn_mu);
    live_free(srv->live);
    free(srv);
    return 0;
}
