/* http_target.c -- a small HTTP(S) server for the end-to-end tests:
 * the thing agents probe. Listens on 127.0.0.1 (or --listen HOST:PORT,
 * port 0 picks a free one) and prints "PORT\n" on stdout once it is ready.
 *
 *   /status/NNN      answers status NNN
 *   /sleep/MS        answers 200 after MS milliseconds
 *   /flag?file=PATH  200 while PATH exists, 503 otherwise (a test flips
 *                    a target's health by touching a file)
 *   /redirect?to=URL answers 302 with "Location: URL"
 *   /body?text=TEXT  answers 200 with TEXT as the body
 *   /echo            answers 200 with "method: M" and then every request
 *                    header as "Name: value", one per line
 *   anything else    200 "ok"
 * Every response carries "X-Served-By: REGION" when --region is given.
 * With --tls-cert FILE --tls-key FILE (PEM) it speaks HTTPS only. */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "util.h"

#define HTTP_TARGET_MAX_PEM  (64u << 10)
#define HTTP_TARGET_MAX_ECHO 16384u

static const char *http_target_region;

struct http_target_echo {
    char buf[HTTP_TARGET_MAX_ECHO];
    size_t len;
};

/* Appends one "Name: value" line; what does not fit is dropped. */
static enum MHD_Result http_target_echo_header(void *cls,
                                               enum MHD_ValueKind kind,
                                               const char *key,
                                               const char *value)
{
    struct http_target_echo *e = cls;
    int n;

    (void)kind;
    n = snprintf(e->buf + e->len, sizeof(e->buf) - e->len, "%s: %s\n", key,
                 value ? value : "");
    if (n > 0 && (size_t)n < sizeof(e->buf) - e->len)
        e->len += (size_t)n;
    return MHD_YES;
}

/* The response for the routes whose body is not the fixed "ok". */
static struct MHD_Response *http_target_special(struct MHD_Connection *c,
                                                const char *url,
                                                const char *method,
                                                unsigned *status)
{
    struct MHD_Response *r = NULL;

    if (strcmp(url, "/redirect") == 0) {
        const char *to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                     "to");
        if (!to)
            return NULL;
        r = MHD_create_response_from_buffer(0, (void *)"",
                                            MHD_RESPMEM_PERSISTENT);
        if (r && MHD_add_response_header(r, "Location", to) != MHD_YES) {
            MHD_destroy_response(r);
            return NULL;
        }
        *status = 302;
    } else if (strcmp(url, "/body") == 0) {
        const char *text = MHD_lookup_connection_value(c,
                                                       MHD_GET_ARGUMENT_KIND,
                                                       "text");
        if (!text)
            text = "";
        r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                            MHD_RESPMEM_MUST_COPY);
    } else if (strcmp(url, "/echo") == 0) {
        struct http_target_echo *e = calloc(1, sizeof(*e));

        if (!e)
            return NULL;
        http_target_echo_header(e, MHD_HEADER_KIND, "method", method);
        MHD_get_connection_values(c, MHD_HEADER_KIND,
                                  http_target_echo_header, e);
        r = MHD_create_response_from_buffer(e->len, e->buf,
                                            MHD_RESPMEM_MUST_COPY);
        free(e);
    }
    return r;
}

static enum MHD_Result http_target_answer(void *cls, struct MHD_Connection *c,
                                          const char *url, const char *method,
                                          const char *version,
                                          const char *upload, size_t *upload_len,
                                          void **con_cls)
{
    static const char body[] = "ok\n";
    struct MHD_Response *r = NULL;
    unsigned status = 200;
    enum MHD_Result ret;

    (void)cls; (void)version; (void)upload;
    if (*con_cls == NULL) {             /* headers only: wait for the body */
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_len) {                  /* discard request bodies */
        *upload_len = 0;
        return MHD_YES;
    }
    if (strncmp(url, "/status/", 8) == 0) {
        status = (unsigned)atoi(url + 8);
        if (status < 100 || status > 599)
            status = 400;
    } else if (strncmp(url, "/sleep/", 7) == 0) {
        usleep((useconds_t)atoi(url + 7) * 1000u);
    } else if (strcmp(url, "/flag") == 0) {
        const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                    "file");
        status = f && access(f, F_OK) == 0 ? 200 : 503;
    } else if (strcmp(url, "/redirect") == 0 || strcmp(url, "/body") == 0 ||
               strcmp(url, "/echo") == 0) {
        r = http_target_special(c, url, method, &status);
        if (!r)
            status = 400;
    }
    if (!r)
        r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
                                            MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    if (http_target_region)
        MHD_add_response_header(r, "X-Served-By", http_target_region);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:0";
    const char *cert_path = NULL, *key_path = NULL;
    char *cert = NULL, *key = NULL;
    size_t pem_len;
    unsigned flags;
    struct sockaddr_in sin;
    const union MHD_DaemonInfo *info;
    struct MHD_Daemon *d;
    char host[64];
    uint16_t port;
    sigset_t sigs;
    int sig;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_at = argv[++i];
        else if (strcmp(argv[i], "--region") == 0 && i + 1 < argc)
            http_target_region = argv[++i];
        else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc)
            cert_path = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc)
            key_path = argv[++i];
        else {
            fprintf(stderr, "usage: http_target [--listen HOST:PORT] "
                            "[--region NAME] [--tls-cert FILE --tls-key "
                            "FILE]\n");
            return 2;
        }
    }
    if (!cert_path != !key_path) {
        fprintf(stderr, "http_target: give both --tls-cert and --tls-key\n");
        return 2;
    }
    if (cert_path &&
        (util_read_file(cert_path, HTTP_TARGET_MAX_PEM, &cert, &pem_len) < 0 ||
         util_read_file(key_path, HTTP_TARGET_MAX_PEM, &key, &pem_len) < 0)) {
        fprintf(stderr, "http_target: cannot read %s or %s\n", cert_path,
                key_path);
        return 2;
    }
    if (util_parse_hostport(listen_at, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "http_target: bad --listen %s\n", listen_at);
        return 2;
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "http_target: bad address %s\n", host);
        return 2;
    }
    /* Block the stop signals before MHD starts its threads, so they all
     * inherit the mask and sigwait() below is the only taker. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* A thread per connection: /sleep must not hold up other probes. */
    flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    if (cert)
        d = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL,
                             http_target_answer, NULL,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                             MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                             MHD_OPTION_CONNECTION_LIMIT, 2000u,
                             MHD_OPTION_HTTPS_MEM_CERT, cert,
                             MHD_OPTION_HTTPS_MEM_KEY, key,
                             MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, 0, NULL, NULL,
                             http_target_answer, NULL,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                             MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                             MHD_OPTION_CONNECTION_LIMIT, 2000u,
                             MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "http_target: cannot listen on %s\n", listen_at);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", info ? info->port : 0);
    fflush(stdout);
    while (sigwait(&sigs, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    free(cert);
    free(key);
    return 0;
}
