/* store.h -- the collector's SQLite store: schema and migrations, ingest of
 * one batch in one transaction (events + per-agent watermark), and the
 * timeline query. Thread-safe: ingest is serialized on the one write
 * connection; queries use a pool of read-only connections (WAL), so a
 * heavy query never blocks ingest. */
#ifndef SEXTANT_STORE_H
#define SEXTANT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct store;

/* Opens or creates @path, applies migrations. -errno, with a logged reason. */
int store_open(const char *path, struct store **out);
void store_close(struct store *st);     /* NULL is a no-op */

/* Stores what is new in @b (borrowed) in one transaction with the agent's
 * row: every event above the agent/epoch's watermark, whatever the order
 * of arrival (a replayed or overlapping event is stored once); "drop"
 * events for the seqs of b->drops not stored here, unless that report was
 * stored already; "gap" events for seqs the agent no longer has (below
 * b->oldest_seq; when that is 0, any jump forward in seq) that are
 * missing and not explained by a drop report; the clock offset sample
 * (see store_timeline); and the new watermark, which it writes to
 * *acked_seq: the highest seq with nothing missing below it. All seqs
 * must be <= INT64_MAX (ingest.c checks). -EIO on a database error
 * (nothing is then stored). */
int store_ingest(struct store *st, const Sextant__V1__Batch *b,
                 int64_t recv_ms, uint64_t *acked_seq);

enum store_order {
    STORE_ORDER_AGENT,      /* by agent time (each agent's own clock) */
    STORE_ORDER_CORRECTED,  /* by agent time + the agent's clock offset */
};

struct store_timeline_query {
    int64_t from_ms;        /* inclusive, on the clock @order names */
    int64_t to_ms;          /* exclusive */
    const char *cluster;    /* NULL = every cluster */
    unsigned limit;
    enum store_order order;
};
#define STORE_TIMELINE_MAX_LIMIT 10000u

/* JSON {"events":[...],"count":N,"truncated":bool}; caller frees *out.
 * Each event carries time_ms (agent clock), clock_offset_ms (the agent's
 * smoothed offset, collector clock minus agent clock: receive time - send
 * time - previous RTT/2; null before its first batch with a send time),
 * corrected_ms = time_ms + clock_offset_ms and corrected_time. */
int store_timeline(struct store *st, const struct store_timeline_query *q,
                   char **out, size_t *out_len);

#endif
