/* test_spool.c -- the agent's SQLite spool: seqs, epochs, peek limits,
 * acks, reopening, surviving kill -9, moving unusable files aside, the
 * byte bound with its drop records, per-collector acked ranges (an event
 * goes only when every collector has it), tentative drops of a batch in
 * flight, dead letters, and the v1 -> v2 migration. Each test gets its
 * own spool file in a fresh temp folder; counts are exact, checked
 * against the file through a connection of the test's own. */
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "spool.h"
#include "util.h"
#include "wire.h"

static char test_dir[64];
static char test_path[128];
static unsigned test_n;

static int setup(void **state)
{
    (void)state;
    snprintf(test_path, sizeof(test_path), "%s/spool-%u.db", test_dir,
             ++test_n);
    return 0;
}

static void unlink_db(const char *path)
{
    char p[512];                    /* path (< 300) + "-wal" */

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int teardown(void **state)
{
    (void)state;
    unlink_db(test_path);
    return 0;
}

static struct spool *open_ok(void)
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
static int try_append(struct spool *sp, const char *target, int64_t unix_ms,
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
static uint64_t append_probe(struct spool *sp, const char *target,
                             int64_t unix_ms)
{
    uint64_t seq = 0;

    assert_int_equal(try_append(sp, target, unix_ms, &seq), 0);
    assert_true(seq > 0);
    return seq;
}

static uint64_t count(struct spool *sp)
{
    uint64_t n = 0;

    assert_int_equal(spool_count(sp, &n), 0);
    return n;
}

static void test_new_spool_has_an_epoch_and_starts_at_seq_1(void **state)
{
    struct spool *sp = open_ok();
    uint64_t next = 0;

    (void)state;
    assert_true(spool_epoch(sp) != 0);
    assert_int_equal(spool_next_seq(sp, &next), 0);
    assert_int_equal(next, 1);
    assert_int_equal(count(sp), 0);
    spool_close(sp);
}

static void test_new_file_gets_a_new_epoch(void **state)
{
    struct spool *a = open_ok(), *b;
    uint64_t ea = spool_epoch(a);

    (void)state;
    spool_close(a);
    teardown(NULL);                     /* delete it: the next is new */
    b = open_ok();
    assert_true(spool_epoch(b) != 0);
    assert_true(spool_epoch(b) != ea);
    spool_close(b);
}

static void test_append_assigns_rising_seqs_and_time(void **state)
{
    struct spool *sp = open_ok();
    int64_t before = util_now_ms();
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__Lifecycle lc = SEXTANT__V1__LIFECYCLE__INIT;

    (void)state;
    assert_int_equal(append_probe(sp, "a", 0), 1);
    assert_int_equal(append_probe(sp, "b", 1234), 2);
    lc.phase = SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_START;
    ev.kind_case = SEXTANT__V1__EVENT__KIND_LIFECYCLE;
    ev.lifecycle = &lc;
    assert_int_equal(spool_append(sp, &ev), 0);
    assert_int_equal(ev.seq, 3);
    /* unix_ms 0 means "now"; a given time is kept. */
    assert_true(ev.unix_ms >= before && ev.unix_ms <= util_now_ms());
    assert_int_equal(count(sp), 3);
    spool_close(sp);
}

static void test_append_many_is_one_batch_of_seqs(void **state)
{
    struct spool *sp = open_ok();
    Sextant__V1__Event e[3] = { SEXTANT__V1__EVENT__INIT,
                                SEXTANT__V1__EVENT__INIT,
                                SEXTANT__V1__EVENT__INIT };
    Sextant__V1__Lifecycle lc = SEXTANT__V1__LIFECYCLE__INIT;
    Sextant__V1__Event *evs[3] = { &e[0], &e[1], &e[2] };

    (void)state;
    for (int i = 0; i < 3; i++) {
        e[i].kind_case = SEXTANT__V1__EVENT__KIND_LIFECYCLE;
        e[i].lifecycle = &lc;
        e[i].unix_ms = 1000 + i;
    }
    assert_int_equal(append_probe(sp, "first", 0), 1);
    assert_int_equal(spool_append_many(sp, evs, 3), 0);
    assert_int_equal(e[0].seq, 2);
    assert_int_equal(e[1].seq, 3);
    assert_int_equal(e[2].seq, 4);
    assert_int_equal(e[2].unix_ms, 1002);
    assert_int_equal(spool_append_many(sp, evs, 0), 0);
    assert_int_equal(count(sp), 4);
    spool_close(sp);
}

static void test_peek_returns_oldest_first_as_packed_events(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;

    (void)state;
    for (int i = 0; i < 5; i++) {
        char name[32];

        snprintf(name, sizeof(name), "t%d", i);
        append_probe(sp, name, 1000 + i);
    }
    assert_int_equal(spool_peek(sp, 0, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 5);
    assert_int_equal(c.first_seq, 1);
    assert_int_equal(c.last_seq, 5);
    for (size_t i = 0; i < c.n; i++) {
        Sextant__V1__Event *ev = sextant__v1__event__unpack(
            NULL, c.events[i].len, c.events[i].data);
        char name[32];

        assert_non_null(ev);
        snprintf(name, sizeof(name), "t%zu", i);
        assert_int_equal(ev->seq, i + 1);
        assert_int_equal(ev->unix_ms, 1000 + (int64_t)i);
        assert_int_equal(ev->kind_case, SEXTANT__V1__EVENT__KIND_PROBE);
        assert_string_equal(ev->probe->target, name);
        assert_int_equal(ev->probe->status, 200);
        sextant__v1__event__free_unpacked(ev, NULL);
    }
    spool_chunk_free(&c);
    assert_null(c.events);
    spool_chunk_free(&c);               /* idempotent */
    spool_close(sp);
}

static void test_peek_honours_count_bytes_and_after_seq(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    size_t one;

    (void)state;
    for (int i = 0; i < 10; i++)
        append_probe(sp, "same-size", 1000);
    assert_int_equal(spool_peek(sp, 0, 3, 1u << 20, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.last_seq, 3);
    one = c.events[0].len;
    assert_int_equal(c.bytes, 3 * one);
    spool_chunk_free(&c);

    assert_int_equal(spool_peek(sp, 7, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.first_seq, 8);
    assert_int_equal(c.last_seq, 10);
    spool_chunk_free(&c);

    /* Room for two and a half: two. */
    assert_int_equal(spool_peek(sp, 0, 100, 2 * one + one / 2, &c), 0);
    assert_int_equal(c.n, 2);
    spool_chunk_free(&c);

    /* Room for none: still one, or a big event would block forever. */
    assert_int_equal(spool_peek(sp, 0, 100, 1, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.first_seq, 1);
    spool_chunk_free(&c);

    assert_int_equal(spool_peek(sp, 10, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 0);
    assert_null(c.events);
    spool_chunk_free(&c);
    spool_close(sp);
}

static void test_ack_deletes_events_up_to_seq(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    uint64_t deleted = 99;

    (void)state;
    for (int i = 0; i < 6; i++)
        append_probe(sp, "x", 0);
    assert_int_equal(spool_ack(sp, 4, &deleted), 0);
    assert_int_equal(deleted, 4);
    assert_int_equal(count(sp), 2);
    assert_int_equal(spool_peek(sp, 0, 100, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 5);
    assert_int_equal(c.n, 2);
    spool_chunk_free(&c);
    /* Acking again, or below, deletes nothing more. */
    assert_int_equal(spool_ack(sp, 4, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(spool_ack(sp, 6, NULL), 0);
    assert_int_equal(count(sp), 0);
    spool_close(sp);
}

static void test_seq_keeps_rising_across_reopen_when_empty(void **state)
{
    struct spool *sp = open_ok();
    uint64_t epoch = spool_epoch(sp);

    (void)state;
    for (int i = 0; i < 3; i++)
        append_probe(sp, "x", 0);
    assert_int_equal(spool_ack(sp, 3, NULL), 0);   /* all acked, table empty */
    spool_close(sp);
    sp = open_ok();
    assert_int_equal(spool_epoch(sp), epoch);       /* same file, same epoch */
    assert_int_equal(append_probe(sp, "x", 0), 4);  /* never reused */
    spool_close(sp);
}

static void test_unacked_events_survive_reopen(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;

    (void)state;
    append_probe(sp, "kept-1", 11);
    append_probe(sp, "kept-2", 12);
    spool_close(sp);
    sp = open_ok();
    assert_int_equal(spool_peek(sp, 0, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.first_seq, 1);
    spool_chunk_free(&c);
    spool_close(sp);
}

static void test_events_survive_kill_9(void **state)
{
    struct spool *sp;
    uint64_t epoch = 0;
    int status, fds[2];
    pid_t pid;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Child: append one by one, report the epoch, die hard, no close. */
        struct spool *csp = NULL;
        char err[SPOOL_ERR_LEN];
        uint64_t e, seq;

        if (spool_open(test_path, &csp, err, sizeof(err)) != 0)
            _exit(3);
        for (int i = 0; i < 50; i++)
            if (try_append(csp, "before-kill", 0, &seq) != 0)
                _exit(4);
        e = spool_epoch(csp);
        if (write(fds[1], &e, sizeof(e)) != (ssize_t)sizeof(e))
            _exit(4);
        raise(SIGKILL);
        _exit(5);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &epoch, sizeof(epoch)),
                     (ssize_t)sizeof(epoch));
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    sp = open_ok();
    assert_int_equal(spool_epoch(sp), epoch);
    assert_int_equal(count(sp), 50);
    assert_int_equal(append_probe(sp, "after", 0), 51);
    spool_close(sp);
}

static void test_spool_file_is_in_wal_mode(void **state)
{
    struct spool *sp = open_ok();
    sqlite3 *db;
    sqlite3_stmt *st;

    (void)state;
    assert_int_equal(sqlite3_open_v2(test_path, &db, SQLITE_OPEN_READONLY,
                                     NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st,
                                        NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st,
                                        NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
    spool_close(sp);
}

/* One value from the file, through a connection of the test's own. */
static int64_t sql_int(const char *path, const char *sql)
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

static void test_newer_schema_is_moved_aside_for_a_new_epoch(void **state)
{
    struct spool *sp = open_ok();
    uint64_t old_epoch = spool_epoch(sp);
    char aside[300];
    sqlite3 *db;

    (void)state;
    append_probe(sp, "old", 0);
    spool_close(sp);
    assert_int_equal(sqlite3_open(test_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL,
                                  NULL), SQLITE_OK);
    sqlite3_close(db);
    sp = open_ok();
    assert_non_null(spool_moved_aside(sp));
    snprintf(aside, sizeof(aside), "%s", spool_moved_aside(sp));
    assert_int_equal(strncmp(aside, test_path, strlen(test_path)), 0);
    assert_int_equal(strncmp(aside + strlen(test_path), ".corrupt-", 9), 0);
    assert_true(spool_epoch(sp) != old_epoch);
    assert_int_equal(count(sp), 0);
    assert_int_equal(append_probe(sp, "new", 0), 1);
    spool_close(sp);
    /* The old file is whole where it went: its event and its version. */
    assert_int_equal(sql_int(aside, "PRAGMA user_version"), 99);
    assert_int_equal(sql_int(aside, "SELECT count(*) FROM events"), 1);
    unlink_db(aside);
    /* A usable spool is never moved. */
    sp = open_ok();
    assert_null(spool_moved_aside(sp));
    spool_close(sp);
}

static void test_file_that_is_not_a_spool_is_moved_aside(void **state)
{
    struct spool *sp = NULL;
    char junk[4096], back[4096], aside[300], wal[320];
    FILE *f;

    (void)state;
    memset(junk, 'z', sizeof(junk));
    f = fopen(test_path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    fclose(f);
    /* A stale WAL beside it must not end up in the new spool. */
    snprintf(wal, sizeof(wal), "%s-wal", test_path);
    f = fopen(wal, "w");
    assert_non_null(f);
    fputs("junk wal", f);
    fclose(f);
    sp = open_ok();
    assert_non_null(spool_moved_aside(sp));
    snprintf(aside, sizeof(aside), "%s", spool_moved_aside(sp));
    assert_true(spool_epoch(sp) != 0);
    assert_int_equal(append_probe(sp, "fresh", 0), 1);
    spool_close(sp);
    f = fopen(aside, "r");
    assert_non_null(f);
    assert_int_equal(fread(back, 1, sizeof(back), f), sizeof(back));
    fclose(f);
    assert_memory_equal(back, junk, sizeof(junk));
    sp = open_ok();
    assert_null(spool_moved_aside(sp));
    assert_int_equal(count(sp), 1);
    spool_close(sp);
    snprintf(wal, sizeof(wal), "%s-wal", aside);
    unlink(wal);
    unlink(aside);
}

/* A page overwritten in place (a bad disk, a stray write): SQLite opens
 * the file, quick_check finds the damage. */
static void test_corrupt_spool_is_moved_aside(void **state)
{
    struct spool *sp = open_ok();
    uint64_t old_epoch = spool_epoch(sp);
    char junk[4096], aside[300], p[320];
    FILE *f;

    (void)state;
    for (int i = 0; i < 300; i++)
        append_probe(sp, "a target name long enough to fill some pages", 0);
    spool_close(sp);                    /* checkpoints: all in the file */
    memset(junk, 0xA5, sizeof(junk));
    f = fopen(test_path, "r+");
    assert_non_null(f);
    assert_int_equal(fseek(f, 3 * 4096, SEEK_SET), 0);
    assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    fclose(f);
    sp = open_ok();
    assert_non_null(spool_moved_aside(sp));
    snprintf(aside, sizeof(aside), "%s", spool_moved_aside(sp));
    assert_true(spool_epoch(sp) != old_epoch);
    assert_int_equal(count(sp), 0);
    assert_int_equal(append_probe(sp, "fresh", 0), 1);
    spool_close(sp);
    /* The damaged file went aside as it was. */
    f = fopen(aside, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, 3 * 4096, SEEK_SET), 0);
    memset(p, 0, sizeof(p));
    assert_int_equal(fread(p, 1, 16, f), 16);
    fclose(f);
    assert_memory_equal(p, junk, 16);
    unlink_db(aside);
}


/* -- the byte bound, drop records, collectors, dead letters -- */

static const char *const two_ids[] = { "http://a/v1/ingest",
                                       "http://b/v1/ingest" };

/* A target name that makes every probe event the same, large size. */
#define FAT "a-target-name-of-exactly-sixty-four-bytes-to-fatten-events-0123"

/* 127 lifecycle events, acked and gone: from seq 128 to 16383 a seq is
 * two varint bytes, so same-content events have one exact size. */
static void skip_small_seqs(struct spool *sp)
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
static void append_fat(struct spool *sp, size_t n, int64_t ms0)
{
    Sextant__V1__Event e[64], *evs[64];
    Sextant__V1__ProbeResult pr = SEXTANT__V1__PROBE_RESULT__INIT;
    char name[] = FAT;

    assert_true(n <= 64);
    pr.target = name;
    pr.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    pr.ok = 1;
    pr.status = 200;
    for (size_t i = 0; i < n; i++) {
        sextant__v1__event__init(&e[i]);
        e[i].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
        e[i].probe = &pr;
        e[i].unix_ms = ms0 + (int64_t)i;
        evs[i] = &e[i];
    }
    assert_int_equal(spool_append_many(sp, evs, n), 0);
}

/* The packed size of one fat event at a two-byte seq. */
static size_t fat_size(struct spool *sp)
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
static void assert_stats_match_file(struct spool *sp)
{
    struct spool_stats st;

    assert_int_equal(spool_stats(sp, &st), 0);
    assert_int_equal(st.events, sql_int(test_path,
                                        "SELECT count(*) FROM events"));
    assert_int_equal(st.bytes, sql_int(test_path, "SELECT CAST(total("
                                       "length(body)) AS INTEGER) FROM "
                                       "events"));
}

static uint64_t min_seq(void)
{
    return (uint64_t)sql_int(test_path, "SELECT min(seq) FROM events");
}

static void test_bound_drops_oldest_with_an_exact_drop_record(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    struct spool_stats st;
    size_t len, fit;
    uint64_t first;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    assert_int_equal(spool_set_max_bytes(sp, 1000), -EINVAL);
    assert_int_equal(spool_set_max_bytes(sp, SPOOL_MIN_MAX_BYTES), 0);
    skip_small_seqs(sp);
    len = fat_size(sp);                 /* seq 128, gone again */
    fit = SPOOL_MIN_MAX_BYTES / len;
    first = 129;
    for (size_t left = fit; left > 0;) {
        size_t k = left < 64 ? left : 64;

        append_fat(sp, k, 10000);
        left -= k;
    }
    assert_int_equal(count(sp), fit);
    assert_int_equal(spool_stats(sp, &st), 0);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.bytes, fit * len);
    /* One more: exactly the oldest one goes. */
    append_fat(sp, 1, 11000);
    assert_int_equal(count(sp), fit);
    assert_int_equal(min_seq(), first + 1);
    /* Ten more in one go: exactly ten more of the oldest. */
    append_fat(sp, 10, 12000);
    assert_int_equal(count(sp), fit);
    assert_int_equal(min_seq(), first + 11);
    assert_int_equal(spool_stats(sp, &st), 0);
    assert_int_equal(st.dropped, 11);
    assert_int_equal(st.bytes, fit * len);
    assert_true(st.bytes <= SPOOL_MIN_MAX_BYTES);
    assert_stats_match_file(sp);
    /* Both drops merged into one record (nothing carried it yet), with
     * the first and last dropped event's seq and time. */
    assert_int_equal(spool_peek_for(sp, 0, 0, 5, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, first + 11);
    assert_int_equal(c.drop.count, 11);
    assert_int_equal(c.drop.first_seq, first);
    assert_int_equal(c.drop.last_seq, first + 10);
    assert_int_equal(c.drop.first_unix_ms, 10000);
    assert_int_equal(c.drop.last_unix_ms, 10000 + 10);
    assert_int_equal(c.oldest_seq, first + 11);
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM drops"), 1);
    spool_chunk_free(&c);
    spool_close(sp);
}

static void test_drop_record_is_per_collector_and_told_once(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk a, b;
    size_t len, fit;
    uint64_t deleted = 99;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 2), 0);
    assert_int_equal(spool_set_max_bytes(sp, SPOOL_MIN_MAX_BYTES), 0);
    skip_small_seqs(sp);
    len = fat_size(sp);
    fit = SPOOL_MIN_MAX_BYTES / len;
    for (size_t left = fit; left > 0;) {
        size_t k = left < 64 ? left : 64;

        append_fat(sp, k, 5000);
        left -= k;
    }
    /* a has the oldest 5 (129..133); b has nothing. */
    assert_int_equal(spool_peek_for(sp, 0, 0, 5, 1u << 20, &a), 0);
    assert_int_equal(a.first_seq, 129);
    assert_int_equal(a.last_seq, 133);
    assert_int_equal(spool_batch_sent(sp, 0, &a), 0);
    assert_int_equal(spool_batch_acked(sp, 0, &a, &deleted), 0);
    assert_int_equal(deleted, 0);       /* b still lacks them */
    spool_chunk_free(&a);
    /* 8 over the bound: 129..136 go. b lost 8, a only 3 (134..136). */
    append_fat(sp, 8, 7000);
    assert_int_equal(min_seq(), 137);
    assert_int_equal(spool_peek_for(sp, 0, 0, 5, 1u << 20, &a), 0);
    assert_int_equal(a.drop.count, 3);
    assert_int_equal(a.drop.first_seq, 134);
    assert_int_equal(a.drop.last_seq, 136);
    assert_int_equal(spool_peek_for(sp, 1, 0, 5, 1u << 20, &b), 0);
    assert_int_equal(b.drop.count, 8);
    assert_int_equal(b.drop.first_seq, 129);
    assert_int_equal(b.drop.last_seq, 136);
    /* a is told (its batch carrying the record is acked); b not yet. */
    assert_int_equal(spool_batch_sent(sp, 0, &a), 0);
    assert_int_equal(spool_batch_acked(sp, 0, &a, NULL), 0);
    spool_chunk_free(&a);
    assert_int_equal(spool_peek_for(sp, 0, 0, 5, 1u << 20, &a), 0);
    assert_int_equal(a.drop.count, 0);
    spool_chunk_free(&a);
    spool_chunk_free(&b);
    assert_int_equal(spool_peek_for(sp, 1, 0, 5, 1u << 20, &b), 0);
    assert_int_equal(b.drop.count, 8);
    /* A carried record is frozen: a later drop makes a second record,
     * and the batch says its range is still to come (oldest_seq). (The
     * batch is abandoned, as by a stop: else 137 and 138 would be
     * tentative drops of it.) */
    assert_int_equal(spool_batch_sent(sp, 1, &b), 0);
    assert_int_equal(spool_batch_abandoned(sp, 1), 0);
    spool_chunk_free(&b);
    append_fat(sp, 2, 9000);            /* 137, 138 go */
    assert_int_equal(spool_peek_for(sp, 1, 0, 5, 1u << 20, &b), 0);
    assert_int_equal(b.drop.count, 8);
    assert_int_equal(b.drop.last_seq, 136);
    assert_int_equal(b.first_seq, 139);
    assert_int_equal(b.oldest_seq, 137);
    assert_int_equal(spool_batch_sent(sp, 1, &b), 0);
    assert_int_equal(spool_batch_acked(sp, 1, &b, NULL), 0);
    spool_chunk_free(&b);
    assert_int_equal(spool_peek_for(sp, 1, 0, 5, 1u << 20, &b), 0);
    assert_int_equal(b.drop.count, 2);
    assert_int_equal(b.drop.first_seq, 137);
    assert_int_equal(b.drop.last_seq, 138);
    assert_int_equal(b.oldest_seq, 144);
    spool_chunk_free(&b);
    assert_stats_match_file(sp);
    spool_close(sp);
}

static void test_event_goes_only_when_every_collector_acked(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    uint64_t deleted;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 2), 0);
    for (int i = 0; i < 10; i++)
        append_probe(sp, "x", 0);
    /* a: 1-4 (oldest first). */
    assert_int_equal(spool_peek_for(sp, 0, 0, 4, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 1);
    assert_int_equal(c.last_seq, 4);
    assert_true(c.more);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    assert_int_equal(spool_batch_acked(sp, 0, &c, &deleted), 0);
    assert_int_equal(deleted, 0);
    spool_chunk_free(&c);
    /* b: the newest 3, 8-10, in ascending order. */
    assert_int_equal(spool_peek_for(sp, 1, 1, 3, 1u << 20, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.first_seq, 8);
    assert_int_equal(c.last_seq, 10);
    assert_true(c.more);
    assert_int_equal(c.oldest_seq, 1);
    for (size_t i = 0; i < c.n; i++) {
        Sextant__V1__Event *ev = sextant__v1__event__unpack(
            NULL, c.events[i].len, c.events[i].data);

        assert_non_null(ev);
        assert_int_equal(ev->seq, 8 + i);
        sextant__v1__event__free_unpacked(ev, NULL);
    }
    assert_int_equal(spool_batch_sent(sp, 1, &c), 0);
    assert_int_equal(spool_batch_acked(sp, 1, &c, &deleted), 0);
    assert_int_equal(deleted, 0);
    spool_chunk_free(&c);
    /* a's next oldest skips what it has: 5-10 minus nothing = 5-8. */
    assert_int_equal(spool_peek_for(sp, 0, 0, 4, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 5);
    assert_int_equal(c.last_seq, 8);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    assert_int_equal(spool_batch_acked(sp, 0, &c, &deleted), 0);
    assert_int_equal(deleted, 1);       /* 8: both have it */
    spool_chunk_free(&c);
    assert_int_equal(count(sp), 9);
    /* b's next: 1-7, skipping 8-10 it has. */
    assert_int_equal(spool_peek_for(sp, 1, 0, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 7);
    assert_int_equal(c.first_seq, 1);
    assert_int_equal(c.last_seq, 7);
    assert_false(c.more);
    assert_int_equal(spool_batch_sent(sp, 1, &c), 0);
    assert_int_equal(spool_batch_acked(sp, 1, &c, &deleted), 0);
    assert_int_equal(deleted, 7);
    spool_chunk_free(&c);
    assert_int_equal(count(sp), 2);     /* 9 and 10: a lacks them */
    assert_int_equal(min_seq(), 9);
    assert_stats_match_file(sp);
    /* b has nothing left to send; a has 9-10. */
    assert_int_equal(spool_peek_for(sp, 1, 0, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(spool_peek_for(sp, 0, 1, 100, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 9);
    assert_int_equal(c.last_seq, 10);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    assert_int_equal(spool_batch_acked(sp, 0, &c, &deleted), 0);
    assert_int_equal(deleted, 2);
    spool_chunk_free(&c);
    assert_int_equal(count(sp), 0);
    /* Ranges below the oldest event are forgotten: the table stays
     * small however long the agent runs. */
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM acked"), 0);
    assert_stats_match_file(sp);
    spool_close(sp);
}

static void test_reopen_keeps_ranges_drops_and_events(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    uint64_t epoch = spool_epoch(sp);

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 2), 0);
    for (int i = 0; i < 6; i++)
        append_probe(sp, "x", 0);
    assert_int_equal(spool_peek_for(sp, 0, 1, 2, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 5);          /* a: newest two */
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    assert_int_equal(spool_batch_acked(sp, 0, &c, NULL), 0);
    spool_chunk_free(&c);
    spool_close(sp);
    sp = open_ok();
    assert_int_equal(spool_epoch(sp), epoch);
    /* Before set_collectors it knows the file's collectors already. */
    assert_int_equal(spool_n_collectors(sp), 2);
    assert_int_equal(spool_set_collectors(sp, two_ids, 2), 0);
    assert_int_equal(count(sp), 6);
    assert_int_equal(spool_peek_for(sp, 0, 1, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 4);                   /* a: 1-4 still */
    assert_int_equal(c.first_seq, 1);
    assert_int_equal(c.last_seq, 4);
    spool_chunk_free(&c);
    assert_int_equal(spool_peek_for(sp, 1, 0, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 6);                   /* b: everything */
    spool_chunk_free(&c);
    spool_close(sp);
}

/* A hand-edited acked row with its ends swapped (and one across the int64
 * sign, as the file stores uint64 seqs) is left out and deleted; the good
 * row beside it still counts. */
static void test_reversed_acked_row_is_deleted_on_open(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    sqlite3 *db = NULL;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 2), 0);
    for (int i = 0; i < 6; i++)
        append_probe(sp, "x", 0);
    spool_close(sp);
    assert_int_equal(sqlite3_open(test_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "INSERT INTO acked(collector_id, first_seq, last_seq) "
        "SELECT id, 5, 2 FROM collectors WHERE url = 'http://a/v1/ingest';"
        "INSERT INTO acked(collector_id, first_seq, last_seq) "
        "SELECT id, -1, 3 FROM collectors WHERE url = 'http://a/v1/ingest';"
        "INSERT INTO acked(collector_id, first_seq, last_seq) "
        "SELECT id, 6, 6 FROM collectors WHERE url = 'http://a/v1/ingest';",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    sp = open_ok();
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM acked"), 1);
    assert_int_equal(sql_int(test_path, "SELECT first_seq FROM acked"), 6);
    assert_int_equal(spool_set_collectors(sp, two_ids, 2), 0);
    assert_int_equal(spool_peek_for(sp, 0, 1, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 5);                   /* a: 1-5, 6 is acked */
    assert_int_equal(c.first_seq, 1);
    assert_int_equal(c.last_seq, 5);
    spool_chunk_free(&c);
    spool_close(sp);
}

static void test_removed_collector_releases_what_it_held(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    const char *only_a[] = { two_ids[0] };
    const char *b_then_new[] = { two_ids[1], "http://c/v1/ingest" };

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 2), 0);
    for (int i = 0; i < 5; i++)
        append_probe(sp, "x", 0);
    assert_int_equal(spool_peek_for(sp, 0, 0, 3, 1u << 20, &c), 0);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    assert_int_equal(spool_batch_acked(sp, 0, &c, NULL), 0);
    spool_chunk_free(&c);
    assert_int_equal(count(sp), 5);
    /* b goes from the config: a's acks now suffice. */
    assert_int_equal(spool_set_collectors(sp, only_a, 1), 0);
    assert_int_equal(count(sp), 2);
    assert_int_equal(spool_n_collectors(sp), 1);
    /* b comes back as new, beside a newcomer: both get what is left. */
    assert_int_equal(spool_set_collectors(sp, b_then_new, 2), 0);
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM collectors"),
                     2);
    for (unsigned k = 0; k < 2; k++) {
        assert_int_equal(spool_peek_for(sp, k, 0, 100, 1u << 20, &c), 0);
        assert_int_equal(c.first_seq, 4);
        assert_int_equal(c.n, 2);
        spool_chunk_free(&c);
    }
    assert_int_equal(spool_set_collectors(sp, b_then_new, 0), -EINVAL);
    spool_close(sp);
}

/* The bound drops events of a batch in flight: if the collector stores
 * the batch they were no loss; if the batch fails they become drops. */
static void test_drops_of_a_batch_in_flight_are_tentative(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    struct spool_stats st;
    size_t len, fit;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    assert_int_equal(spool_set_max_bytes(sp, SPOOL_MIN_MAX_BYTES), 0);
    skip_small_seqs(sp);
    len = fat_size(sp);
    fit = SPOOL_MIN_MAX_BYTES / len;
    for (size_t left = fit; left > 0;) {
        size_t k = left < 64 ? left : 64;

        append_fat(sp, k, 1000);
        left -= k;
    }
    /* In flight: 129-138. Four over the bound drop 129-132. */
    assert_int_equal(spool_peek_for(sp, 0, 0, 10, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 129);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    append_fat(sp, 4, 2000);
    assert_int_equal(min_seq(), 133);
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM drops "
                             "WHERE state = 2"), 1);
    /* Stored: no drop to report. */
    assert_int_equal(spool_batch_acked(sp, 0, &c, NULL), 0);
    spool_chunk_free(&c);
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM drops"), 0);
    /* Again, but the batch is abandoned (the agent stops while it is out
     * there): the ack made room for 6, so 10 more drop 139-142, which
     * become a drop record then, and only then count as dropped. */
    assert_int_equal(spool_peek_for(sp, 0, 0, 10, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 139);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    spool_chunk_free(&c);
    append_fat(sp, 10, 3000);
    assert_int_equal(spool_stats(sp, &st), 0);
    assert_int_equal(st.dropped, 0);    /* 129-132 were acked after all */
    assert_int_equal(spool_batch_abandoned(sp, 0), 0);
    assert_int_equal(spool_stats(sp, &st), 0);
    assert_int_equal(st.dropped, 4);
    assert_int_equal(spool_peek_for(sp, 0, 0, 10, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 143);
    assert_int_equal(c.drop.count, 4);
    assert_int_equal(c.drop.first_seq, 139);
    assert_int_equal(c.drop.last_seq, 142);
    spool_chunk_free(&c);
    assert_stats_match_file(sp);
    spool_close(sp);
}

/* A drop record made after the last batch took every event: it goes in
 * a batch of its own. */
static void test_drop_record_without_events_is_a_batch_alone(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    size_t len, fit;
    uint64_t r1_last, r2_first, r2_last;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    assert_int_equal(spool_set_max_bytes(sp, SPOOL_MIN_MAX_BYTES), 0);
    skip_small_seqs(sp);
    len = fat_size(sp);
    fit = SPOOL_MIN_MAX_BYTES / len;
    for (size_t left = fit + 5; left > 0;) {
        size_t k = left < 64 ? left : 64;

        append_fat(sp, k, 1000);
        left -= k;
    }
    /* R1 (129-133) goes out with a batch that fails: frozen. */
    assert_int_equal(spool_peek_for(sp, 0, 0, 10, 1u << 20, &c), 0);
    assert_int_equal(c.drop.count, 5);
    r1_last = c.drop.last_seq;
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    assert_int_equal(spool_batch_abandoned(sp, 0), 0);
    spool_chunk_free(&c);
    append_fat(sp, 3, 2000);                    /* R2: 134-136 */
    /* Every event and R1 in one batch, which says R2 is to come. */
    assert_int_equal(spool_peek_for(sp, 0, 0, 5000, 1u << 20, &c), 0);
    assert_int_equal(c.n, fit);
    assert_int_equal(c.drop.last_seq, r1_last);
    r2_first = r1_last + 1;
    assert_int_equal(c.oldest_seq, r2_first);
    assert_false(c.more);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    assert_int_equal(spool_batch_acked(sp, 0, &c, NULL), 0);
    spool_chunk_free(&c);
    assert_int_equal(count(sp), 0);
    /* Now R2 alone. */
    assert_int_equal(spool_peek_for(sp, 0, 1, 5000, 1u << 20, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(c.drop.count, 3);
    assert_int_equal(c.drop.first_seq, r2_first);
    r2_last = c.drop.last_seq;
    assert_int_equal(r2_last, r2_first + 2);
    assert_int_equal(c.oldest_seq, r2_last + 1);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    assert_int_equal(spool_batch_acked(sp, 0, &c, NULL), 0);
    spool_chunk_free(&c);
    assert_int_equal(spool_peek_for(sp, 0, 0, 5000, 1u << 20, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(c.drop.count, 0);
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM drops"), 0);
    spool_close(sp);
}

/* Another writer (sextant-agent event) that overflows the spool while
 * the agent has a batch out there sees it in the file: its drops of that
 * batch are tentative too. */
static void test_other_writer_sees_the_batch_out_there(void **state)
{
    struct spool *sp = open_ok(), *other;
    struct spool_chunk c;
    struct spool_stats st;
    size_t len, fit;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    assert_int_equal(spool_set_max_bytes(sp, SPOOL_MIN_MAX_BYTES), 0);
    skip_small_seqs(sp);
    len = fat_size(sp);
    fit = SPOOL_MIN_MAX_BYTES / len;
    for (size_t left = fit; left > 0;) {
        size_t k = left < 64 ? left : 64;

        append_fat(sp, k, 1000);
        left -= k;
    }
    assert_int_equal(spool_peek_for(sp, 0, 0, 10, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 129);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    /* The other process drops 129-140: 10 of the batch, 2 beyond it. */
    other = open_ok();
    append_fat(other, 12, 2000);
    spool_close(other);
    assert_int_equal(min_seq(), 141);
    assert_int_equal(sql_int(test_path, "SELECT count FROM drops WHERE "
                             "state = 2"), 10);
    assert_int_equal(sql_int(test_path, "SELECT count FROM drops WHERE "
                             "state = 0"), 2);
    assert_int_equal(spool_stats(sp, &st), 0);
    assert_int_equal(st.dropped, 2);
    /* The collector stored the batch: only the 2 are lost. */
    assert_int_equal(spool_batch_acked(sp, 0, &c, NULL), 0);
    spool_chunk_free(&c);
    assert_int_equal(spool_peek_for(sp, 0, 0, 10, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 141);
    assert_int_equal(c.drop.count, 2);
    assert_int_equal(c.drop.first_seq, 139);
    assert_int_equal(c.drop.last_seq, 140);
    spool_chunk_free(&c);
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM drops"), 1);
    spool_close(sp);
}

/* A collector refusing everything must not fill the disk: past
 * SPOOL_DEAD_MAX_BYTES of bodies the oldest dead letters go. */
static void test_dead_letters_are_capped_newest_kept(void **state)
{
    enum { PER = 1000, ROUNDS = 20 };   /* ~1 KiB events: ~20 MiB refused */
    Sextant__V1__Event ev[PER], *evp[PER];
    Sextant__V1__ProbeResult pr = SEXTANT__V1__PROBE_RESULT__INIT;
    struct spool *sp = open_ok();
    struct spool_chunk c;
    char target[1001];
    sqlite3 *db;
    sqlite3_stmt *q;
    uint64_t deleted = 0;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    memset(target, 'x', sizeof(target) - 1);
    target[sizeof(target) - 1] = '\0';
    pr.target = target;
    pr.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER; i++) {
            sextant__v1__event__init(&ev[i]);
            ev[i].unix_ms = 1000 + r;
            ev[i].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
            ev[i].probe = &pr;
            evp[i] = &ev[i];
        }
        assert_int_equal(spool_append_many(sp, evp, PER), 0);
        assert_int_equal(spool_peek_for(sp, 0, 0, PER, 4u << 20, &c), 0);
        assert_int_equal(c.n, PER);
        assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
        assert_int_equal(spool_batch_dead(sp, 0, &c, 400, "refused",
                                          &deleted), 0);
        spool_chunk_free(&c);
    }
    spool_close(sp);
    assert_int_equal(sqlite3_open_v2(test_path, &db, SQLITE_OPEN_READONLY,
                                     NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT total(length(body)), "
                                        "max(last_seq), count(*) FROM "
                                        "dead_letter", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_true(sqlite3_column_int64(q, 0) <= SPOOL_DEAD_MAX_BYTES);
    assert_true(sqlite3_column_int64(q, 0) > SPOOL_DEAD_MAX_BYTES / 2);
    assert_int_equal(sqlite3_column_int64(q, 1), PER * ROUNDS);  /* newest */
    assert_true(sqlite3_column_int64(q, 2) < ROUNDS);            /* pruned */
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static void test_dead_letter_keeps_the_batch_and_moves_on(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    struct spool_stats st;
    Sextant__V1__Batch *b;
    sqlite3 *db;
    sqlite3_stmt *q;
    uint64_t deleted = 0;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    for (int i = 0; i < 5; i++) {
        char name[16];

        snprintf(name, sizeof(name), "t%d", i);
        append_probe(sp, name, 100 + i);
    }
    assert_int_equal(spool_peek_for(sp, 0, 0, 3, 1u << 20, &c), 0);
    assert_int_equal(spool_batch_sent(sp, 0, &c), 0);
    assert_int_equal(spool_batch_dead(sp, 0, &c, 400, "{\"error\":\"bad "
                                      "batch\"}", &deleted), 0);
    assert_int_equal(deleted, 3);
    spool_chunk_free(&c);
    assert_int_equal(count(sp), 2);
    assert_int_equal(spool_stats(sp, &st), 0);
    assert_int_equal(st.dead_letter, 3);
    /* The stream goes on after it. */
    assert_int_equal(spool_peek_for(sp, 0, 0, 3, 1u << 20, &c), 0);
    assert_int_equal(c.first_seq, 4);
    spool_chunk_free(&c);
    spool_close(sp);
    assert_int_equal(sqlite3_open_v2(test_path, &db, SQLITE_OPEN_READONLY,
                                     NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT collector, first_seq, "
                                        "last_seq, count, status, reason, "
                                        "unix_ms, body FROM dead_letter",
                                        -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), two_ids[0]);
    assert_int_equal(sqlite3_column_int64(q, 1), 1);
    assert_int_equal(sqlite3_column_int64(q, 2), 3);
    assert_int_equal(sqlite3_column_int64(q, 3), 3);
    assert_int_equal(sqlite3_column_int(q, 4), 400);
    assert_string_equal((const char *)sqlite3_column_text(q, 5),
                        "{\"error\":\"bad batch\"}");
    assert_true(sqlite3_column_int64(q, 6) > 0);
    /* The body is a sextant.v1.Batch holding just those events. */
    b = sextant__v1__batch__unpack(NULL, (size_t)sqlite3_column_bytes(q, 7),
                                   sqlite3_column_blob(q, 7));
    assert_non_null(b);
    assert_int_equal(b->n_events, 3);
    for (size_t i = 0; i < 3; i++) {
        char name[16];

        snprintf(name, sizeof(name), "t%zu", i);
        assert_int_equal(b->events[i]->seq, i + 1);
        assert_int_equal(b->events[i]->unix_ms, 100 + (int64_t)i);
        assert_string_equal(b->events[i]->probe->target, name);
    }
    sextant__v1__batch__free_unpacked(b, NULL);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* A spool written by the agent before issue 5: schema v1 with events. */
static void test_v1_spool_is_migrated_with_its_events(void **state)
{
    struct spool *sp;
    struct spool_stats st;
    sqlite3 *db;
    uint8_t *body;
    size_t len;
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__Lifecycle lc = SEXTANT__V1__LIFECYCLE__INIT;
    sqlite3_stmt *ins;

    (void)state;
    assert_int_equal(sqlite3_open(test_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "PRAGMA journal_mode = WAL;"
        "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  epoch INTEGER NOT NULL, next_seq INTEGER NOT NULL,"
        "  created_unix_ms INTEGER NOT NULL);"
        "CREATE TABLE events (seq INTEGER PRIMARY KEY,"
        "  unix_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
        "  body BLOB NOT NULL);"
        "INSERT INTO meta VALUES (1, 4242, 8, 1);"
        "PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO events VALUES "
                                        "(?, 5, 'lifecycle', ?)", -1, &ins,
                                        NULL), SQLITE_OK);
    ev.kind_case = SEXTANT__V1__EVENT__KIND_LIFECYCLE;
    ev.lifecycle = &lc;
    ev.unix_ms = 5;
    for (int seq = 5; seq <= 7; seq++) {
        ev.seq = (uint64_t)seq;
        assert_int_equal(wire_event_pack(&ev, &body, &len), 0);
        sqlite3_bind_int(ins, 1, seq);
        sqlite3_bind_blob(ins, 2, body, (int)len, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        free(body);
    }
    sqlite3_finalize(ins);
    sqlite3_close(db);
    sp = open_ok();
    assert_null(spool_moved_aside(sp));
    assert_int_equal(spool_epoch(sp), 4242);
    assert_int_equal(spool_stats(sp, &st), 0);
    assert_int_equal(st.events, 3);
    assert_int_equal(st.bytes, 3 * len);
    assert_int_equal(append_probe(sp, "after", 0), 8);
    assert_stats_match_file(sp);
    spool_close(sp);
    assert_int_equal(sql_int(test_path, "PRAGMA user_version"), 2);
}

static void test_unwritable_path_is_an_error(void **state)
{
    struct spool *sp = NULL;
    char err[SPOOL_ERR_LEN];
    int rc;

    (void)state;
    rc = spool_open("/nonexistent-dir/spool.db", &sp, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(sp);
    assert_non_null(strstr(err, "/nonexistent-dir/spool.db"));
}

/* @c goes out to collector 0 and is acked; frees it. */
static void ship_acked(struct spool *sp, struct spool_chunk *c)
{
    assert_int_equal(spool_batch_sent(sp, 0, c), 0);
    assert_int_equal(spool_batch_acked(sp, 0, c, NULL), 0);
    spool_chunk_free(c);
}

/* Peeks for collector 0 (@newest first, at most @max events), expects
 * @n events from @first, no drop record and oldest_seq @oldest, and ships
 * the batch acked. */
static void ship_without_drop(struct spool *sp, int newest, size_t max,
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
static void peek_drop_alone(struct spool *sp, int newest,
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

static void refuse_writes(void)
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

static void restore_writes(void)
{
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
}

/* One collector; two events spooled (returns the first's seq, the
 * second's in *s2), then @lost appends refused, stamped 2000, 2500, ... */
static uint64_t two_then_refused(struct spool *sp, int lost, uint64_t *s2)
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

/* Results that no append could store are not lost silently: they take
 * the next seqs once an append commits again, as a drop record of their
 * own whose count and time span are exactly theirs. It lies above the
 * events spooled before the outage, so it waits for a batch above it (or
 * goes alone), and oldest_seq never writes off its seqs early. */
static void test_failed_appends_become_one_drop_once_writes_resume(
    void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    struct spool_drop d;
    uint64_t s1, s2, s3;

    (void)state;
    s1 = two_then_refused(sp, 3, &s2);
    spool_refused(sp, &d);
    assert_int_equal(d.count, 3);
    assert_int_equal(d.first_unix_ms, 2000);
    assert_int_equal(d.last_unix_ms, 3000);
    assert_int_equal(count(sp), 2);
    s3 = append_probe(sp, "after", 4000);
    assert_int_equal(s3, s2 + 4);           /* three seqs for the drop */
    spool_refused(sp, &d);
    assert_int_equal(d.count, 0);
    /* Events on both sides of it: the record waits, and oldest_seq stays
     * at the first event, so the collector sees no gap yet. */
    ship_without_drop(sp, 0, 100, 3, s1, s1);
    /* Then the record alone: exact count, seqs and times. */
    peek_drop_alone(sp, 0, &c, 3, s2 + 1, s2 + 3);
    assert_int_equal(c.drop.first_unix_ms, 2000);
    assert_int_equal(c.drop.last_unix_ms, 3000);
    assert_int_equal(c.oldest_seq, s3);
    ship_acked(sp, &c);
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM drops"), 0);
    spool_close(sp);
}

/* Once the events below it are acked, the record of refused events goes
 * with the next batch above it, like a drop from the bound. */
static void test_refused_drop_rides_with_the_batch_above_it(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    uint64_t s1, s2, seq = 0;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    s1 = append_probe(sp, "before", 1000);
    assert_int_equal(spool_peek_for(sp, 0, 0, 100, 1u << 20, &c), 0);
    ship_acked(sp, &c);
    refuse_writes();
    assert_true(try_append(sp, "lost", 2000, &seq) < 0);
    restore_writes();
    s2 = append_probe(sp, "after", 3000);
    assert_int_equal(s2, s1 + 2);
    assert_int_equal(spool_peek_for(sp, 0, 1, 100, 1u << 20, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.first_seq, s2);
    assert_int_equal(c.drop.count, 1);
    assert_int_equal(c.drop.first_seq, s1 + 1);
    assert_int_equal(c.drop.last_seq, s1 + 1);
    assert_int_equal(c.oldest_seq, s2);       /* the drop explains s1 + 1 */
    spool_chunk_free(&c);
    spool_close(sp);
}

/* Finding: a newest-first batch above the refused record must not carry
 * it while older events are unacked: the collector takes drops in seq
 * order only, so a bound drop of those older events would then be taken
 * for a replay and their seqs would vanish without a drop or a gap. */
static void test_refused_drop_waits_for_every_unacked_event_below(
    void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    uint64_t s1, s2, s3, s4;

    (void)state;
    s1 = two_then_refused(sp, 1, &s2);
    s3 = append_probe(sp, "after", 3000);
    s4 = append_probe(sp, "after", 3100);
    assert_int_equal(s3, s2 + 2);
    /* Newest first, one at a time: s4, then s3, both above the record. */
    ship_without_drop(sp, 1, 1, 1, s4, s1);
    ship_without_drop(sp, 1, 1, 1, s3, s1);
    /* Oldest first: s1 and s2, still without it. */
    ship_without_drop(sp, 0, 100, 2, s1, s1);
    /* Nothing unacked below it any more: it goes, alone and exact. */
    peek_drop_alone(sp, 1, &c, 1, s2 + 1, s2 + 1);
    ship_acked(sp, &c);
    spool_close(sp);
}

/* Column @col of the drop row that starts at @first_seq. */
static int64_t drop_field(uint64_t first_seq, const char *col)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "SELECT %s FROM drops WHERE first_seq = %llu",
             col, (unsigned long long)first_seq);
    return sql_int(test_path, sql);
}

/* Fills the spool to its minimum bound with fat events nobody acked,
 * has one append refused, and stores one more: the refused record takes
 * seq L + 1 (returned) above the backlog first..L, the bound drops
 * @first, and the new event is L + 2. */
static uint64_t fill_refuse_append(struct spool *sp, uint64_t *first)
{
    size_t len, fit;
    uint64_t next, seq = 0;

    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    assert_int_equal(spool_set_max_bytes(sp, SPOOL_MIN_MAX_BYTES), 0);
    skip_small_seqs(sp);
    len = fat_size(sp);
    fit = SPOOL_MIN_MAX_BYTES / len;
    assert_int_equal(spool_next_seq(sp, first), 0);
    for (size_t left = fit; left > 0;) {
        size_t k = left < 64 ? left : 64;

        append_fat(sp, k, 10000);
        left -= k;
    }
    assert_int_equal(spool_next_seq(sp, &next), 0);
    refuse_writes();
    assert_true(try_append(sp, "lost", 20000, &seq) < 0);
    restore_writes();
    append_fat(sp, 1, 30000);
    assert_int_equal(min_seq(), *first + 1);
    return next;
}

/* After fill_refuse_append(): acks first + 1 .. @upto, then appends fat
 * events until the bound drops the oldest event left. */
static void ack_then_drop_oldest(struct spool *sp, uint64_t first,
                                 uint64_t r, uint64_t upto)
{
    struct spool_chunk c;
    uint64_t oldest, next;

    assert_int_equal(spool_peek_for(sp, 0, 0, upto - first, 1u << 20, &c),
                     0);
    assert_int_equal(c.first_seq, first + 1);
    assert_int_equal(c.last_seq, upto);
    ship_acked(sp, &c);
    oldest = upto + 1 == r ? r + 1 : upto + 1;
    assert_int_equal(min_seq(), oldest);
    while (min_seq() == oldest) {
        append_fat(sp, 64, 40000);
        assert_int_equal(spool_next_seq(sp, &next), 0);
        assert_true(next < r + 10 * (r - first));   /* the bound works */
    }
}

/* Finding: bound drops of the backlog below an unshipped refused record
 * grow one record, as they do without it, instead of one per append. */
static void test_bound_drops_below_a_refused_record_merge(void **state)
{
    struct spool *sp = open_ok();
    uint64_t first, r;

    (void)state;
    r = fill_refuse_append(sp, &first);
    append_fat(sp, 1, 31000);
    append_fat(sp, 1, 32000);
    assert_int_equal(min_seq(), first + 3);
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM drops"), 2);
    assert_int_equal(drop_field(first, "count"), 3);
    assert_int_equal(drop_field(first, "last_seq"), first + 2);
    /* The refused record is untouched above them. */
    assert_int_equal(drop_field(r, "last_seq"), r);
    assert_int_equal(drop_field(r, "count"), 1);
    spool_close(sp);
}

/* Finding: the refused record keeps exactly its outage's count and span;
 * a bound drop of the events next to it gets a record of its own. */
static void test_refused_record_never_grows(void **state)
{
    struct spool *sp = open_ok();
    uint64_t first, r;

    (void)state;
    r = fill_refuse_append(sp, &first);
    /* Everything but the new event r + 1 acked: the bound drops it next. */
    ack_then_drop_oldest(sp, first, r, r - 1);
    /* The backlog's record went with its batch: the refused one, as it
     * was, and the new bound drop from r + 1 on. */
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM drops"), 2);
    assert_int_equal(drop_field(r, "last_seq"), r);
    assert_int_equal(drop_field(r, "count"), 1);
    assert_int_equal(drop_field(r, "last_unix_ms"), 20000);
    assert_int_equal(drop_field(r + 1, "first_unix_ms"), 30000);
    spool_close(sp);
}

/* No bound drop spans the refused record: one that takes events on both
 * sides of it becomes two records, each below or above it, so the
 * collector gets them and the refused one in seq order. */
static void test_bound_drop_across_a_refused_record_is_split(void **state)
{
    struct spool *sp = open_ok();
    uint64_t first, r;

    (void)state;
    r = fill_refuse_append(sp, &first);
    /* first + 1 .. r - 2 acked: r - 1 and r + 1 are the oldest left. */
    ack_then_drop_oldest(sp, first, r, r - 2);
    assert_true(min_seq() > r + 1);     /* both went in one append */
    assert_int_equal(sql_int(test_path, "SELECT count(*) FROM drops"), 3);
    assert_int_equal(drop_field(r - 1, "last_seq"), r - 1);
    assert_int_equal(drop_field(r, "count"), 1);
    assert_int_equal(drop_field(r + 1, "first_unix_ms"), 30000);
    spool_close(sp);
}

/* One owner per spool: a second claim names the holder's pid; closing
 * the first lets the next one in. */
static void test_second_owner_is_refused_with_the_holders_pid(void **state)
{
    char err[SPOOL_ERR_LEN] = "", lock[512];
    int fd = -1, fd2 = -1, st;
    long holder = -1;
    pid_t child;

    (void)state;
    assert_int_equal(spool_own(test_path, &fd, &holder, err, sizeof(err)),
                     0);
    assert_true(fd >= 0);
    /* A POSIX lock does not stop its own process: ask from a child. */
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int rc = spool_own(test_path, &fd2, &holder, err, sizeof(err));
        char want[64];

        snprintf(want, sizeof(want), "(pid %ld)", (long)getppid());
        _exit(rc == -EBUSY && holder == (long)getppid() &&
              strstr(err, test_path) && strstr(err, want) ? 0 : 1);
    }
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    spool_disown(fd);
    child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(spool_own(test_path, &fd2, &holder, err, sizeof(err)) == 0
                  ? 0 : 1);
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(lock, sizeof(lock), "%s.lock", test_path);
    unlink(lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_new_spool_has_an_epoch_and_starts_at_seq_1),
        T(test_new_file_gets_a_new_epoch),
        T(test_append_assigns_rising_seqs_and_time),
        T(test_append_many_is_one_batch_of_seqs),
        T(test_peek_returns_oldest_first_as_packed_events),
        T(test_peek_honours_count_bytes_and_after_seq),
        T(test_ack_deletes_events_up_to_seq),
        T(test_seq_keeps_rising_across_reopen_when_empty),
        T(test_unacked_events_survive_reopen),
        T(test_events_survive_kill_9),
        T(test_spool_file_is_in_wal_mode),
        T(test_newer_schema_is_moved_aside_for_a_new_epoch),
        T(test_file_that_is_not_a_spool_is_moved_aside),
        T(test_corrupt_spool_is_moved_aside),
        T(test_unwritable_path_is_an_error),
        T(test_bound_drops_oldest_with_an_exact_drop_record),
        T(test_drop_record_is_per_collector_and_told_once),
        T(test_event_goes_only_when_every_collector_acked),
        T(test_reopen_keeps_ranges_drops_and_events),
        T(test_reversed_acked_row_is_deleted_on_open),
        T(test_removed_collector_releases_what_it_held),
        T(test_drops_of_a_batch_in_flight_are_tentative),
        T(test_drop_record_without_events_is_a_batch_alone),
        T(test_other_writer_sees_the_batch_out_there),
        T(test_dead_letter_keeps_the_batch_and_moves_on),
        T(test_dead_letters_are_capped_newest_kept),
        T(test_v1_spool_is_migrated_with_its_events),
        T(test_failed_appends_become_one_drop_once_writes_resume),
        T(test_refused_drop_rides_with_the_batch_above_it),
        T(test_refused_drop_waits_for_every_unacked_event_below),
        T(test_bound_drops_below_a_refused_record_merge),
        T(test_refused_record_never_grows),
        T(test_bound_drop_across_a_refused_record_is_split),
        T(test_second_owner_is_refused_with_the_holders_pid),
#undef T
    };
    int rc;

    snprintf(test_dir, sizeof(test_dir), "/tmp/test_spool.XXXXXX");
    if (!mkdtemp(test_dir))
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(test_dir);
    return rc;
}
