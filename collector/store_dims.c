/* store_dims.c -- interned strings (clusters, kinds, targets, texts): a
 * row per distinct string, and a per-table cache of recent ids (neutral:
 * PostgreSQL's writer keeps its ids in the same caches). */
#include "store_priv.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static const char *const store_dim_sql[DIM_COUNT][2] = {
    { "SELECT id FROM clusters WHERE name = ?1",
      "INSERT INTO clusters (name) VALUES (?1)" },
    { "SELECT id FROM kinds WHERE name = ?1",
      "INSERT INTO kinds (name) VALUES (?1)" },
    { "SELECT id FROM targets WHERE name = ?1",
      "INSERT INTO targets (name) VALUES (?1)" },
    { "SELECT id FROM texts WHERE text = ?1",
      "INSERT INTO texts (text) VALUES (?1)" },
    { "SELECT id FROM regions WHERE name = ?1",
      "INSERT INTO regions (name) VALUES (?1)" },
    /* The decimal text of a cert's expiry: the column's INTEGER affinity
     * turns it into the number on insert and in the comparison. */
    { "SELECT id FROM certs WHERE not_after_ms = ?1",
      "INSERT INTO certs (not_after_ms) VALUES (?1)" },
};

static uint64_t store_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;       /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void store_dim_reset(struct store_dim *d)
{
    if (!d->slots)
        return;
    for (size_t i = 0; i < STORE_DIM_CACHE * 2; i++) {
        free(d->slots[i].s);
        d->slots[i].s = NULL;
    }
    d->used = 0;
}

/* After a rollback: ids cached since the last commit may be gone. */
void store_dims_reset(struct store *st)
{
    for (int i = 0; i < DIM_COUNT; i++)
        store_dim_reset(&st->dims[i]);
}

static struct store_dim_slot *store_dim_slot(struct store_dim *d,
                                             const char *s)
{
    size_t mask = STORE_DIM_CACHE * 2 - 1, i = store_hash(s) & mask;

    while (d->slots[i].s && strcmp(d->slots[i].s, s) != 0)
        i = (i + 1) & mask;
    return &d->slots[i];
}

int store_dim_get(struct store_dim *d, const char *s, int64_t *id)
{
    struct store_dim_slot *slot = store_dim_slot(d, s);

    if (!slot->s)
        return 0;
    *id = slot->id;
    return 1;
}

void store_dim_put(struct store_dim *d, const char *s, int64_t id)
{
    struct store_dim_slot *slot;

    if (d->used >= STORE_DIM_CACHE)     /* full: start over */
        store_dim_reset(d);
    slot = store_dim_slot(d, s);
    if (slot->s)
        return;
    slot->s = strdup(s);
    if (slot->s) {                      /* else: not cached, still right */
        slot->id = id;
        d->used++;
    }
}

/* The id of @s in dimension @dim, inserted if new. */
int store_intern(struct store *st, int dim, const char *s,
                 int64_t *id)
{
    struct store_dim *d = &st->dims[dim];
    int step;

    if (store_dim_get(d, s, id))
        return 0;
    if (sqlite3_bind_text(d->sel, 1, s, -1, SQLITE_STATIC) != SQLITE_OK)
        return -EIO;
    step = sqlite3_step(d->sel);
    if (step == SQLITE_ROW)
        *id = sqlite3_column_int64(d->sel, 0);
    sqlite3_reset(d->sel);
    sqlite3_clear_bindings(d->sel);
    if (step != SQLITE_ROW) {
        if (step != SQLITE_DONE ||
            sqlite3_bind_text(d->ins, 1, s, -1, SQLITE_STATIC) != SQLITE_OK ||
            store_step_done(d->ins) < 0)
            return -EIO;
        *id = sqlite3_last_insert_rowid(st->wdb);
    }
    store_dim_put(d, s, *id);
    return 0;
}

int store_dims_alloc(struct store *st)
{
    for (int i = 0; i < DIM_COUNT; i++) {
        if (st->dims[i].slots)
            continue;
        st->dims[i].slots = calloc(STORE_DIM_CACHE * 2,
                                   sizeof(*st->dims[i].slots));
        if (!st->dims[i].slots)
            return -ENOMEM;
    }
    return 0;
}

/* Prepares each table's lookup and insert and allocates its cache: 0 or
 * -EIO (store_dims_finalize frees what was made). */
int store_dims_prepare(struct store *st)
{
    if (store_dims_alloc(st) < 0)
        return -EIO;
    for (int i = 0; i < DIM_COUNT; i++) {
        if (store_prepare(st->wdb, store_dim_sql[i][0],
                          &st->dims[i].sel) < 0 ||
            store_prepare(st->wdb, store_dim_sql[i][1],
                          &st->dims[i].ins) < 0)
            return -EIO;
    }
    return 0;
}

void store_dims_finalize(struct store *st)
{
    for (int i = 0; i < DIM_COUNT; i++) {
        sqlite3_finalize(st->dims[i].sel);
        sqlite3_finalize(st->dims[i].ins);
        store_dim_reset(&st->dims[i]);
        free(st->dims[i].slots);
        memset(&st->dims[i], 0, sizeof(st->dims[i]));
    }
}
