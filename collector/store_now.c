/* store_now.c -- the target_now table: every (agent, target)'s latest
 * state event and last typed probe, kept by the writer inside each group
 * commit, so GET /api/v1/status reads one row per agent and target
 * (store_status.c), not the history. A group's events are noted while
 * they are inserted and written as one upsert per (agent, target) before
 * the COMMIT, in the same transaction: target_now is never ahead of or
 * behind the events. The notes and their merge per key are neutral
 * (PostgreSQL's writer upserts them too); the upsert here and the
 * one-time fill from the stored events, for a file from before schema 8,
 * are SQLite's. Writer thread only. */
#include "store_priv.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "log.h"

const char store_now_put_sql[] =
    "INSERT INTO target_now (agent_id, target_id, health, state_ms,"
    " probe_ms, ok, status, total_us, text_id)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (agent_id, target_id) DO UPDATE SET " STORE_NOW_SET;

/* The fill from the stored events: the latest state event per (agent,
 * target) from the partial kind index (few rows: one per health change),
 * then each row's last typed probe, one index walk back on (target_id,
 * unix_ms) bounded as the status query before schema 8 bounded it (the
 * probe that changed the state is at that time). */
#define NOW_PROBE_SLACK_MS "3600000"
static const char now_fill_state_sql[] =
    "INSERT INTO target_now (agent_id, target_id, health, state_ms)"
    " SELECT e.agent_id, e.target_id, json_extract(e.data, '$.to'),"
    "  max(e.unix_ms) FROM events e"
    " WHERE e.kind_id = (SELECT id FROM kinds WHERE name = 'state')"
    "   AND e.data IS NOT NULL AND e.target_id IS NOT NULL"
    " GROUP BY e.agent_id, e.target_id";
static const char now_fill_probe_sql[] =
    "UPDATE target_now SET (probe_ms, ok, status, total_us, text_id) ="
    " (SELECT e.unix_ms, e.ok, e.status, e.total_us, e.text_id"
    "  FROM events e WHERE e.target_id = target_now.target_id"
    "   AND e.unix_ms >= target_now.state_ms - " NOW_PROBE_SLACK_MS
    "   AND e.agent_id = target_now.agent_id"
    "   AND e.probe_type IS NOT NULL"
    "  ORDER BY e.unix_ms DESC LIMIT 1)";

static struct store_now *store_now_new(struct store *st)
{
    if (st->n_now == st->cap_now) {
        size_t cap = st->cap_now ? st->cap_now * 2 : 1024;
        struct store_now *n = realloc(st->now, cap * sizeof(*n));

        if (!n)
            return NULL;
        st->now = n;
        st->cap_now = cap;
    }
    st->now[st->n_now].ord = st->n_now;
    return &st->now[st->n_now++];
}

int store_now_note(struct store *st, const Sextant__V1__Event *ev,
                   const struct store_event_row *e)
{
    const Sextant__V1__ProbeResult *p = e->probe;
    struct store_now *n;

    if (!e->target_id)
        return 0;
    /* Probes only in the typed columns, as the status read them before. */
    if (!(ev->kind_case == SEXTANT__V1__EVENT__KIND_STATE && ev->state) &&
        !(ev->kind_case == SEXTANT__V1__EVENT__KIND_PROBE && !e->data && p))
        return 0;
    n = store_now_new(st);
    if (!n)
        return -ENOMEM;
    n->agent_id = e->agent_id;
    n->target_id = e->target_id;
    n->state_ms = INT64_MIN;
    n->probe_ms = INT64_MIN;
    if (ev->kind_case == SEXTANT__V1__EVENT__KIND_STATE) {
        n->state_ms = e->unix_ms;
        n->health = wire_state_is_handoff(ev->state)
                        ? STORE_HANDED_OFF : store_health_name(ev->state->to);
        return 0;
    }
    n->probe_ms = e->unix_ms;
    n->ok = p->ok ? 1 : 0;
    n->status = p->status;
    /* At most INT64_MAX here, as in the events row (store_probe_typed). */
    n->total_us = p->timings ? (int64_t)p->timings->total_us : 0;
    n->text_id = e->text_id;
    return 0;
}

