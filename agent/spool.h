/* spool.h -- the agent's durable store of events not yet acked by every
 * collector: one SQLite file in WAL mode. Every event is stored packed
 * (sextant.v1.Event) with the seq the spool gave it, so the shipper can
 * build a batch without unpacking. Bounded by bytes: an append that would
 * pass the bound first drops the oldest events, acked or not, and records
 * per collector what that collector lost (drop records, shipped in
 * Batch.drops); events an append failed to store become such a record
 * too, once an append commits again. Keeps, per collector, the seq
 * ranges it has acked (or refused for good: dead letters), and deletes an
 * event once every collector is done with it. Does not ship, compress or
 * retry (shipper.c).
 *
 * One connection, used by the loop's thread only. Counters (next seq,
 * events, bytes, the bound) live in the file and are read inside each
 * write transaction, so another process ("sextant-agent event") may
 * append safely; it sees the collectors as they were when it opened. */
#ifndef SEXTANT_AGENT_SPOOL_H
#define SEXTANT_AGENT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define SPOOL_ERR_LEN        256u
/* The bound until spool_set_max_bytes(): 64 MiB. Plain digits in _N,
 * since the schema's SQL text (spool_file.c) carries it as a default. */
#define SPOOL_DEF_MAX_BYTES_N 67108864
#define SPOOL_DEF_MAX_BYTES  ((unsigned long long)SPOOL_DEF_MAX_BYTES_N)
#define SPOOL_MIN_MAX_BYTES  (64ull << 10)
#define SPOOL_MAX_COLLECTORS 8u
#define SPOOL_MAX_REASON     1024u          /* bytes of a dead letter's why */
#define SPOOL_DEAD_MAX_BYTES (16u << 20)    /* dead letters kept, newest */

struct spool;                       /* opaque outside spool*.c */

/* Opens or creates the spool at @path. A new file gets a new random,
 * non-zero epoch and starts at seq 1.
 *
 * A file that is not a usable spool -- not SQLite, failing its
 * quick_check, without a valid meta row, or of a schema newer than this
 * agent knows -- is renamed aside to PATH.corrupt-<unix seconds> (with its
 * -wal and -shm), an error is logged, and a new spool with a new epoch
 * takes its place: the agent keeps running, and the collector sees the
 * new epoch. spool_moved_aside() then names where the old file went.
 *
 * Fails only when no spool can be had at all: -EIO, -EACCES, -ENOSPC,
 * -ENOMEM, -EBUSY (another process holds a lock too long), with a
 * one-line reason in @err. */
int spool_open(const char *path, struct spool **out, char *err,
               size_t err_len);
void spool_close(struct spool *sp);             /* NULL is a no-op */

/* The owner lock of the spool at @path, on PATH.lock (created if need
 * be): the running agent and --once take it before spool_open(), so two
 * of them never share a spool; "sextant-agent event" does not, it only
 * appends (SQLite's own locking keeps that safe). Returns 0 and an fd
 * for spool_disown() in *fd_out; -EBUSY when another process holds it,
 * with its pid in *holder (0 if it could not be told); other -errno when
 * the lock file cannot be had. On failure @err gets one line naming the
 * spool (and the holder's pid). */
int spool_own(const char *path, int *fd_out, long *holder, char *err,
              size_t err_len);
void spool_disown(int fd);                      /* -1 is a no-op */

uint64_t spool_epoch(const struct spool *sp);
/* Where spool_open() moved an unusable file, or NULL. Borrowed. */
const char *spool_moved_aside(const struct spool *sp);

/* SQLite's message for the last failed call on @sp, for the caller's log
 * line; valid until the next call. */
const char *spool_errmsg(const struct spool *sp);

/* Sets the byte bound (packed event bytes), stored in the file so other
 * writers keep it too; applies from the next append. -EINVAL below
 * SPOOL_MIN_MAX_BYTES. */
int spool_set_max_bytes(struct spool *sp, uint64_t max_bytes);

/* Makes @ids (the collectors' ingest URLs; borrowed) the collectors, in
 * this order: index i below means @ids[i]. A new id starts with nothing
 * acked, a known one keeps its ranges and drop records, and collectors no
 * longer listed are forgotten -- so events only they were holding are
 * deleted now. 1 <= @n <= SPOOL_MAX_COLLECTORS. Until it is called the
 * spool knows the collectors the file names, in the order they were
 * first seen (which is what another writer process uses). */
int spool_set_collectors(struct spool *sp, const char *const *ids,
                         size_t n);
size_t spool_n_collectors(const struct spool *sp);

/* Appends @n events in one transaction (one fsync). Each gets the next
 * seq, and unix_ms = now when it is 0; both are written back into the
 * events only on success. The events are borrowed. When the events would
 * take the spool past its bound, the oldest events are deleted first, as
 * few as make room (an append bigger than the bound on its own is kept
 * whole), and each collector gets a drop record of those it had not
 * acked. */
int spool_append_many(struct spool *sp, Sextant__V1__Event *const *evs,
                      size_t n);
int spool_append(struct spool *sp, Sextant__V1__Event *ev);

/* Events a collector lost to the bound or to a failed append, as
 * Batch.drops carries them. */
struct spool_drop {
    uint64_t count;                 /* 0: none */
    uint64_t first_seq;
    uint64_t last_seq;
    int64_t first_unix_ms;
    int64_t last_unix_ms;
};

