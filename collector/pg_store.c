/* pg_store.c -- the PostgreSQL backend's open and close, and the
 * maintenance thread: leadership, retention, partitions ahead.
 * STUB: to be written (issue 15). */
#include "store_pg.h"

#include <errno.h>

#include "store_priv.h"

int store_pg_open(struct store *st)
{
    (void)st;
    return -ENOSYS;
}

void store_pg_close(struct store *st)
{
    (void)st;
}

int store_pg_leader(struct store *st)
{
    (void)st;
    return 0;
}

int store_pg_retention(struct store *st, PGconn *c, int64_t now_ms)
{
    (void)st;
    (void)c;
    (void)now_ms;
    return -ENOSYS;
}
