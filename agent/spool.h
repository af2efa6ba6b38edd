/* spool.h -- the agent's durable FIFO of events not yet acked by the
 * collector: one SQLite file in WAL mode. Every event is stored packed
 * (sextant.v1.Event) with the seq the spool gave it, so the shipper can
 * build a batch without unpacking. Does not ship, compress or retry
 * (shipper.c), and does not bound itself by size yet (issue 5 adds the
 * byte bound and drop accounting with a schema migration).
 *
 * One connection, used by the loop's thread only. The seq counter lives
 * in the file and is read inside each write transaction, so another
 * process (a future "sextant-agent event" command) may append safely. */
#ifndef SEXTANT_AGENT_SPOOL_H
#define SEXTANT_AGENT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define SPOOL_ERR_LEN 256u

struct spool;                       /* opaque outside spool.c */

/* Opens or creates the spool at @path. A new file gets a new random,
 * non-zero epoch and starts at seq 1. On failure writes a one-line reason
 * to @err and returns -errno: -EBADMSG if the file is not a usable spool
 * (corrupt, not SQLite), -EPROTO if its schema is newer than this agent,
 * -EIO / -ENOSPC / -ENOMEM otherwise. */
int spool_open(const char *path, struct spool **out, char *err,
               size_t err_len);
void spool_close(struct spool *sp);             /* NULL is a no-op */

uint64_t spool_epoch(const struct spool *sp);

/* SQLite's message for the last failed call on @sp, for the caller's log
 * line; valid until the next call. */
const char *spool_errmsg(const struct spool *sp);

/* Appends @n events in one transaction (one fsync). Each gets the next
 * seq, and unix_ms = now when it is 0; both are written back into the
 * events only on success. The events are borrowed. */
int spool_append_many(struct spool *sp, Sextant__V1__Event *const *evs,
                      size_t n);
int spool_append(struct spool *sp, Sextant__V1__Event *ev);

/* The oldest events with seq > @after_seq, at most @max_events of them and
 * at most @max_bytes of packed bytes, but always at least one if there is
 * one (a lone event is never stuck behind the byte cap). */
struct spool_chunk {
    size_t n;                       /* 0: nothing to ship */
    uint64_t first_seq;
    uint64_t last_seq;
    size_t bytes;                   /* sum of the events' packed sizes */
    struct wire_buf *events;        /* n entries, pointing into data */
    uint8_t *data;
};
/* On success *out owns its buffers; free with spool_chunk_free(). */
int spool_peek(struct spool *sp, uint64_t after_seq, size_t max_events,
               size_t max_bytes, struct spool_chunk *out);
void spool_chunk_free(struct spool_chunk *c);   /* zeroes it; idempotent */

/* Deletes every event with seq <= @upto_seq; *deleted (may be NULL) gets
 * how many. */
int spool_ack(struct spool *sp, uint64_t upto_seq, uint64_t *deleted);

/* Events in the spool (a full count: for tests and rare checks, not for
 * every turn of the loop). */
int spool_count(struct spool *sp, uint64_t *out);
/* The seq the next appended event will get. */
int spool_next_seq(struct spool *sp, uint64_t *out);

/* Events and their packed bytes in the spool, cheaply enough for every
 * second (/metrics): the count comes from the lowest and highest seq, as
 * seqs in the spool are contiguous (appends take the next seq, acks delete
 * a prefix); the bytes are kept as rows come and go, each new row summed
 * once, here, and acked rows taken off by spool_ack(). Sees what other
 * processes appended. */
int spool_depth(struct spool *sp, uint64_t *events, uint64_t *bytes);

#endif