/* An append that fails (disk full, I/O error, a lock held too long: any
 * -errno) stores none of its events but does not lose them silently: @sp
 * counts them in memory with their time span, and the next append that
 * commits first gives them the next seqs and records them, for every
 * collector, as a drop record of their own (count = its seqs, shipped in
 * Batch.drops like drops from the bound; not in spool_stats().dropped,
 * which counts the bound's: the caller counts failed appends).
 * Seqs are used only then, so the collector sees a drop, never a gap.
 * What is counted and not yet recorded (seqs 0); lost if the process
 * ends first. */
void spool_refused(const struct spool *sp, struct spool_drop *out);

/* A run of events in ascending seq order: at most @max_events of them and
 * at most @max_bytes of packed bytes, but always at least one if there is
 * one (a lone event is never stuck behind the byte cap). */
struct spool_chunk {
    size_t n;                       /* 0: nothing to ship */
    uint64_t first_seq;
    uint64_t last_seq;
    size_t bytes;                   /* sum of the events' packed sizes */
    struct wire_buf *events;        /* n entries, pointing into data */
    uint8_t *data;
    /* spool_peek_for() only: */
    int more;                       /* more unsent events than these */
    uint64_t oldest_seq;            /* Batch.oldest_seq for the collector */
    struct spool_drop drop;         /* Batch.drops for the collector */
};
/* The oldest events with seq > @after_seq, whoever acked them (tests,
 * inspection). On success *out owns its buffers; free with
 * spool_chunk_free(). */
int spool_peek(struct spool *sp, uint64_t after_seq, size_t max_events,
               size_t max_bytes, struct spool_chunk *out);
/* The next batch for collector @coll: the oldest events it has not acked
 * or, with @newest, the newest ones (still returned in ascending order).
 * Sets more, oldest_seq (the lowest seq it lacks that may still come, in
 * this batch, a later one, or a later drop record: anything lower it
 * lacks is gone for good) and drop (its oldest pending drop record, one
 * per batch so that a replayed record is always the same record; one of
 * events an append failed to store waits for a batch of events above
 * it, or goes alone, and oldest_seq stays at or below it). With
 * no events left but a drop record pending, n is 0 and the record is the
 * batch: the spool_batch_*() calls take such a chunk too. */
int spool_peek_for(struct spool *sp, unsigned coll, int newest,
                   size_t max_events, size_t max_bytes,
                   struct spool_chunk *out);
void spool_chunk_free(struct spool_chunk *c);   /* zeroes it; idempotent */

/* The batch in @c goes out to @coll for the first time (one batch per
 * collector at a time; a failed batch is retried as it is, without
 * calling this again): its drop record is frozen (a collector may have
 * seen it, so it never grows), and its seq range is recorded in the file
 * as out there, so that events of it that any writer drops to keep the
 * bound are recorded as tentative drops: no loss if @coll acks the batch
 * (spool_batch_acked()) or it is dead-lettered, drops if it is abandoned.
 * One transaction. */
int spool_batch_sent(struct spool *sp, unsigned coll,
                     const struct spool_chunk *c);
/* @coll stored the batch @c: its seq range is acked for @coll, its drop
 * record and tentative drops are cleared, and events every collector is
 * now done with are deleted; *deleted (may be NULL) gets how many. */
int spool_batch_acked(struct spool *sp, unsigned coll,
                      const struct spool_chunk *c, uint64_t *deleted);
/* The batch out there to @coll will not be retried (the agent stops; its
 * events are only in the shipper's memory): its tentative drops become
 * drop records, since nobody knows whether @coll got them. A restart does
 * the same for every collector (spool_set_collectors()). */
int spool_batch_abandoned(struct spool *sp, unsigned coll);
/* @coll refused the batch @c for good (@status, @reason: its error text,
 * cut at SPOOL_MAX_REASON): its events are copied into the dead_letter
 * table and the range counts as done for @coll, as if acked. Events are
 * deleted as by spool_batch_acked(). The dead letter's body is the events
 * as a serialized sextant.v1.Batch holding only its events (not
 * deflated). */
int spool_batch_dead(struct spool *sp, unsigned coll,
                     const struct spool_chunk *c, int status,
                     const char *reason, uint64_t *deleted);

/* Deletes every event with seq <= @upto_seq as acked by every collector;
 * *deleted (may be NULL) gets how many. For tests and tools. */
int spool_ack(struct spool *sp, uint64_t upto_seq, uint64_t *deleted);

/* Events in the spool (a full count: for tests and rare checks, not for
 * every turn of the loop). */
int spool_count(struct spool *sp, uint64_t *out);
/* The seq the next appended event will get. */
int spool_next_seq(struct spool *sp, uint64_t *out);

/* Cheap enough for every second (/metrics): one row of counters that
 * every write transaction keeps exact, whichever process writes. */
struct spool_stats {
    uint64_t events;                /* in the spool */
    uint64_t bytes;                 /* their packed bytes */
    uint64_t dropped;               /* ever dropped by the bound */
    uint64_t dead_letter;           /* events in the dead_letter table */
};
int spool_stats(struct spool *sp, struct spool_stats *out);
/* spool_stats()' events and bytes. */
int spool_depth(struct spool *sp, uint64_t *events, uint64_t *bytes);
/* What the agent still holds for collector @coll: the events in the
 * spool it has not acked (nor refused for good) and their packed bytes,
 * its batch out there included (Batch.spool_events, spool_bytes). With
 * one collector that is spool_depth(); with more, an event acked by
 * @coll waits in the spool for another but is not held for @coll. One
 * meta read plus one range sum per acked range of @coll; not a
 * transaction, so another writer's append in between may count or not.
 * -EINVAL for an unknown @coll. */
int spool_held_for(struct spool *sp, unsigned coll, uint64_t *events,
                   uint64_t *bytes);

#endif
