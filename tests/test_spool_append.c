/* test_spool_append.c -- appending to the agent's spool
 * (agent/spool_append.c): rising seqs and times, many events as one run
 * of seqs, the byte bound dropping the oldest with an exact drop record,
 * and appends the disk refuses: one drop record once writes resume, never
 * grown, merged with or split from the bound's drops around it. Fixture:
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
    append_fat(sp, fit, 10000);
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
    append_fat(sp, fit, 10000);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_append_assigns_rising_seqs_and_time),
        T(test_append_many_is_one_batch_of_seqs),
        T(test_bound_drops_oldest_with_an_exact_drop_record),
        T(test_failed_appends_become_one_drop_once_writes_resume),
        T(test_bound_drops_below_a_refused_record_merge),
        T(test_refused_record_never_grows),
        T(test_bound_drop_across_a_refused_record_is_split),
#undef T
    };

    return spool_test_main("test_spool_append", tests, sizeof(tests) / sizeof(tests[0]));
}
