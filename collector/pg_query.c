/* pg_query.c -- store.h's queries on PostgreSQL.
 * STUB: to be written (issue 15). */
#include "store_pg.h"

#include <errno.h>

#include "store_priv.h"

PGconn *store_pg_reader(struct store *st)
{
    (void)st;
    return NULL;
}

void store_pg_reader_put(struct store *st, PGconn *c, int broken)
{
    (void)st;
    (void)broken;
    PQfinish(c);
}

int store_pg_clusters_seen(struct store *st,
                           void (*fn)(void *ctx, const char *cluster,
                                      int64_t last_seen_ms),
                           void *ctx)
{
    (void)st;
    (void)fn;
    (void)ctx;
    return -ENOSYS;
}

int store_pg_clusters(struct store *st, char **out, size_t *out_len)
{
    (void)st;
    (void)out;
    (void)out_len;
    return -ENOSYS;
}

int store_pg_name_known(struct store *st, enum store_names which,
                        const char *name, store_name_fn fn, void *ctx)
{
    (void)st;
    (void)which;
    (void)name;
    (void)fn;
    (void)ctx;
    return -ENOSYS;
}

int store_pg_timeline(struct store *st, const struct store_timeline_query *q,
                      char **out, size_t *out_len)
{
    (void)st;
    (void)q;
    (void)out;
    (void)out_len;
    return -ENOSYS;
}

int store_pg_latency(struct store *st, const struct store_latency_query *q,
                     char **out, size_t *out_len)
{
    (void)st;
    (void)q;
    (void)out;
    (void)out_len;
    return -ENOSYS;
}

int store_pg_targets_status(struct store *st, char **out, size_t *out_len)
{
    (void)st;
    (void)out;
    (void)out_len;
    return -ENOSYS;
}

int store_pg_targets_window(struct store *st, const char *const *targets,
                            size_t n, int64_t from_ms, int64_t to_ms,
                            enum store_step step, struct store_window *out)
{
    (void)st;
    (void)targets;
    (void)n;
    (void)from_ms;
    (void)to_ms;
    (void)step;
    (void)out;
    return -ENOSYS;
}
