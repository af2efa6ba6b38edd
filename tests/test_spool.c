/* test_spool.c -- the agent's SQLite spool file (agent/spool.c,
 * spool_file.c): a new file's epoch and first seq, seqs and events across
 * reopen and kill -9, WAL mode, moving aside a newer schema, a file that
 * is not a spool and a corrupt one, an unwritable path, the v1 -> v2
 * migration, and one owner per spool. Appends, collectors and batches
 * have files of their own (test_spool_append.c, test_spool_collectors.c,
 * test_spool_batch.c); the fixture is tests/spool_test.c. Counts are
 * exact, checked against the file through a connection of the test's
 * own. */
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
#include "spool_test.h"
#include "util.h"
#include "wire.h"

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
        T(test_seq_keeps_rising_across_reopen_when_empty),
        T(test_unacked_events_survive_reopen),
        T(test_events_survive_kill_9),
        T(test_spool_file_is_in_wal_mode),
        T(test_newer_schema_is_moved_aside_for_a_new_epoch),
        T(test_file_that_is_not_a_spool_is_moved_aside),
        T(test_corrupt_spool_is_moved_aside),
        T(test_unwritable_path_is_an_error),
        T(test_v1_spool_is_migrated_with_its_events),
        T(test_second_owner_is_refused_with_the_holders_pid),
#undef T
    };

    return spool_test_main("test_spool", tests, sizeof(tests) / sizeof(tests[0]));
}
