/* kube_api_server.c -- a test double of the Kubernetes API server: HTTPS
 * (libmicrohttpd over GnuTLS) serving recorded API responses from a
 * folder, for tests of the agent's kube probe. It checks the bearer token
 * the way the real server does (401 with a Status object) and answers a
 * GET of PATH with the file PATH.json, slashes turned into '_':
 *
 *   /api/v1/nodes                                 api_v1_nodes.json
 *   /apis/apps/v1/namespaces/shop/deployments/web
 *                        apis_apps_v1_namespaces_shop_deployments_web.json
 *
 * A file holding a Status object ("kind": "Status") is served with its
 * "code" as the HTTP status, as the real server does for 403 and 404;
 * any other file, valid JSON or not, with 200. No file: 404 Status.
 * It does not implement watches, paging, field selectors or any verb but
 * GET. Prints "PORT\n" on stdout once it listens, logs one line per
 * request on stderr, stops on SIGTERM or SIGINT.
 *
 * usage: kube_api_server --dir DIR --cert PEM --key PEM --token TOKEN
 *                        [--listen HOST:PORT]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "util.h"

#define KAS_MAX_FIXTURE (64u << 20)     /* tests make big ones on purpose */
#define KAS_MAX_PEM     (64u << 10)

static const char *kas_dir;
static const char *kas_token;

static const char kas_unauthorized[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
    "\"status\":\"Failure\",\"message\":\"Unauthorized\","
    "\"reason\":\"Unauthorized\",\"code\":401}\n";
static const char kas_not_found[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
    "\"status\":\"Failure\",\"message\":\"the server could not find the "
    "requested resource\",\"reason\":\"NotFound\",\"details\":{},"
    "\"code\":404}\n";
static const char kas_not_allowed[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
    "\"status\":\"Failure\",\"message\":\"the server does not allow this "
    "method on the requested resource\",\"reason\":\"MethodNotAllowed\","
    "\"details\":{},\"code\":405}\n";

/* The fixture file for @url, or -EINVAL for a path no fixture can have
 * (also keeps the lookup inside the folder). */
static int kas_fixture_path(const char *url, char *out, size_t out_len)
{
    size_t n = strlen(url), j = 0;
    int w;

    if (n < 2 || url[0] != '/' || strstr(url, ".."))
        return -EINVAL;
    w = snprintf(out, out_len, "%s/", kas_dir);
    if (w < 0 || (size_t)w >= out_len)
        return -EINVAL;
    j = (size_t)w;
    for (size_t i = 1; i < n; i++) {
        char c = url[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '/'))
            return -EINVAL;
        if (j + 1 >= out_len)
            return -EINVAL;
        out[j++] = c == '/' ? '_' : c;
    }
    if (j + sizeof(".json") > out_len)
        return -EINVAL;
    memcpy(out + j, ".json", sizeof(".json"));
    return 0;
}

/* The HTTP status to serve @body with: a Status object's code, else 200. */
static unsigned kas_status_of(const char *body, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj, *kind, *code;
    unsigned status = 200;

    if (!tok || len > (size_t)INT32_MAX)
        goto out;
    obj = json_tokener_parse_ex(tok, body, (int)len);
    if (obj && json_object_object_get_ex(obj, "kind", &kind) &&
        json_object_is_type(kind, json_type_string) &&
        strcmp(json_object_get_string(kind), "Status") == 0 &&
        json_object_object_get_ex(obj, "code", &code) &&
        json_object_is_type(code, json_type_int) &&
        json_object_get_int(code) >= 100 && json_object_get_int(code) <= 599)
        status = (unsigned)json_object_get_int(code);
    json_object_put(obj);
out:
    if (tok)
        json_tokener_free(tok);
    return status;
}

static int kas_authorized(struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    char want[512];

    if (!h)
        return 0;
    snprintf(want, sizeof(want), "Bearer %s", kas_token);
    return strcmp(h, want) == 0;     /* a test fake: no secret to keep */
}

static enum MHD_Result kas_queue(struct MHD_Connection *c, unsigned status,
                                 char *body, size_t len, int must_free)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, body,
                                        must_free ? MHD_RESPMEM_MUST_FREE
                                                  : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (must_free)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result kas_answer(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_len, void **con_cls)
{
    const char *rv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                 "resourceVersion");
    char path[4096];
    char *body = NULL;
    size_t len = 0;
    unsigned status;
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
    if (strcmp(method, "GET") != 0) {
        status = 405;
        ret = kas_queue(c, status, (char *)kas_not_allowed,
                        sizeof(kas_not_allowed) - 1, 0);
    } else if (!kas_authorized(c)) {
        status = 401;
        ret = kas_queue(c, status, (char *)kas_unauthorized,
                        sizeof(kas_unauthorized) - 1, 0);
    } else if (kas_fixture_path(url, path, sizeof(path)) < 0 ||
               util_read_file(path, KAS_MAX_FIXTURE, &body, &len) < 0) {
        status = 404;
        ret = kas_queue(c, status, (char *)kas_not_found,
                        sizeof(kas_not_found) - 1, 0);
    } else {
        status = kas_status_of(body, len);
        ret = kas_queue(c, status, body, len, 1);
    }
    fprintf(stderr, "kube_api_server: %s %s resourceVersion=%s -> %u\n",
            method, url, rv ? rv : "(none)", status);
    return ret;
}

static int kas_usage(void)
{
    fprintf(stderr, "usage: kube_api_server --dir DIR --cert PEM --key PEM "
                    "--token TOKEN [--listen HOST:PORT]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:0", *cert_file = NULL;
    const char *key_file = NULL;
    char *cert = NULL, *key = NULL;
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sin;
    struct MHD_Daemon *d;
    size_t cert_len, key_len;
    char host[64];
    uint16_t port;
    sigset_t sigs;
    int sig;

    for (int i = 1; i < argc; i++) {
        const char **opt = strcmp(argv[i], "--dir") == 0 ? &kas_dir
                           : strcmp(argv[i], "--cert") == 0 ? &cert_file
                           : strcmp(argv[i], "--key") == 0 ? &key_file
                           : strcmp(argv[i], "--token") == 0 ? &kas_token
                           : strcmp(argv[i], "--listen") == 0 ? &listen_at
                           : NULL;
        if (!opt || i + 1 >= argc)
            return kas_usage();
        *opt = argv[++i];
    }
    if (!kas_dir || !cert_file || !key_file || !kas_token)
        return kas_usage();
    if (util_read_file(cert_file, KAS_MAX_PEM, &cert, &cert_len) < 0 ||
        util_read_file(key_file, KAS_MAX_PEM, &key, &key_len) < 0) {
        fprintf(stderr, "kube_api_server: cannot read %s or %s\n", cert_file,
                key_file);
        return 1;
    }
    if (util_parse_hostport(listen_at, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "kube_api_server: bad --listen %s\n", listen_at);
        return 2;
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "kube_api_server: bad address %s\n", host);
        return 2;
    }
    /* Block the stop signals before MHD starts its thread, so sigwait()
     * below is their only taker. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_ERROR_LOG, 0, NULL, NULL, kas_answer, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                         MHD_OPTION_HTTPS_MEM_CERT, cert,
                         MHD_OPTION_HTTPS_MEM_KEY, key,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "kube_api_server: cannot listen with TLS on %s\n",
                listen_at);
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
