/* test_spool.c -- the agent's SQLite spool: seqs, epochs, peek limits,
 * acks, reopening, surviving kill -9, and refusing files it cannot use.
 * Each test gets its own spool file in a fresh temp folder. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "spool.h"
#include "util.h"

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

static int teardown(void **state)
{
    char p[160];

    (void)state;
    unlink(test_path);
    snprintf(p, sizeof(p), "%s-wal", test_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", test_path);
    unlink(p);
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
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    spool_close(sp);
}

static void test_newer_schema_is_refused(void **state)
{
    struct spool *sp = open_ok();
    char err[SPOOL_ERR_LEN];
    sqlite3 *db;

    (void)state;
    spool_close(sp);
    assert_int_equal(sqlite3_open(test_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL,
                                  NULL), SQLITE_OK);
    sqlite3_close(db);
    sp = NULL;
    assert_int_equal(spool_open(test_path, &sp, err, sizeof(err)), -EPROTO);
    assert_null(sp);
    assert_string_equal(err, "spool schema v99 is newer than this agent "
                        "knows (v1)");
}

static void test_file_that_is_not_a_spool_is_refused(void **state)
{
    struct spool *sp = NULL;
    char junk[4096], err[SPOOL_ERR_LEN];
    FILE *f;

    (void)state;
    memset(junk, 'z', sizeof(junk));
    f = fopen(test_path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    fclose(f);
    assert_int_equal(spool_open(test_path, &sp, err, sizeof(err)), -EBADMSG);
    assert_null(sp);
    assert_non_null(strstr(err, "not a database"));
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
        T(test_newer_schema_is_refused),
        T(test_file_that_is_not_a_spool_is_refused),
        T(test_unwritable_path_is_an_error),
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
