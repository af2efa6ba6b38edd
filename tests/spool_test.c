/* spool_test.c -- the spool unit tests' shared fixture (see spool_test.h):
 * temp files, appends, fat events for the byte bound, refused writes. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "spool.h"
#include "spool_test.h"
#include "wire.h"

static char test_dir[64];        /* this binary's temp folder */
char test_path[128];
static unsigned test_n;

int setup(void **state)
{
    (void)state;
    snprintf(test_path, sizeof(test_path), "%s/spool-%u.db", test_dir,
             ++test_n);
    return 0;
}

void unlink_db(const char *path)
{
    char p[512];                    /* path (< 300) + "-wal" */

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

int teardown(void **state)
{
    (void)state;
    unlink_db(test_path);
    return 0;
}

struct spool *open_ok(void)
{
    struct spool *sp = NULL;
    char err[SPOOL_ERR_LEN] = "";
    int rc = spool_open(test_path, &sp, err, sizeof(err));

    if (rc != 0)
        fail_msg("spool_open: %d %s", rc, err);
    assert_non_null(sp);
    return sp;
}

/* Appends one probe event for @target; 0 and *seq, or the spool's error.
 * No cmocka asserts: the kill -9 test calls it in a forked child. */
int try_append(struct spool *sp, const char *target, int64_t unix_ms,
               uint64_t *seq)
{
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__ProbeResult pr = SEXTANT__V1__PROBE_RESULT__INIT;
    char name[64];
    int rc;

    snprintf(name, sizeof(name), "%s", target);
    pr.target = name;
    pr.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    pr.ok = 1;
    pr.status = 200;
    ev.unix_ms = unix_ms;
    ev.kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    ev.probe = &pr;
    rc = spool_append(sp, &ev);
    if (rc == 0)
        *seq = ev.seq;
    return rc;
}

/* Appends one probe event for @target; returns the seq it got. */
uint64_t append_probe(struct spool *sp, const char *target,
                      int64_t unix_ms)
{
    uint64_t seq = 0;

    assert_int_equal(try_append(sp, target, unix_ms, &seq), 0);
    assert_true(seq > 0);
    return seq;
}

uint64_t count(struct spool *sp)
{
    uint64_t n = 0;

    assert_int_equal(spool_count(sp, &n), 0);
    return n;
}

/* One value from the file, through a connection of the test's own. */
int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

const char *const two_ids[2] = { "http://a/v1/ingest",
                                "http://b/v1/ingest" };

/* 127 lifecycle events, acked and gone: from seq 128 to 16383 a seq is
 * two varint bytes, so same-content events have one exact size. */
void skip_small_seqs(struct spool *sp)
{
    Sextant__V1__Event e = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__Lifecycle lc = SEXTANT__V1__LIFECYCLE__INIT;
    Sextant__V1__Event *evs[127], batch[127];

    e.kind_case = SEXTANT__V1__EVENT__KIND_LIFECYCLE;
    e.lifecycle = &lc;
    for (int i = 0; i < 127; i++) {
        batch[i] = e;
        evs[i] = &batch[i];
    }
    assert_int_equal(spool_append_many(sp, evs, 127), 0);
    assert_int_equal(spool_ack(sp, 127, NULL), 0);
}

/* Appends @n same-size probe events stamped @ms0, @ms0 + 1, ... in one
 * transaction. */
void append_fat(struct spool *sp, size_t n, int64_t ms0)
{
    Sextant__V1__Event e[FAT_APPEND], *evs[FAT_APPEND];
    Sextant__V1__ProbeResult pr = SEXTANT__V1__PROBE_RESULT__INIT;
    char name[] = FAT;

    pr.target = name;
    pr.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    pr.ok = 1;
    pr.status = 200;
    while (n > 0) {
        size_t k = n < FAT_APPEND ? n : FAT_APPEND;

        for (size_t i = 0; i < k; i++) {
            sextant__v1__event__init(&e[i]);
            e[i].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
            e[i].probe = &pr;
            e[i].unix_ms = ms0 + (int64_t)i;
            evs[i] = &e[i];
        }
        assert_int_equal(spool_append_many(sp, evs, k), 0);
        n -= k;
    }
}

size_t fill_to_bound(struct spool *sp, int64_t ms0, size_t *len)
{
    size_t fit;

    assert_int_equal(spool_set_max_bytes(sp, SPOOL_MIN_MAX_BYTES), 0);
    skip_small_seqs(sp);
    *len = fat_size(sp);
    fit = SPOOL_MIN_MAX_BYTES / *len;
    append_fat(sp, fit, ms0);
    return fit;
}

/* The packed size of one fat event at a two-byte seq. */
size_t fat_size(struct spool *sp)
{
    struct spool_chunk c;
    uint64_t next;
    size_t len;

    assert_int_equal(spool_next_seq(sp, &next), 0);
    append_fat(sp, 1, 1000);            /* times stay two varint bytes */
    assert_int_equal(spool_peek(sp, next - 1, 1, 1u << 20, &c), 0);
    assert_int_equal(c.n, 1);
    len = c.events[0].len;
    spool_chunk_free(&c);
    assert_int_equal(spool_ack(sp, next, NULL), 0);
    return len;
}

/* The file's own truth against spool_stats(). */
void assert_stats_match_file(struct spool *sp)
{
    struct spool_stats st;

    assert_int_equal(spool_stats(sp, &st), 0);
    assert_int_equal(st.events, sql_int(test_path,
                                        "SELECT count(*) FROM events"));
    assert_int_equal(st.bytes, sql_int(test_path, "SELECT CAST(total("
                                       "length(body)) AS INTEGER) FROM "
                                       "events"));
}

uint64_t min_seq(void)
{
    return (uint64_t)sql_int(test_path, "SELECT min(seq) FROM events");
}

/* @c goes out to collector 0 and is acked; frees it. */
void ship_acked(struct spool *sp, struct spool_chunk *c)
{
    assert_int_equal(spool_batch_sent(sp, 0, c), 0);
    assert_int_equal(spool_batch_acked(sp, 0, c, NULL), 0);
    spool_chunk_free(c);
}

/* Peeks for collector 0 (@newest first, at most @max events), expects
 * @n events from @first, no drop record and oldest_seq @oldest, and ships
 * the batch acked. */
void ship_without_drop(struct spool *sp, int newest, size_t max,
                       size_t n, uint64_t first, uint64_t oldest)
{
    struct spool_chunk c;

    assert_int_equal(spool_peek_for(sp, 0, newest, max, 1u << 20, &c), 0);
    assert_int_equal(c.n, n);
    assert_int_equal(c.first_seq, first);
    assert_int_equal(c.drop.count, 0);
    assert_int_equal(c.oldest_seq, oldest);
    ship_acked(sp, &c);
}

/* Peeks for collector 0 (@newest first) into *c and expects a drop
 * record alone: @count events, seqs @first..@last. */
void peek_drop_alone(struct spool *sp, int newest,
                     struct spool_chunk *c, uint64_t count,
                     uint64_t first, uint64_t last)
{
    assert_int_equal(spool_peek_for(sp, 0, newest, 100, 1u << 20, c), 0);
    assert_int_equal(c->n, 0);
    assert_int_equal(c->drop.count, count);
    assert_int_equal(c->drop.first_seq, first);
    assert_int_equal(c->drop.last_seq, last);
}

/* Makes every write that grows the spool's WAL fail (EFBIG: SQLite's I/O
 * error), as a full disk would, until restore_writes(). */
static struct rlimit saved_fsize;

void refuse_writes(void)
{
    char wal[512];
    struct rlimit lim;
    struct stat st;

    snprintf(wal, sizeof(wal), "%s-wal", test_path);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
    signal(SIGXFSZ, SIG_IGN);       /* the write fails instead */
    lim = saved_fsize;
    lim.rlim_cur = (rlim_t)st.st_size;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

void restore_writes(void)
{
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
}

/* One collector; two events spooled (returns the first's seq, the
 * second's in *s2), then @lost appends refused, stamped 2000, 2500, ... */
uint64_t two_then_refused(struct spool *sp, int lost, uint64_t *s2)
{
    uint64_t s1, seq = 0;

    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    s1 = append_probe(sp, "before", 1000);
    *s2 = append_probe(sp, "before", 1100);
    refuse_writes();
    for (int i = 0; i < lost; i++)
        assert_true(try_append(sp, "lost", 2000 + 500 * i, &seq) < 0);
    restore_writes();
    return s1;
}

int spool_test_main(const char *name, const struct CMUnitTest *tests,
                    size_t n)
{
    int rc;

    snprintf(test_dir, sizeof(test_dir), "/tmp/%s.XXXXXX", name);
    if (!mkdtemp(test_dir))
        return 1;
    rc = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    rmdir(test_dir);
    return rc;
}
