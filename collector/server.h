/* server.h -- the collector's HTTP server (libmicrohttpd): limits, routing,
 * body reading with caps, security headers, graceful stop. Handlers live in
 * ingest.c and api.c. */
#ifndef SEXTANT_SERVER_H
#define SEXTANT_SERVER_H

#include <stdint.h>

#include "config.h"
#include "store.h"

struct server;

/* Starts listening on cfg->listen; logs the bound address (port 0 picks a
 * free one: tests read it from the log line "listening on HOST:PORT").
 * Borrows @cfg and @st until server_stop(). */
int server_start(const struct collector_config *cfg, struct store *st,
                 struct server **out);
uint16_t server_port(const struct server *srv);
/* Stops accepting, waits up to @grace_ms for requests in flight, then
 * closes every connection and frees @srv: 0. Each later wait has its own
 * deadline too (server.c); past one, -ETIMEDOUT, logged: threads of the
 * server are left running and may still use @srv and what it borrows,
 * so the caller should exit without freeing those. NULL is a no-op. */
int server_stop(struct server *srv, int grace_ms);

#endif
