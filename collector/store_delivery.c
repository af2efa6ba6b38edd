/* store_delivery.c -- one batch's delivery bookkeeping: the agent row
 * (watermark, drop report, clock offset and its agent_offsets rows), the
 * events inserted once each, and the gap and drop events the collector
 * makes for what is lost. store_deliver is the arithmetic, neutral to the
 * backend, over a backend's store_delivery_ops (SQLite's are here, on the
 * writer connection; PostgreSQL's in pg_writer.c). store_ingest_locked
 * stores one batch inside the SQLite group's transaction. */
#include "store_priv.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "log.h"
#include "util.h"

#define STORE_FIELDS_BYTES   (1u << 20)  /* one event's JSON fields */
#define STORE_MS_MIN         946684800000LL  /* 2000-01-01: a real clock */
#define STORE_MS_MAX         4102444800000LL /* 2100-01-01 */
#define STORE_OFFSET_MAX_MS (24.0 * 3600 * 1000)  /* larger: not a sample */

static int store_ms_ok(int64_t ms)
{
    return ms >= STORE_MS_MIN && ms <= STORE_MS_MAX;
}

const char store_event_ins_sql[] =
    "INSERT OR IGNORE INTO events (agent_id, seq, unix_ms, recv_delta_ms,"
    " kind_id, target_id, text_id, probe_type, ok, status, dns_us,"
    " connect_us, tls_us, first_byte_us, total_us, served_by_id, cert_id,"
    " answers_id, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
    " ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

void store_event_cols(const struct store_event_row *e,
                      const struct store_event_ids *ids,
                      struct store_event_cols *c)
{
    const Sextant__V1__ProbeResult *p = e->probe;
    const Sextant__V1__Timings *t = p ? p->timings : NULL;
    int64_t *v = c->v;

    memset(c, 0, sizeof(*c));
    v[0] = e->agent_id;
    v[1] = (int64_t)e->seq;
    c->has[1] = e->seq != 0;
    v[2] = e->unix_ms;
    /* Both clocks lie in 2000-2100 (wire validation, store_ms_ok): the
     * difference fits, and takes 2 or 3 bytes instead of 6. */
    v[3] = e->recv_ms - e->unix_ms;
    v[4] = ids->kind;
    v[5] = ids->target;
    v[6] = ids->text;
    c->has[0] = c->has[2] = c->has[3] = c->has[4] = 1;
    c->has[5] = ids->target != 0;
    c->has[6] = ids->text != 0;
    c->data = e->data;
    if (e->data || !p)
        return;
    /* sextant.proto's ProbeType; one this build does not know: 0, which
     * reads back as "unknown", the name the JSON gave it. Timings are at
     * most INT64_MAX here (store_probe_typed). */
    v[7] = p->type >= SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP &&
           p->type <= SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_KUBE
           ? (int)p->type : 0;
    v[8] = p->ok ? 1 : 0;
    v[9] = p->status;
    v[10] = t ? (int64_t)t->dns_us : 0;
    v[11] = t ? (int64_t)t->connect_us : 0;
    v[12] = t ? (int64_t)t->tls_us : 0;
    v[13] = t ? (int64_t)t->first_byte_us : 0;
    v[14] = t ? (int64_t)t->total_us : 0;
    v[15] = ids->region;
    v[16] = ids->cert;
    v[17] = ids->answers;
    for (int i = 7; i < 15; i++)
        c->has[i] = 1;
    c->has[15] = ids->region != 0;
    c->has[16] = ids->cert != 0;
    c->has[17] = ids->answers != 0;
}

int store_event_bind(sqlite3_stmt *s, const struct store_event_row *e,
                     const struct store_event_ids *ids)
{
    struct store_event_cols c;
    int ok = 1;

    store_event_cols(e, ids, &c);
    for (int i = 0; i < STORE_EVENT_INTS && ok; i++)
        ok = (c.has[i] ? sqlite3_bind_int64(s, i + 1, c.v[i])
                       : sqlite3_bind_null(s, i + 1)) == SQLITE_OK;
    if (ok)
        ok = (c.data ? sqlite3_bind_text(s, 19, c.data, -1, SQLITE_STATIC)
                     : sqlite3_bind_null(s, 19)) == SQLITE_OK;
    if (!ok) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return -EIO;
    }
    return 0;
}

