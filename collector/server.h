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
 * closes every connection and frees @srv. NULL is a no-op. */
void server_stop(struct server *srv, int grace_ms);

#endif
