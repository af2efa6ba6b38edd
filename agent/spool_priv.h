/* spool_priv.h -- what the files of the spool share and nobody else may
 * see: struct spool itself, its prepared statements, the meta row and the
 * helpers that run statements and transactions. spool.h is the public
 * face. The spool is one module in five files:
 *   spool.c            statements, transactions, counters
 *   spool_file.c       open, migrate, move aside, own/disown, close
 *   spool_collectors.c collectors, their acked ranges, deleting what
 *                      every collector is done with
 *   spool_append.c     append, the byte bound and its drop records,
 *                      refused writes
 *   spool_batch.c      batch fill, peek, sent, acked, dead letters
 * The acked ranges in memory are a seqset (seqset.h). */
#ifndef SEXTANT_AGENT_SPOOL_PRIV_H
#define SEXTANT_AGENT_SPOOL_PRIV_H

#include <sqlite3.h>
#include <stdint.h>

#include "seqset.h"
#include "spool.h"

#define SPOOL_BUSY_MS 5000          /* another writer: wait, then fail */
#define SPOOL_SEQ_MAX ((uint64_t)INT64_MAX)     /* seqs are SQLite int64 */

/* Drop-record states (drops.state). A record may grow only while no
 * collector can have seen it: once a batch carried it, a replay must
 * carry the same record, or the collector would count its events twice. */
enum spool_drop_state {
    SPOOL_DROP_OPEN = 0,            /* never sent: later drops merge in */
    SPOOL_DROP_SENT = 1,            /* carried by a batch: frozen */
    SPOOL_DROP_TENTATIVE = 2,       /* events of the batch in flight */
    SPOOL_DROP_REFUSED = 3,         /* refused events: exact, never grows */
};

/* Prepared statements, one slot each; SQL in spool_sql[] (spool.c). */
enum spool_st {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
    ST_GET_META, ST_SET_META, ST_SET_MAX,
    ST_INSERT, ST_PEEK_ASC, ST_PEEK_DESC, ST_FIRST_IN,
    ST_OLDEST_WALK, ST_DEL_UPTO, ST_RANGE_SUM, ST_DEL_RANGE,
    ST_COUNT, ST_MIN_SEQ,
    ST_COLL_LIST, ST_COLL_INSERT, ST_COLL_DELETE, ST_FLIGHT_SET,
    ST_FLIGHT_GET, ST_FLIGHT_CLEAR_ALL,
    ST_ACKED_LIST, ST_ACKED_DEL_BETWEEN, ST_ACKED_INSERT, ST_ACKED_PRUNE,
    ST_ACKED_DEL_COLL, ST_ACKED_DEL_BAD,
    ST_DROP_BELOW, ST_DROP_OLDEST, ST_DROP_INSERT, ST_DROP_UPDATE,
    ST_DROP_FREEZE, ST_DROP_DELETE, ST_DROP_DEL_TENT, ST_DROP_KEEP_TENT,
    ST_DROP_KEEP_ALL_TENT, ST_DROP_DEL_COLL, ST_REFUSED_IN, ST_TENT_SUM,
    ST_TENT_SUM_ALL,
    ST_DL_INSERT, ST_DL_PRUNE,
    ST_N
};

/* What the spool knows of one collector. The acked set mirrors its rows
 * in table acked (both merged). Only ranges reaching the oldest event in
 * the spool are kept: below it nothing is left to be acked.
 *
 * The collector's batch "out there" (sent, not yet acked or refused for
 * good; the shipper retries it as it is) is in the file, collectors.fl_*,
 * so that any writer that drops events of it records them as tentative:
 * the collector may have them already, and they are no loss once it
 * acks. Only if the batch is abandoned do they become drops. */
struct spool_coll {
    int64_t id;                     /* collectors.id */
    char *url;                      /* owned */
    struct seqset acked;            /* owned */
    uint64_t fl_first;              /* make_room's copy of collectors.fl_* */
    uint64_t fl_last;
};

/* The meta row, read and written inside each write transaction. */
struct spool_meta {
    uint64_t epoch;
    uint64_t next_seq;
    uint64_t n_events;
    uint64_t bytes;
    uint64_t max_bytes;
    uint64_t dropped;
    uint64_t dead_letter;
};