static int store_now_cmp(const void *a, const void *b)
{
    const struct store_now *x = a, *y = b;

    if (x->agent_id != y->agent_id)
        return x->agent_id < y->agent_id ? -1 : 1;
    if (x->target_id != y->target_id)
        return x->target_id < y->target_id ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* Binds @v, or NULL when the key has no such value (!@has). */
static int store_now_bind(sqlite3_stmt *s, int i, int64_t v, int has)
{
    return has ? sqlite3_bind_int64(s, i, v) : sqlite3_bind_null(s, i);
}

/* Upserts one key's merged state and probe (@k): SQLite's
 * store_now_put_fn. */
static int store_now_put(struct store *st, const struct store_now *k)
{
    sqlite3_stmt *s = st->now_put;
    int hs = k->state_ms != INT64_MIN, hp = k->probe_ms != INT64_MIN;

    if (sqlite3_bind_int64(s, 1, k->agent_id) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, k->target_id) != SQLITE_OK ||
        (hs ? sqlite3_bind_text(s, 3, k->health, -1, SQLITE_STATIC)
            : sqlite3_bind_null(s, 3)) != SQLITE_OK ||
        store_now_bind(s, 4, k->state_ms, hs) != SQLITE_OK ||
        store_now_bind(s, 5, k->probe_ms, hp) != SQLITE_OK ||
        store_now_bind(s, 6, k->ok, hp) != SQLITE_OK ||
        store_now_bind(s, 7, k->status, hp) != SQLITE_OK ||
        store_now_bind(s, 8, k->total_us, hp) != SQLITE_OK ||
        store_now_bind(s, 9, k->text_id, hp && k->text_id) != SQLITE_OK) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return -EIO;
    }
    return store_step_done(s);
}

int store_now_flush(struct store *st)
{
    return store_now_merge(st, store_now_put);
}

int store_now_merge(struct store *st, store_now_put_fn put)
{
    struct store_now k;
    int rc = 0;

    /* By key, then in the events' order: the latest of each key wins
     * its ties, as in the upsert. */
    if (st->n_now > 1)
        qsort(st->now, st->n_now, sizeof(*st->now), store_now_cmp);
    for (size_t i = 0; i < st->n_now && rc == 0; i++) {
        const struct store_now *n = &st->now[i];

        if (i == 0 || n->agent_id != k.agent_id ||
            n->target_id != k.target_id) {
            k = *n;
        } else {
            if (n->state_ms != INT64_MIN && n->state_ms >= k.state_ms) {
                k.state_ms = n->state_ms;
                k.health = n->health;
            }
            if (n->probe_ms != INT64_MIN && n->probe_ms >= k.probe_ms) {
                k.probe_ms = n->probe_ms;
                k.ok = n->ok;
                k.status = n->status;
                k.total_us = n->total_us;
                k.text_id = n->text_id;
            }
        }
        if (i + 1 == st->n_now || st->now[i + 1].agent_id != k.agent_id ||
            st->now[i + 1].target_id != k.target_id)
            rc = put(st, &k);
    }
    st->n_now = 0;
    return rc;
}

int store_now_backfill(struct store *st)
{
    sqlite3 *db = st->wdb;
    int64_t filled, any, t0 = store_mono_ns();

    /* Empty: made by migration 8 and not filled yet (a fill interrupted
     * rolled back whole). The writer keeps a row for every key it ever
     * saw, so a filled table on a file with events is never empty. */
    if (store_pragma_int(db, "SELECT EXISTS (SELECT 1 FROM target_now)",
                         &filled) < 0 ||
        store_pragma_int(db, "SELECT EXISTS (SELECT 1 FROM events)",
                         &any) < 0)
        return -EIO;
    if (filled || !any)
        return 0;
    if (store_exec(db, "BEGIN IMMEDIATE") < 0)
        return -EIO;
    if (store_exec(db, now_fill_state_sql) < 0 ||
        store_exec(db, now_fill_probe_sql) < 0 ||
        store_pragma_int(db, "SELECT count(*) FROM target_now",
                         &filled) < 0 ||
        store_exec(db, "COMMIT") < 0) {
        log_msg(LOGL_ERROR, "store", "filling target_now: %s",
                sqlite3_errmsg(db));
        store_exec(db, "ROLLBACK");
        return -EIO;
    }
    log_msg(LOGL_INFO, "store", "target_now filled from the stored events: "
            "%lld rows in %.3f s", (long long)filled,
            (double)(store_mono_ns() - t0) / 1e9);
    return 0;
}