int store_event_intern(struct store *st, const struct store_event_row *e,
                       store_intern_fn intern, struct store_event_ids *ids)
{
    const Sextant__V1__ProbeResult *p = e->probe;
    char cert[24];

    memset(ids, 0, sizeof(*ids));
    if (intern(st, DIM_KIND, e->kind, &ids->kind) < 0 ||
        (e->target && intern(st, DIM_TARGET, e->target, &ids->target) < 0) ||
        (e->text && intern(st, DIM_TEXT, e->text, &ids->text) < 0))
        return -EIO;
    if (e->data || !p)
        return 0;
    if (p->served_by[0] &&
        intern(st, DIM_REGION, p->served_by, &ids->region) < 0)
        return -EIO;
    if (p->cert_not_after_unix_ms) {
        snprintf(cert, sizeof(cert), "%lld",
                 (long long)p->cert_not_after_unix_ms);
        if (intern(st, DIM_CERT, cert, &ids->cert) < 0)
            return -EIO;
    }
    if (e->answers && intern(st, DIM_TEXT, e->answers, &ids->answers) < 0)
        return -EIO;
    return 0;
}

/* SQLite's delivery op: inserts @e unless its (agent, seq) is stored
 * already (INSERT OR IGNORE): 1 inserted, 0 already there, -EIO. */
static int store_sq_event(struct store *st, struct store_event_row *e)
{
    struct store_event_ids ids;

    if (store_event_intern(st, e, store_intern, &ids) < 0)
        return -EIO;
    e->target_id = ids.target;
    e->text_id = ids.text;
    if (store_event_bind(st->event_ins, e, &ids) < 0 ||
        store_step_done(st->event_ins) < 0)
        return -EIO;
    return sqlite3_changes(st->wdb) > 0;
}

/* Inserts an event the collector made (gap, drop): no seq, no target. */
static int store_insert_note(struct store *st,
                             const struct store_delivery_ops *ops,
                             int64_t agent_id, const char *kind,
                             int64_t unix_ms, int64_t recv_ms,
                             const char *data)
{
    struct store_event_row e = {
        .agent_id = agent_id, .unix_ms = unix_ms, .recv_ms = recv_ms,
        .kind = kind, .data = data,
    };
    int rc = ops->event(st, &e);

    return rc < 0 ? rc : 0;
}

/* A seq range [first, last] some batch explained as dropped. */
struct store_range {
    uint64_t first, last;
};

/* Events 'from'..'to' are lost and nobody said why. Stored as an event of
 * its own so the timeline shows it. */
static int store_insert_gap_n(struct store *st,
                              const struct store_delivery_ops *ops,
                              int64_t agent_id, uint64_t from, uint64_t to,
                              uint64_t count, int64_t unix_ms,
                              int64_t recv_ms)
{
    char data[96];

    snprintf(data, sizeof(data),
             "{\"from_seq\":%llu,\"to_seq\":%llu,\"count\":%llu}",
             (unsigned long long)from, (unsigned long long)to,
             (unsigned long long)count);
    return store_insert_note(st, ops, agent_id, "gap", unix_ms, recv_ms,
                             data);
}

static int store_insert_gap(struct store *st,
                            const struct store_delivery_ops *ops,
                            int64_t agent_id, uint64_t from, uint64_t to,
                            int64_t unix_ms, int64_t recv_ms)
{
    return store_insert_gap_n(st, ops, agent_id, from, to, to - from + 1,
                              unix_ms, recv_ms);
}

/* SQLite's walk ops: the agent's stored (seq, unix_ms) rows with seq in
 * [@from, @to] (to UINT64_MAX: no upper bound), through st->walk. */
