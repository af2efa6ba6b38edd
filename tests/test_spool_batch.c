/* test_spool_batch.c -- batches out of the agent's spool
 * (agent/spool_batch.c): peek order and limits, acks, tentative drops of
 * a batch in flight, a drop record as a batch alone, another writer
 * seeing the batch out there, dead letters (kept, moved past, capped
 * newest first), and where the record of refused appends rides.
 * Fixture: tests/spool_test.c. */
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

/* The bound drops events of a batch in flight: if the collector stores
 * the batch they were no loss; if the batch fails they become drops. */
static void test_drops_of_a_batch_in_flight_are_tentative(void **state)
{
    struct spool *sp = open_ok();
    struct spool_chunk c;
    struct spool_stats st;
    size_t len;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    fill_to_bound(sp, 1000, &len);
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
    append_fat(sp, fit + 5, 1000);
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
    size_t len;

    (void)state;
    assert_int_equal(spool_set_collectors(sp, two_ids, 1), 0);
    fill_to_bound(sp, 1000, &len);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_peek_returns_oldest_first_as_packed_events),
        T(test_peek_honours_count_bytes_and_after_seq),
        T(test_ack_deletes_events_up_to_seq),
        T(test_drops_of_a_batch_in_flight_are_tentative),
        T(test_drop_record_without_events_is_a_batch_alone),
        T(test_other_writer_sees_the_batch_out_there),
        T(test_dead_letter_keeps_the_batch_and_moves_on),
        T(test_dead_letters_are_capped_newest_kept),
        T(test_refused_drop_rides_with_the_batch_above_it),
        T(test_refused_drop_waits_for_every_unacked_event_below),
#undef T
    };

    return spool_test_main("test_spool_batch", tests, sizeof(tests) / sizeof(tests[0]));
}
