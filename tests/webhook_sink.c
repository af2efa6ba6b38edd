/* webhook_sink.c -- a webhook receiver for tests: listens on a free port
 * of 127.0.0.1, prints "PORT\n" on stdout once ready, and appends one
 * line per POST to --out FILE:
 *
 *   STATUS BODY        (the status it answered, the body on one line:
 *                       bytes below 0x20 written as '?')
 *
 * It answers --fail-status (default 500) to the first --fail N requests,
 * then 200; 415 to a Content-Type other than application/json. With
 * --hang it answers nothing, ever (the line's STATUS is then 000): a
 * receiver that accepts and stalls. Bodies over 1 MiB get 413. Stops on
 * SIGTERM or SIGINT. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SINK_MAX_BODY (1u << 20)

static FILE *sink_out;
static long sink_fail, sink_fail_status = 500;
static int sink_hang;
static long sink_requests;                  /* MHD's one thread only */

/* One request's body as it arrives. */
struct sink_req {
    char *buf;
    size_t len;
    int too_big;
};

static void sink_record(unsigned status, const struct sink_req *r)
{
    fprintf(sink_out, "%03u ", status);
    for (size_t i = 0; i < r->len; i++)
        fputc((unsigned char)r->buf[i] < 0x20 ? '?' : r->buf[i], sink_out);
    fputc('\n', sink_out);
    fflush(sink_out);
}

static enum MHD_Result sink_reply(struct MHD_Connection *c, unsigned status)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(2, (void *)"ok",
                                        MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);

    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result sink_answer(void *cls, struct MHD_Connection *c,
                                   const char *url, const char *method,
                                   const char *version, const char *data,
                                   size_t *size, void **con_cls)
{
    struct sink_req *r = *con_cls;
    const char *ct;
    unsigned status;

    (void)cls;
    (void)url;
    (void)version;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*size) {
        char *nb = r->len + *size <= SINK_MAX_BODY
                   ? realloc(r->buf, r->len + *size) : NULL;

        if (nb) {
            memcpy(nb + r->len, data, *size);
            r->buf = nb;
            r->len += *size;
        } else {
            r->too_big = 1;
        }
        *size = 0;
        return MHD_YES;
    }
    sink_requests++;
    ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_TYPE);
    if (sink_hang) {
        sink_record(0, r);
        MHD_suspend_connection(c);      /* and never resumed */
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0)
        status = 405;
    else if (r->too_big)
        status = 413;
    else if (!ct || strncasecmp(ct, "application/json", 16) != 0)
        status = 415;
    else if (sink_requests <= sink_fail)
        status = (unsigned)sink_fail_status;
    else
        status = 200;
    sink_record(status, r);
    return sink_reply(c, status);
}

static void sink_done(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct sink_req *r = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (r)
        free(r->buf);
    free(r);
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    const union MHD_DaemonInfo *info;
    const char *out = NULL;
    struct MHD_Daemon *d;
    sigset_t sigs;
    int sig, bad = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--fail") == 0 && i + 1 < argc)
            sink_fail = atol(argv[++i]);
        else if (strcmp(argv[i], "--fail-status") == 0 && i + 1 < argc)
            sink_fail_status = atol(argv[++i]);
        else if (strcmp(argv[i], "--hang") == 0)
            sink_hang = 1;
        else
            bad = 1;
    }
    if (bad || !out || sink_fail_status < 100 || sink_fail_status > 599) {
        fprintf(stderr, "usage: webhook_sink --out FILE [--fail N] "
                "[--fail-status CODE] [--hang]\n");
        return 2;
    }
    sink_out = fopen(out, "a");
    if (!sink_out) {
        fprintf(stderr, "webhook_sink: cannot open %s\n", out);
        return 2;
    }
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);   /* port 0: any free */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* One polling thread: requests are counted and recorded in order. */
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
                         sink_answer, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                         MHD_OPTION_NOTIFY_COMPLETED, sink_done, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, 0u,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "webhook_sink: cannot listen on 127.0.0.1\n");
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", info ? info->port : 0);
    fflush(stdout);
    while (sigwait(&sigs, &sig) != 0)
        ;
    /* Suspended connections may not be closed by MHD_stop_daemon: a
     * hanging sink just exits. */
    if (!sink_hang)
        MHD_stop_daemon(d);
    fclose(sink_out);
    return 0;
}