static int store_sq_walk(struct store *st, int64_t agent_id, uint64_t from,
                         uint64_t to)
{
    sqlite3_stmt *s = to == UINT64_MAX ? st->seq_scan : st->seq_range;

    st->walk = s;
    if (sqlite3_bind_int64(s, 1, agent_id) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, to == UINT64_MAX ? (int64_t)from - 1
                                                  : (int64_t)from) !=
            SQLITE_OK ||
        (to != UINT64_MAX &&
         sqlite3_bind_int64(s, 3, (int64_t)to) != SQLITE_OK))
        return -EIO;
    return 0;
}

static int store_sq_next(struct store *st, uint64_t *seq, int64_t *ms)
{
    int step = sqlite3_step(st->walk);

    if (step == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(st->walk, 0);
        *ms = sqlite3_column_int64(st->walk, 1);
        return 1;
    }
    return step == SQLITE_DONE ? 0 : -EIO;
}

static int store_sq_walk_end(struct store *st, int rc, const char *what)
{
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "%s: %s", what,
                sqlite3_errmsg(st->wdb));
    sqlite3_reset(st->walk);
    sqlite3_clear_bindings(st->walk);
    return rc;
}

/* Stores gap events for [from, to] less the ranges in @drops (those have
 * their drop event): one per piece that is left. */
static int store_gaps(struct store *st, const struct store_delivery_ops *ops,
                      int64_t agent_id, uint64_t from, uint64_t to,
                      const struct store_range *drops, size_t n_drops,
                      int64_t unix_ms, int64_t recv_ms)
{
    uint64_t p = from;
    int rc;

    while (p <= to) {
        uint64_t end = to;
        int skipped = 0;

        for (size_t i = 0; i < n_drops; i++) {
            if (drops[i].last < p || drops[i].first > to)
                continue;
            if (drops[i].first <= p) {      /* p is explained: skip it all */
                p = drops[i].last + 1;
                skipped = 1;
                break;
            }
            if (drops[i].first - 1 < end)   /* stop before the next one */
                end = drops[i].first - 1;
        }
        if (skipped) {
            if (p == 0)                     /* wrapped: nothing above */
                break;
            continue;
        }
        rc = store_insert_gap(st, ops, agent_id, p, end, unix_ms, recv_ms);
        if (rc < 0)
            return rc;
        if (end == to)
            break;
        p = end + 1;
    }
    return 0;
}

static int store_insert_drop(struct store *st,
                             const struct store_delivery_ops *ops,
                             int64_t agent_id,
                             uint64_t from, uint64_t to, uint64_t count,
                             int64_t from_ms, int64_t to_ms,
                             int64_t fallback_ms, int64_t recv_ms)
{
    char data[192];

    snprintf(data, sizeof(data),
             "{\"count\":%llu,\"from_seq\":%llu,\"to_seq\":%llu,"
             "\"from_ms\":%lld,\"to_ms\":%lld}",
             (unsigned long long)count, (unsigned long long)from,
             (unsigned long long)to, (long long)from_ms, (long long)to_ms);
    /* On the timeline where the loss began, if the agent said when. */
    return store_insert_note(st, ops, agent_id, "drop",
                             from_ms ? from_ms : fallback_ms, recv_ms, data);
}

/* Stores drop report @d unless it was stored already: a report that goes
 * no further than the last one (a replay, or the next batch repeating it)
 * adds nothing. A report that extends the last one (the agent kept
 * counting because the Ack of the first got lost) counts only the new
 * part: seqs after the last report, and as count the growth when it
 * counts from the same first seq.
 *
 * The agent reports what it dropped unacked, which this collector may
 * have stored all the same (a batch whose Ack was lost; with several
 * collectors, one another collector lacked): a drop event says what this
 * collector lacks. A contiguous report (count = its seqs) gets one drop
 * event per run of seqs not stored, each exact; any other report, one
 * event spanning the seqs not stored, its count capped by theirs. The
 * times of a run inside the report are bounded by its stored neighbours.
 * Updates @row's drop fields. */
