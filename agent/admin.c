/* admin.c -- the agent's admin listener: /healthz, /readyz and /metrics
 * over libmicrohttpd, on one internal thread polling at most
 * ADMIN_CONN_LIMIT connections. Each request is answered at the first call
 * of the access handler, from its headers alone: GET has nothing more to
 * read, and anything else is refused before its body is read. Never uses
 * MHD_PostProcessor, never touches the loop or the spool (the registry in
 * metrics.c is its only input). */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define ADMIN_WHY_LEN 160u

struct admin {
    struct MHD_Daemon *d;
    uint16_t port;
};

static void admin_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    util_rtrim(line);
    log_msg(LOGL_WARN, "admin", "%s", line);
}

unsigned admin_health(const struct metrics_status *st, int64_t now_us,
                      char *why, size_t why_len)
{
    int64_t age = now_us - st->heartbeat_us;
    char ebuf[64];

    if (st->heartbeat_us == 0) {
        snprintf(why, why_len, "unhealthy: the loop has not turned yet");
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (age > ADMIN_STALE_US) {
        snprintf(why, why_len, "unhealthy: the loop last turned %lld.%03lld "
                 "s ago", (long long)(age / 1000000),
                 (long long)(age % 1000000 / 1000));
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (st->spool_errno != 0) {
        snprintf(why, why_len, "unhealthy: the spool refused the last "
                 "write: %s", strerror_r(st->spool_errno, ebuf,
                                         sizeof(ebuf)));
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    snprintf(why, why_len, "ok");
    return MHD_HTTP_OK;
}

unsigned admin_ready(const struct metrics_status *st, char *why,
                     size_t why_len)
{
    switch (st->phase) {
    case METRICS_RUNNING:
        snprintf(why, why_len, "ready");
        return MHD_HTTP_OK;
    case METRICS_STOPPING:
        snprintf(why, why_len, "not ready: stopping");
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case METRICS_STARTING:
    default:
        snprintf(why, why_len, "not ready: starting");
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
}

/* Queues @body (@len bytes) with @status. @body is taken if @owned (freed
 * with free() once sent, or now on failure), else copied. */
static enum MHD_Result admin_send(struct MHD_Connection *c, unsigned status,
                                  const char *ctype, char *body, size_t len,
                                  int owned)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    if (owned)
        r = MHD_create_response_from_buffer_with_free_callback(len, body,
                                                               free);
    else
        r = MHD_create_response_from_buffer(len, body,
                                            MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A one-line plain-text answer. */
static enum MHD_Result admin_text(struct MHD_Connection *c, unsigned status,
                                  const char *text)
{
    char line[ADMIN_WHY_LEN + 2];
    int n = snprintf(line, sizeof(line), "%s\n", text);

    if (n < 0 || (size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    return admin_send(c, status, "text/plain; charset=utf-8", line,
                      (size_t)n, 0);
}

static enum MHD_Result admin_metrics(struct MHD_Connection *c)
{
    char *buf = malloc(METRICS_RENDER_MAX);
    size_t len;
    int rc;

    if (!buf)
        return admin_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    rc = metrics_render(buf, METRICS_RENDER_MAX, util_mono_us(), &len);
    if (rc < 0) {
        free(buf);
        log_msg(LOGL_ERROR, "admin", "/metrics: page over %u bytes",
                METRICS_RENDER_MAX);
        return admin_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "metrics page too large");
    }
    return admin_send(c, MHD_HTTP_OK, "text/plain; version=0.0.4; "
                      "charset=utf-8", buf, len, 1);
}

/* Whether the request announces a body: a Content-Length other than 0, or
 * any Transfer-Encoding (chunked). */
static int admin_has_body(struct MHD_Connection *c)
{
    const char *cl, *te;

    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return te != NULL || (cl != NULL && strcmp(cl, "0") != 0);
}

static enum MHD_Result admin_access(void *cls, struct MHD_Connection *c,
                                    const char *url, const char *method,
                                    const char *version, const char *upload,
                                    size_t *upload_len, void **con_cls)
{
    static int answered;                /* marks a request as seen */
    struct metrics_status st;
    char why[ADMIN_WHY_LEN];
    unsigned status;

    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_len;
    /* Every request is answered at its first call, so a second call can
     * only bring body bytes nobody asked for: drop the connection. */
    if (*con_cls)
        return MHD_NO;
    *con_cls = &answered;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return admin_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "method not allowed: use GET");
    if (admin_has_body(c))
        return admin_text(c, MHD_HTTP_CONTENT_TOO_LARGE,
                          "request bodies are not accepted");
    if (strcmp(url, "/metrics") == 0)
        return admin_metrics(c);
    metrics_get_status(&st);
    if (strcmp(url, "/healthz") == 0) {
        status = admin_health(&st, util_mono_us(), why, sizeof(why));
        return admin_text(c, status, why);
    }
    if (strcmp(url, "/readyz") == 0) {
        status = admin_ready(&st, why, sizeof(why));
        return admin_text(c, status, why);
    }
    return admin_text(c, MHD_HTTP_NOT_FOUND,
                      "not found: try /healthz, /readyz or /metrics");
}

int admin_start(const char *listen, struct admin **out)
{
    struct sockaddr_storage ss;
    const union MHD_DaemonInfo *info;
    struct admin *ad;
    unsigned flags;
    uint16_t port;
    int rc;

    if (util_sockaddr(listen, &ss) < 0) {
        log_msg(LOGL_ERROR, "admin", "listen: %s is not IP:PORT", listen);
        return -EINVAL;
    }
    ad = calloc(1, sizeof(*ad));
    if (!ad)
        return -ENOMEM;
    /* poll(), not select(): with a thousand targets the agent holds more
     * than FD_SETSIZE sockets, and select() cannot watch fd 1024. */
    flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    port = ntohs(ss.ss_family == AF_INET6
                     ? ((struct sockaddr_in6 *)&ss)->sin6_port
                     : ((struct sockaddr_in *)&ss)->sin_port);
    errno = 0;
    /* SOCK_ADDR decides; the port argument only goes into MHD's logs. */
    ad->d = MHD_start_daemon(
        flags, port, NULL, NULL, admin_access, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, admin_mhd_log, NULL,    /* first */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, ADMIN_CONN_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, ADMIN_PER_IP_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, ADMIN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_CONN_MEMORY,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, ADMIN_BACKLOG,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)ADMIN_STACK,
        MHD_OPTION_STRICT_FOR_CLIENT, 1,    /* malformed requests: 400 */
        MHD_OPTION_END);
    if (!ad->d) {
        rc = errno ? -errno : -EADDRINUSE;
        log_msg(LOGL_ERROR, "admin", "cannot listen on %s: %s", listen,
                strerror(-rc));
        free(ad);
        return rc;
    }
    info = MHD_get_daemon_info(ad->d, MHD_DAEMON_INFO_BIND_PORT);
    ad->port = info ? info->port : 0;
    log_msg(LOGL_INFO, "admin", "listening on %.*s:%u (/healthz, /readyz, "
            "/metrics)", (int)(strrchr(listen, ':') - listen), listen,
            ad->port);
    *out = ad;
    return 0;
}

uint16_t admin_port(const struct admin *ad)
{
    return ad->port;
}

void admin_stop(struct admin *ad)
{
    if (!ad)
        return;
    MHD_stop_daemon(ad->d);
    free(ad);
}
