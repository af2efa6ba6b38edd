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

/* Stores what is new in @b (borrowed) in one transaction: events past the
 * agent's watermark, a "gap" event for any jump forward in seq, and the new
 * watermark. Replayed events are skipped. Writes the highest contiguous seq
 * now stored for the agent/epoch to *acked_seq. -EIO on a database error
 * (nothing is then stored). */
int store_ingest(struct store *st, const Sextant__V1__Batch *b,
                 int64_t recv_ms, uint64_t *acked_seq);

struct store_timeline_query {
    int64_t from_ms;        /* inclusive, agent time */
    int64_t to_ms;          /* exclusive */
    const char *cluster;    /* NULL = every cluster */
    unsigned limit;
};
#define STORE_TIMELINE_MAX_LIMIT 10000u

/* JSON {"events":[...],"count":N,"truncated":bool}; caller frees *out. */
int store_timeline(struct store *st, const struct store_timeline_query *q,
                   char **out, size_t *out_len);

#endif