static int store_drop(struct store *st, const struct store_delivery_ops *ops,
                      struct store_agent_row *row,
                      const Sextant__V1__Drops *d, int64_t fallback_ms,
                      int64_t recv_ms)
{
    uint64_t from = d->first_seq, count = d->count, p, missing = 0;
    uint64_t span_from = 0, span_to = 0;
    int64_t from_ms = d->first_unix_ms, to_ms = d->last_unix_ms;
    int64_t prev_ms, span_from_ms = 0, span_to_ms = 0;
    int contiguous, rc, step;

    if (d->last_seq <= row->drop_last)
        return 0;
    if (from <= row->drop_last) {
        from = row->drop_last + 1;
        if (d->first_seq == row->drop_first && count > row->drop_count)
            count -= row->drop_count;
        if (count > d->last_seq - row->drop_last)
            count = d->last_seq - row->drop_last;
        from_ms = row->drop_last_ms;        /* the new part is no older */
    }
    if (!store_ms_ok(from_ms))
        from_ms = 0;
    if (!store_ms_ok(to_ms))
        to_ms = 0;
    contiguous = count == d->last_seq - from + 1;
    rc = ops->walk(st, row->id, from, d->last_seq);
    if (rc < 0)
        goto out;
    p = from;                       /* the first seq not yet looked at */
    prev_ms = from_ms;
    for (;;) {
        uint64_t next = d->last_seq + 1;    /* past the end: no more rows */
        int64_t next_ms = to_ms;

        step = ops->next(st, &next, &next_ms);
        if (step < 0) {
            rc = step;
            goto out;
        }
        if (next > p) {                     /* p .. next-1: not stored */
            if (contiguous) {
                rc = store_insert_drop(st, ops, row->id, p, next - 1,
                                       next - p, prev_ms, next_ms,
                                       fallback_ms, recv_ms);
                if (rc < 0)
                    goto out;
            } else {
                if (missing == 0) {
                    span_from = p;
                    span_from_ms = prev_ms;
                }
                span_to = next - 1;
                span_to_ms = next_ms;
                missing += next - p;
            }
        }
        if (step == 0)
            break;
        p = next + 1;
        prev_ms = next_ms;
    }
    if (missing > 0) {
        rc = store_insert_drop(st, ops, row->id, span_from, span_to,
                               count < missing ? count : missing,
                               span_from_ms, span_to_ms, fallback_ms,
                               recv_ms);
        /* The report explains fewer seqs than are missing in its span
         * (some went elsewhere, e.g. a dead letter): the rest is a gap of
         * the same span, so every missing seq is accounted for here. */
        if (rc == 0 && count < missing)
            rc = store_insert_gap_n(st, ops, row->id, span_from, span_to,
                                    missing - count,
                                    span_to_ms ? span_to_ms : fallback_ms,
                                    recv_ms);
        if (rc < 0)
            goto out;
    }
    row->drop_first = d->first_seq;
    row->drop_last = d->last_seq;
    row->drop_count = d->count;
    row->drop_last_ms = to_ms;
    rc = 0;
out:
    return ops->walk_end(st, rc, "drop report");
}

/* Moves @row's watermark over every stored seq that is now contiguous
 * with it, and over every hole at or below @gone (seqs the agent no
 * longer has): such a hole gets gap events, less the @drops ranges. Stops
 * at the first hole above @gone, which the agent can still fill. */
static int store_advance(struct store *st,
                         const struct store_delivery_ops *ops,
                         struct store_agent_row *row, uint64_t gone,
                         const struct store_range *drops, size_t n_drops,
                         int64_t fallback_ms, int64_t recv_ms)
{
    uint64_t w = row->acked;
    int rc, step;

    rc = ops->walk(st, row->id, w + 1, UINT64_MAX);
    if (rc < 0)
        goto out;
    for (;;) {
        uint64_t next = 0;              /* 0: nothing stored above w */
        int64_t next_ms = fallback_ms;
        uint64_t hole_end;

        step = ops->next(st, &next, &next_ms);
        if (step < 0) {
            rc = step;
            goto out;
        }
        if (next != 0 && next == w + 1) {
            w = next;
            continue;
        }
        /* A hole from w + 1 up to before next (or open-ended): what of it
         * lies at or below 'gone' is lost for good. */
        hole_end = next ? next - 1 : gone;
        if (hole_end > gone)
            hole_end = gone;
        if (hole_end > w) {
            rc = store_gaps(st, ops, row->id, w + 1, hole_end, drops,
                            n_drops, next_ms, recv_ms);
            if (rc < 0)
                goto out;
            w = hole_end;
        }
        if (next == 0 || next != w + 1)
            break;
        w = next;
    }
    row->acked = w;
    rc = 0;
out:
    return ops->walk_end(st, rc, "watermark");
}

