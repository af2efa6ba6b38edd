/* pg_writer.c -- the PostgreSQL backend's writer thread.
 * STUB: to be written (issue 15). */
#include "store_pg.h"

#include <stddef.h>

#include "store_priv.h"

void *store_pg_writer(void *arg)
{
    (void)arg;
    return NULL;
}
