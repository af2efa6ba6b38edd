/* test_spool_collectors.c -- the spool's collectors and their acked
 * ranges (agent/spool_collectors.c): a drop record per collector, told
 * once; an event goes only when every collector has acked it; what the
 * agent holds for each collector is what that one lacks; ranges,
 * drops and events survive reopen; a reversed acked row is deleted on
 * open; a removed collector releases what it held. Fixture:
 * tests/spool_test.c. */
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

static void test_drop_record_is_per_collector_and_told_once(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk a, b;
    size_t len;
    uint64_t deleted = 99;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 2), 0);
    fill_to_bound(sp, 5000, &len);
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

/* Acks @coll's next batch of @max events, oldest (or @newest) first. */
static void ack_next(struct spool *sp, unsigned coll, int newest, size_t max)
{
    struct spool_chunk c;

    assert_int_equal(spool_peek_for(sp, coll, newest, max, 1u << 20, &c), 0);
    assert_int_equal(spool_batch_sent(sp, coll, &c), 0);
    assert_int_equal(spool_batch_acked(sp, coll, &c, NULL), 0);
    spool_chunk_free(&c);
}

/* What the spool holds for @coll: @events, and as many bytes as
 * @bytes_sql (run on the file) says. */
static void assert_held(struct spool *sp, unsigned coll, uint64_t events,
                        const char *bytes_sql)
{
    uint64_t n = 99, b = 99;

    assert_int_equal(spool_held_for(sp, coll, &n, &b), 0);
    assert_int_equal(n, events);
    assert_int_equal(b, (uint64_t)sql_int(test_path, bytes_sql));
}

static void test_held_for_counts_what_each_collector_lacks(void **state)
{
    struct spool *sp = open_ok();
    uint64_t n = 7, b = 7, depth_n, depth_b;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 2), 0);
    for (int i = 0; i < 10; i++)
        append_probe(sp, i % 2 ? "x" : "a-longer-target", 0);
    /* Nothing acked: each is owed the whole spool. */
    assert_int_equal(spool_depth(sp, &depth_n, &depth_b), 0);
    assert_int_equal(spool_held_for(sp, 0, &n, &b), 0);
    assert_int_equal(n, 10);
    assert_int_equal(b, depth_b);
    /* a acks 1-4, b the newest 3 (8-10): the spool keeps all ten (each
     * lacks some), but holds for each only what it lacks. */
    ack_next(sp, 0, 0, 4);
    ack_next(sp, 1, 1, 3);
    assert_int_equal(count(sp), 10);
    assert_held(sp, 0, 6, "SELECT total(length(body)) FROM events "
                          "WHERE seq BETWEEN 5 AND 10");
    assert_held(sp, 1, 7, "SELECT total(length(body)) FROM events "
                          "WHERE seq BETWEEN 1 AND 7");
    /* a takes the rest: 8-10 are done with by both and go; a is owed
     * nothing, b still 1-7. */
    ack_next(sp, 0, 0, 100);
    assert_int_equal(count(sp), 7);
    assert_held(sp, 0, 0, "SELECT 0");
    assert_held(sp, 1, 7, "SELECT total(length(body)) FROM events");
    assert_int_equal(spool_held_for(sp, 2, &n, &b), -EINVAL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_drop_record_is_per_collector_and_told_once),
        T(test_event_goes_only_when_every_collector_acked),
        T(test_held_for_counts_what_each_collector_lacks),
        T(test_reopen_keeps_ranges_drops_and_events),
        T(test_reversed_acked_row_is_deleted_on_open),
        T(test_removed_collector_releases_what_it_held),
#undef T
    };

    return spool_test_main("test_spool_collectors", tests, sizeof(tests) / sizeof(tests[0]));
}