/* agents.clock_window: STORE_CLOCK_SAMPLE bytes per sample, little-endian
 * whatever the host, oldest first. What does not parse is dropped. */
void store_clock_load(struct store_agent_row *row, const void *blob,
                      size_t len)
{
    const uint8_t *p = blob;

    row->n_win = 0;
    if (!p || len % STORE_CLOCK_SAMPLE != 0 ||
        len > STORE_CLOCK_WINDOW * STORE_CLOCK_SAMPLE)
        return;
    for (; len > 0; len -= STORE_CLOCK_SAMPLE, p += STORE_CLOCK_SAMPLE) {
        struct store_clock_sample *c = &row->win[row->n_win++];
        uint64_t o = 0;
        uint32_t r = 0;

        for (int i = 7; i >= 0; i--)
            o = o << 8 | p[i];
        for (int i = 11; i >= 8; i--)
            r = r << 8 | p[i];
        c->offset_us = (int64_t)o;
        c->rtt_us = r;
    }
}

size_t store_clock_save(const struct store_agent_row *row,
                        uint8_t out[STORE_CLOCK_WINDOW * STORE_CLOCK_SAMPLE])
{
    uint8_t *p = out;

    for (size_t k = 0; k < row->n_win; k++, p += STORE_CLOCK_SAMPLE) {
        uint64_t o = (uint64_t)row->win[k].offset_us;
        uint32_t r = row->win[k].rtt_us;

        for (int i = 0; i < 8; i++, o >>= 8)
            p[i] = (uint8_t)o;
        for (int i = 8; i < 12; i++, r >>= 8)
            p[i] = (uint8_t)r;
    }
    return row->n_win * STORE_CLOCK_SAMPLE;
}

/* The agent's clock offset as recorded for its events (agent_offsets, see
 * store_priv.h): when this batch's estimate differs from the latest row
 * by a millisecond or more (or there is none), a row from the first seq
 * no stored event holds yet, so no event already stored changes its
 * corrected time. @prior_max: the agent's highest stored seq before this
 * batch; @first: the batch's lowest new seq (0: none). */
int64_t store_offset_from(uint64_t prior_max, uint64_t first)
{
    /* Above every stored seq (INT64_MAX: ingest caps seqs there). */
    int64_t from = prior_max >= (uint64_t)INT64_MAX ? INT64_MAX
                                                    : (int64_t)prior_max + 1;

    if (first > (uint64_t)from)
        from = (int64_t)first;
    return from;
}

static int store_sq_offset(struct store *st,
                           const struct store_agent_row *row,
                           uint64_t prior_max, uint64_t first)
{
    sqlite3_stmt *s = st->off_last;
    int64_t off, from;
    int step, rc = -EIO;

    if (!row->has_offset)
        return 0;
    off = llround(row->offset_ms);
    if (sqlite3_bind_int64(s, 1, row->id) != SQLITE_OK)
        goto out;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW && sqlite3_column_int64(s, 1) == off) {
        rc = 0;
        goto out;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        goto out;
    sqlite3_reset(s);
    from = store_offset_from(prior_max, first);
    s = st->off_ins;
    if (sqlite3_bind_int64(s, 1, row->id) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, from) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, off) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) == SQLITE_DONE)
        rc = 0;
out:
    if (rc < 0)
        log_msg(LOGL_ERROR, "store", "clock offset row: %s",
                sqlite3_errmsg(st->wdb));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* The agent's highest stored seq (0: none), before a batch adds its own. */
