/* pg_incident.c -- the incident engine on the leader, and the incident
 * queries, on PostgreSQL.
 * STUB: to be written (issue 15). */
#include "store_pg.h"

#include <errno.h>

#include "store_priv.h"

void store_pg_inc_tick(struct store *st, PGconn *c, int lost)
{
    (void)st;
    (void)c;
    (void)lost;
}

void store_pg_inc_free(struct store *st)
{
    (void)st;
}

int store_pg_incidents(struct store *st, const struct store_incident_query *q,
                       char **out, size_t *out_len)
{
    (void)st;
    (void)q;
    (void)out;
    (void)out_len;
    return -ENOSYS;
}

int store_pg_incident(struct store *st, int64_t id, char **out,
                      size_t *out_len)
{
    (void)st;
    (void)id;
    (void)out;
    (void)out_len;
    return -ENOSYS;
}

int store_pg_service_status(struct store *st, char **out, size_t *out_len)
{
    (void)st;
    (void)out;
    (void)out_len;
    return -ENOSYS;
}

int store_pg_annotate(struct store *st, int64_t unix_ms, const char *text,
                      const char *service, int64_t incident, int64_t *id)
{
    (void)st;
    (void)unix_ms;
    (void)text;
    (void)service;
    (void)incident;
    (void)id;
    return -ENOSYS;
}
