/* admin.h -- the agent's own small HTTP surface: GET /healthz, /readyz and
 * /metrics on a listener of its own, served by libmicrohttpd on one
 * internal thread. It reads the metrics registry (metrics.h) and nothing
 * else: never the loop, its curl handles or the spool. GET only; any
 * request with a body is refused before the body is read. */
#ifndef SEXTANT_AGENT_ADMIN_H
#define SEXTANT_AGENT_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "metrics.h"

#define ADMIN_DEFAULT_LISTEN "127.0.0.1:9464"  /* OpenTelemetry's Prometheus
                                                  exporter port */
/* Every libmicrohttpd limit, set on purpose (its defaults have no idle
 * timeout and no per-IP cap). A Prometheus or two, the kubelet's probes
 * and a curl by hand fit many times over. */
#define ADMIN_CONN_LIMIT    16u             /* connections at once */
#define ADMIN_PER_IP_LIMIT  8u              /* from one address */
#define ADMIN_TIMEOUT_S     10u             /* idle connection: closed */
#define ADMIN_CONN_MEMORY   (16u << 10)     /* per connection: headers */
#define ADMIN_BACKLOG       16u             /* listen() queue */
#define ADMIN_STACK         (256u << 10)    /* the server thread's stack */
/* /healthz fails when the loop's last turn is older than this: ten times
 * its longest sleep (1 s), so a slow fsync is not an outage. */
#define ADMIN_STALE_US      10000000LL

struct admin;                               /* opaque outside admin.c */


/* Listens on @listen and serves on its own thread until admin_stop();
 * logs "listening on HOST:PORT" with the bound port, or why it cannot.
 * -EINVAL for a bad address, else -errno of the failed bind. */
int admin_start(const char *listen, struct admin **out);
uint16_t admin_port(const struct admin *ad);
/* Closes the listener and every connection; NULL is a no-op. */
void admin_stop(struct admin *ad);

/* The verdicts behind /healthz and /readyz, from a registry snapshot:
 * 200 or 503, with a one-line reason in @why. Pure, for tests. */
unsigned admin_health(const struct metrics_status *st, int64_t now_us,
                      char *why, size_t why_len);
unsigned admin_ready(const struct metrics_status *st, char *why,
                     size_t why_len);

#endif