static int store_sq_seq_max(struct store *st, int64_t agent_id,
                            uint64_t *out)
{
    sqlite3_stmt *s = st->seq_max;
    int rc = -EIO;

    if (sqlite3_bind_int64(s, 1, agent_id) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        *out = (uint64_t)sqlite3_column_int64(s, 0);   /* NULL: 0 */
        rc = 0;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* Finds or creates the agent row. */
static int store_sq_agent(struct store *st, const Sextant__V1__Batch *b,
                          int64_t recv_ms, struct store_agent_row *row)
{
    sqlite3_stmt *s = st->agent_get;
    int64_t epoch = (int64_t)b->epoch;   /* same 64 bits */
    int rc = -EIO, step;

    memset(row, 0, sizeof(*row));
    if (store_intern(st, DIM_CLUSTER, b->cluster, &row->cluster_id) < 0)
        return -EIO;
    if (sqlite3_bind_text(s, 1, b->cluster, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(s, 2, b->node, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, epoch) != SQLITE_OK)
        goto out;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        row->id = sqlite3_column_int64(s, 0);
        row->acked = (uint64_t)sqlite3_column_int64(s, 1);
        row->has_offset = sqlite3_column_type(s, 2) != SQLITE_NULL;
        row->offset_ms = sqlite3_column_double(s, 2);
        row->drop_first = (uint64_t)sqlite3_column_int64(s, 3);
        row->drop_last = (uint64_t)sqlite3_column_int64(s, 4);
        row->drop_count = (uint64_t)sqlite3_column_int64(s, 5);
        row->drop_last_ms = sqlite3_column_int64(s, 6);
        store_clock_load(row, sqlite3_column_blob(s, 7),
                         (size_t)sqlite3_column_bytes(s, 7));
        rc = 0;
        goto out;
    }
    if (step != SQLITE_DONE)
        goto out;
    sqlite3_reset(s);
    s = st->agent_ins;
    if (sqlite3_bind_text(s, 1, b->cluster, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(s, 2, b->region, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(s, 3, b->node, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, epoch) != SQLITE_OK ||
        sqlite3_bind_text(s, 5, b->agent_version, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(s, 6, recv_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 7, row->cluster_id) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) != SQLITE_DONE)
        goto out;
    row->id = sqlite3_last_insert_rowid(st->wdb);
    rc = 0;
out:
    if (rc < 0)
        log_msg(LOGL_ERROR, "store", "agent row: %s",
                sqlite3_errmsg(st->wdb));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* The estimate from a window of @n > 0 samples (oldest first): of those
 * within their RTT/2 plus STORE_OFFSET_SPIKE_MS of the median offset (all
 * of them while fewer than 3: no majority yet), the one with the smallest
 * RTT, the newest on a tie. An unknown RTT ranks as the largest allowed.
 * The median itself always qualifies. With an even @n the median is the
 * older of the two middle samples: taking always the lower (or upper) one
 * would follow a step down (or up) once half the window, not most of it,
 * agrees; the older one moves only with a strict majority either way. */
static double store_clock_pick(const struct store_clock_sample *w, size_t n)
{
    size_t order[STORE_CLOCK_WINDOW], mid;  /* indexes by offset */
    int64_t median;
    uint32_t best_rank = UINT32_MAX;
    size_t best = n - 1;

    for (size_t i = 0; i < n; i++) {
        size_t k = i;

        while (k > 0 && w[order[k - 1]].offset_us > w[i].offset_us) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    mid = order[(n - 1) / 2];
    if (n % 2 == 0 && order[n / 2] < mid)
        mid = order[n / 2];
    median = w[mid].offset_us;
    for (size_t i = n; i-- > 0;) {
        uint32_t rank = w[i].rtt_us ? w[i].rtt_us : STORE_RTT_MAX_US;
        double off = fabs((double)(w[i].offset_us - median)) / 1000.0;

        if (n >= 3 && off > rank / 2000.0 + STORE_OFFSET_SPIKE_MS)
            continue;
        if (rank < best_rank) {
            best_rank = rank;
            best = i;
        }
    }
    return (double)w[best].offset_us / 1000.0;
}

/* Adds this batch's clock offset sample to @row's window and picks the
 * estimate again: collector time at receipt minus agent time at sending,
 * less half the previous round trip (the best guess of the one-way
 * delay). Without a send time, or with a round trip over the cap, no
 * sample. */
static void store_clock(struct store_agent_row *row,
                        const Sextant__V1__Batch *b, int64_t recv_ms)
{
    double sample;

    if (!store_ms_ok(b->sent_unix_ms) || b->prev_rtt_us > STORE_RTT_MAX_US)
        return;
    sample = (double)(recv_ms - b->sent_unix_ms) -
             (double)b->prev_rtt_us / 2000.0;
    /* A clock a day off is not skew but a node that booted without time;
     * such a sample would drag the estimate (and widen every corrected
     * query's window) for days. */
    if (sample > STORE_OFFSET_MAX_MS || sample < -STORE_OFFSET_MAX_MS)
        return;
    if (row->n_win == STORE_CLOCK_WINDOW) {
        memmove(row->win, row->win + 1,
                (STORE_CLOCK_WINDOW - 1) * sizeof(row->win[0]));
        row->n_win--;
    }
    row->win[row->n_win].offset_us = llround(sample * 1000.0);
    row->win[row->n_win].rtt_us = b->prev_rtt_us;
    row->n_win++;
    row->offset_ms = store_clock_pick(row->win, row->n_win);
    row->has_offset = 1;
}

/* Writes @row back, with what batch @b says of the agent. @reported:
 * the batch's drop report was new (its receipt is the report's time).
 * The spool backlog is the latest batch's by arrival, as sent: an agent
 * from before Batch.spool_events sends 0, which reads as 0. */
static int store_sq_agent_put(struct store *st,
                              const struct store_agent_row *row,
                              const Sextant__V1__Batch *b, int64_t recv_ms,
                              int reported)
{
    sqlite3_stmt *s = st->agent_upd;
    uint8_t win[STORE_CLOCK_WINDOW * STORE_CLOCK_SAMPLE];
    size_t win_len = store_clock_save(row, win);

    if (sqlite3_bind_int64(s, 1, row->id) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, (int64_t)row->acked) != SQLITE_OK ||
        sqlite3_bind_text(s, 3, b->region, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(s, 4, b->agent_version, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(s, 5, recv_ms) != SQLITE_OK ||
        (row->has_offset ? sqlite3_bind_double(s, 6, row->offset_ms)
                         : sqlite3_bind_null(s, 6)) != SQLITE_OK ||
        sqlite3_bind_int64(s, 7, (int64_t)row->drop_first) != SQLITE_OK ||
        sqlite3_bind_int64(s, 8, (int64_t)row->drop_last) != SQLITE_OK ||
        sqlite3_bind_int64(s, 9, (int64_t)row->drop_count) != SQLITE_OK ||
        sqlite3_bind_int64(s, 10, row->drop_last_ms) != SQLITE_OK ||
        (win_len ? sqlite3_bind_blob(s, 11, win, (int)win_len,
                                     SQLITE_STATIC)
                 : sqlite3_bind_null(s, 11)) != SQLITE_OK ||
        (reported ? sqlite3_bind_int64(s, 12, recv_ms)
                  : sqlite3_bind_null(s, 12)) != SQLITE_OK ||
        sqlite3_bind_int64(s, 13, (int64_t)b->spool_events) != SQLITE_OK ||
        sqlite3_bind_int64(s, 14, (int64_t)b->spool_bytes) != SQLITE_OK) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return -EIO;
    }
    return store_step_done(s);
}

/* The SQLite backend's side of store_deliver. */
static const struct store_delivery_ops store_sq_ops = {
    .agent = store_sq_agent,
    .seq_max = store_sq_seq_max,
    .walk = store_sq_walk,
    .next = store_sq_next,
    .walk_end = store_sq_walk_end,
    .event = store_sq_event,
    .offset = store_sq_offset,
    .agent_put = store_sq_agent_put,
};

int store_ingest_locked(struct store *st, const Sextant__V1__Batch *b,
                        int64_t recv_ms, uint64_t *acked_seq)
{
    return store_deliver(st, &store_sq_ops, b, recv_ms, acked_seq);
}

int store_deliver(struct store *st, const struct store_delivery_ops *ops,
                  const Sextant__V1__Batch *b, int64_t recv_ms,
                  uint64_t *acked_seq)
{
    const Sextant__V1__Drops *d = b->drops;
    struct store_agent_row row;
    struct store_range drops[2];
    size_t n_drops = 0;
    struct jsonw w;
    uint64_t gone, prior_max = 0, first_new = 0, prior_drop;
    int64_t fallback_ms;
    int rc, reported = 0;

    rc = ops->agent(st, b, recv_ms, &row);
    if (rc == 0)
        rc = ops->seq_max(st, row.id, &prior_max);
    if (rc < 0)
        return rc;
    /* Where a collector-made event goes on the timeline when nothing
     * better is known: the batch's first event, else its send time. */
    fallback_ms = b->n_events > 0 ? b->events[0]->unix_ms
                  : store_ms_ok(b->sent_unix_ms) ? b->sent_unix_ms
                  : recv_ms;
    if (d && d->count == 0)
        d = NULL;
    /* Dropped ranges are explained losses, never also a gap: this
     * report's, and the last one stored (its range may lie below a
     * watermark that only now moves). */
    if (row.drop_last > 0)
        drops[n_drops++] = (struct store_range){ row.drop_first,
                                                 row.drop_last };
    if (d)
        drops[n_drops++] = (struct store_range){ d->first_seq, d->last_seq };
    prior_drop = row.drop_last;
    if (d) {
        rc = store_drop(st, ops, &row, d, fallback_ms, recv_ms);
        if (rc < 0)
            return rc;
        reported = row.drop_last != prior_drop;
    }
    for (size_t i = 0; i < b->n_events; i++) {
        const Sextant__V1__Event *ev = b->events[i];
        struct store_event_row e = {
            .agent_id = row.id, .seq = ev->seq, .unix_ms = ev->unix_ms,
            .recv_ms = recv_ms, .kind = wire_event_kind(ev),
        };

        if (ev->seq <= row.acked)       /* stored, or declared lost */
            continue;
        jsonw_init(&w, STORE_FIELDS_BYTES);     /* allocates on use */
        rc = store_event_fields(ev, &w, &e);
        if (rc == 0)
            rc = ops->event(st, &e);
        jsonw_free(&w);
        if (rc < 0)
            return rc;
        if (rc == 1 && (first_new == 0 || ev->seq < first_new))
            first_new = ev->seq;
        /* On PostgreSQL the leader reads what every collector stored
         * (pg_incident.c); st->inc is its maintenance thread's. */
        if (rc == 1 && !st->pg && (st->inc || st->inc_start))
            store_inc_note(st, row.id, ev, &e);
        if (rc == 1 && store_now_note(st, ev, &e) < 0)
            return -ENOMEM;
        if (rc == 1 && ev->kind_case == SEXTANT__V1__EVENT__KIND_PROBE &&
            e.target_id) {
            rc = store_sample(st, &row, &e, ev->probe);
            if (rc < 0)
                return rc;
        }
    }
    /* What the agent no longer has: below oldest_seq when it says so.
     * Older agents do not: then, as before, any jump forward within or
     * after the batch is a loss (they ship in seq order). Dropped seqs
     * are gone either way. */
    if (b->oldest_seq > 0)
        gone = b->oldest_seq - 1;
    else
        gone = b->n_events > 0 ? b->events[b->n_events - 1]->seq - 1 : 0;
    if (!b->oldest_seq && d && d->last_seq > gone)
        gone = d->last_seq;
    rc = store_advance(st, ops, &row, gone, drops, n_drops, fallback_ms,
                       recv_ms);
    if (rc < 0)
        return rc;
    store_clock(&row, b, recv_ms);
    rc = ops->offset(st, &row, prior_max, first_new);
    if (rc == 0)
        rc = ops->agent_put(st, &row, b, recv_ms, reported);
    if (rc == 0)
        *acked_seq = row.acked;
    return rc;
}
