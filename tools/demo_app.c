/* demo_app.c -- one region's application for examples/demo.sh: the
 * endpoint the agents probe and the traffic manager health-checks. Not
 * part of the product (never installed); a stand-in for a real app.
 *
 *   /healthz   200 "ok REGION", or 503 while --down-file exists (the demo
 *              breaks a region by creating that file)
 *   /metrics   with --lag: Prometheus text with one gauge,
 *              pg_replication_lag_seconds, the standby database's
 *              replication lag, moving between 0.2 and 0.8 s (a made-up
 *              but plausible value; the incident's RPO estimate is its
 *              last sample before the failover); 404 without --lag
 *   anything   404
 * Every reply carries "X-Served-By: REGION", so a probe through the global
 * name can tell which region answered. Listens on --listen IP:PORT (port 0
 * picks a free one), prints "PORT\n" on stdout once it accepts, and exits
 * 0 on SIGTERM or SIGINT; exits 1 when it cannot listen, 2 on bad usage. */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "util.h"

static const char *demo_app_region = "unknown";
static const char *demo_app_down_file;  /* NULL: never down */
static int demo_app_lag;                /* serve /metrics */
static volatile sig_atomic_t demo_app_stop;

static void demo_app_on_stop(int sig)
{
    (void)sig;
    demo_app_stop = 1;
}

/* The lag, a triangle wave over 10 s between 0.2 and 0.8 s: it moves, as
 * a real replica's does, and stays well under a second. */
static double demo_app_lag_seconds(void)
{
    int64_t ms = util_now_ms() % 10000;

    if (ms >= 5000)
        ms = 10000 - ms;
    return 0.2 + 0.6 * (double)ms / 5000.0;
}

/* Fills @buf with the body for @url and sets @ctype; returns the status. */
static unsigned demo_app_route(const char *url, char *buf, size_t len,
                               const char **ctype)
{
    *ctype = "text/plain";
    if (strcmp(url, "/healthz") == 0) {
        if (demo_app_down_file && access(demo_app_down_file, F_OK) == 0) {
            snprintf(buf, len, "down: %s is broken (on purpose)\n",
                     demo_app_region);
            return 503;
        }
        snprintf(buf, len, "ok %s\n", demo_app_region);
        return 200;
    }
    if (strcmp(url, "/metrics") == 0 && demo_app_lag) {
        *ctype = "text/plain; version=0.0.4";
        snprintf(buf, len,
                 "# HELP pg_replication_lag_seconds Replication lag of "
                 "this standby.\n"
                 "# TYPE pg_replication_lag_seconds gauge\n"
                 "pg_replication_lag_seconds{region=\"%s\"} %.3f\n",
                 demo_app_region, demo_app_lag_seconds());
        return 200;
    }
    snprintf(buf, len, "not found\n");
    return 404;
}

static enum MHD_Result demo_app_answer(void *cls, struct MHD_Connection *c,
                                       const char *url, const char *method,
                                       const char *version,
                                       const char *upload, size_t *upload_len,
                                       void **con_cls)
{
    char body[512];
    const char *ctype;
    struct MHD_Response *r;
    unsigned status;
    enum MHD_Result ret;

    (void)cls; (void)method; (void)version; (void)upload;
    if (*con_cls == NULL) {             /* headers only: wait for the body */
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_len) {                  /* discard request bodies */
        *upload_len = 0;
        return MHD_YES;
    }
    status = demo_app_route(url, body, sizeof(body), &ctype);
    r = MHD_create_response_from_buffer(strlen(body), body,
                                        MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "X-Served-By", demo_app_region);
    MHD_add_response_header(r, "Content-Type", ctype);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    const char *listen_at = NULL;
    const union MHD_DaemonInfo *info;
    struct sockaddr_storage ss;
    struct MHD_Daemon *d;
    struct sigaction sa;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_at = argv[++i];
        else if (strcmp(argv[i], "--region") == 0 && i + 1 < argc)
            demo_app_region = argv[++i];
        else if (strcmp(argv[i], "--down-file") == 0 && i + 1 < argc)
            demo_app_down_file = argv[++i];
        else if (strcmp(argv[i], "--lag") == 0)
            demo_app_lag = 1;
        else
            listen_at = NULL, i = argc;
    }
    if (!listen_at || util_sockaddr(listen_at, &ss) < 0) {
        fprintf(stderr, "usage: demo_app --listen IP:PORT [--region NAME] "
                        "[--down-file PATH] [--lag]\n");
        return 2;
    }
    /* One thread: MHD is run from this loop (no thread of its own), so
     * the stop signals come here and interrupt its wait. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = demo_app_on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    d = MHD_start_daemon(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0, 0,
                         NULL, NULL, demo_app_answer, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "demo_app: cannot listen on %s\n", listen_at);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", info ? info->port : 0);
    fflush(stdout);
    while (!demo_app_stop)
        MHD_run_wait(d, 1000);
    MHD_stop_daemon(d);
    return 0;
}