struct spool {
    sqlite3 *db;                    /* loop thread only */
    uint64_t epoch;
    sqlite3_stmt *st[ST_N];
    struct spool_coll *coll;        /* owned; n_coll of them */
    size_t n_coll;
    char *moved_aside;              /* owned; NULL if nothing was moved */
    /* Events appends failed to store (disk full, I/O error): counted
     * here, with their time span, until an append commits again and
     * records them as a drop (no seqs yet: see spool_record_refused). */
    struct spool_drop refused;
};

/* -- spool.c: statements and transactions -- */

/* An SQLite result code as -errno. */
int spool_errno(int rc);
/* Prepares every statement of spool_sql[] on sp->db. */
int spool_prepare_all(struct spool *sp);
/* Binds int64 values to ?1..?n of @st; 0 or -EIO. */
int spool_bind(sqlite3_stmt *st, size_t n, const int64_t *v);
/* Binds @n values, steps a statement that returns no rows, resets. */
int spool_exec(struct spool *sp, enum spool_st which, size_t n,
               const int64_t *v);
/* Binds @n values and steps to the one row a statement returns: 0 with
 * the row current (the caller reads it, then spool_done()), 1 if there is
 * none (already reset), or -errno (already reset). */
int spool_row(struct spool *sp, enum spool_st which, size_t n,
              const int64_t *v);
/* Resets a statement and clears its bindings. */
void spool_done(struct spool *sp, enum spool_st which);
/* Rolls back the open transaction, if any. */
void spool_rollback(struct spool *sp);
/* Reads the meta row; inside a transaction when it is about to change. */
int spool_read_meta(struct spool *sp, struct spool_meta *m);
/* BEGIN IMMEDIATE and the meta row as it is under the write lock. */
int spool_begin(struct spool *sp, struct spool_meta *m);
/* Writes the counters back and commits; rolls back on failure. */
int spool_commit(struct spool *sp, const struct spool_meta *m);

/* -- spool_collectors.c -- */

void spool_coll_free(struct spool_coll *c);
/* Reads collector @c's acked ranges from the file into c->acked. A row
 * with first > last is left out and counted in *@bad (NULL: not
 * counted); spool_load_collectors() logs and deletes such rows. */
int spool_load_ranges(struct spool *sp, struct spool_coll *c, size_t *bad);
/* The collectors the file names, in the order they were first seen. */
int spool_load_collectors(struct spool *sp);
/* The collectors as the file has them now, inside the caller's write
 * transaction, into @v (SPOOL_MAX_COLLECTORS zeroed slots; the caller
 * frees each acked set). */
int spool_view(struct spool *sp, struct spool_coll *v);
/* Deletes the events in @segs (n of them) and takes them off @m; adds
 * how many to *deleted. */
int spool_delete_ranges(struct spool *sp, struct spool_meta *m,
                        const struct seqset_range *segs, size_t n,
                        uint64_t *deleted);
/* Deletes acked rows below the oldest event (nothing left to ack there);
 * the caller prunes the ranges in memory with spool_prune_mem() and the
 * same *min_seq once the transaction is committed. */
int spool_prune_rows(struct spool *sp, const struct spool_meta *m,
                     uint64_t *min_seq);
void spool_prune_mem(struct spool *sp, uint64_t min_seq);
/* Prunes the acked rows, commits, and once committed prunes the ranges
 * in memory too; on failure nothing is committed and no transaction is
 * left open. */
int spool_commit_pruned(struct spool *sp, const struct spool_meta *m);
/* Deletes the events in [@f, @l] (or everywhere, @f = 0) that every
 * collector has acked. */
int spool_sweep(struct spool *sp, struct spool_meta *m, uint64_t f,
                uint64_t l, uint64_t *deleted);
/* Adds [@f, @l] to collector @c's acked rows in the file; *i, *j and *mr
 * say how to do the same in memory after the commit (seqset_apply). */
int spool_add_range_rows(struct spool *sp, struct spool_coll *c,
                         uint64_t f, uint64_t l, size_t *i, size_t *j,
                         struct seqset_range *mr);
/* Tentative drops of collector @id (all, if @id < 0) become drop records
 * and count as dropped. */
int spool_tent_to_drops(struct spool *sp, struct spool_meta *m, int64_t id);

#endif
