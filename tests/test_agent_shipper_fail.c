/* test_agent_shipper_fail.c -- the shipper when a collector refuses or
 * fails, against the fake collectors of tests/shipper_test.c: how
 * failures back off (full jitter within its bounds, Retry-After as
 * seconds or a date), what 400/413 do (dead letter, the stream goes on),
 * 401 (retried), an ack for another epoch, an unreachable collector, an
 * oversized reply, an abort. Timing checks only ever assert a lower
 * bound the code promises (a retry not before Retry-After), never that
 * the machine is fast. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "shipper.h"
#include "spool.h"
#include "util.h"
#include "wire.h"
#include "shipper_test.h"

/* -- failures -- */

static void test_full_jitter_stays_within_its_bounds(void **state)
{
    (void)state;
    for (unsigned k = 1; k <= 12; k++) {
        int64_t bound = 1000LL << (k - 1);

        if (bound > 60000)
            bound = 60000;
        assert_int_equal(shipper_backoff_ms(1000, 60000, k, 0), 0);
        assert_int_equal(shipper_backoff_ms(1000, 60000, k,
                                            (uint64_t)bound), bound);
        assert_int_equal(shipper_backoff_ms(1000, 60000, k,
                                            (uint64_t)bound + 1), 0);
        assert_int_equal(shipper_backoff_ms(1000, 60000, k, UINT64_MAX),
                         (int64_t)(UINT64_MAX % ((uint64_t)bound + 1)));
    }
    assert_int_equal(shipper_backoff_ms(1000, 60000, 4000, 60000), 60000);
}

static void test_503_retries_with_growing_jittered_backoff(void **state)
{
    struct fx *f = *state;
    long w[24], max_late = 0;
    int distinct = 0;

    f->cfg.backoff_initial_ms = 100;
    f->cfg.backoff_max_ms = 800;
    append_n(f->sp, 3);
    set_reply(0, REPLY_STATUS, 503, NULL);
    for (unsigned k = 1; k <= 24; k++) {
        long bound = 100L << (k - 1 < 3 ? k - 1 : 3);

        shipper_retry_now(f->sh);
        assert_int_equal(ship(f), 1);
        assert_int_equal(shipper_failures(f->sh), k);
        w[k - 1] = shipper_wait_ms(f->sh, util_mono_us());
        assert_true(w[k - 1] >= 0 && w[k - 1] <= bound + 1);
        if (k >= 4 && w[k - 1] > max_late)
            max_late = w[k - 1];
        if (k > 1 && w[k - 1] != w[k - 2])
            distinct++;
        /* Backing off: no request. (Full jitter may draw a delay of a
         * few ms, over before the next poll: only a longer one counts.) */
        if (w[k - 1] > 20)
            assert_int_equal(ship(f), 0);
    }
    /* Jittered, not fixed; and grown past the first bound (21 draws from
     * [0, 800]: all <= 100 has odds of 8^-21). */
    assert_true(distinct > 0);
    assert_true(max_late > 100);
    assert_int_equal(spooled(f->sp), 3);
    assert_false(shipper_drained(f->sh));
    assert_metric("sextant_agent_batches_failed_total 24");
    set_reply(0, REPLY_ACK, 0, NULL);
    shipper_retry_now(f->sh);
    assert_int_equal(ship(f), 1);
    assert_int_equal(shipper_failures(f->sh), 0);
    assert_int_equal(shipper_wait_ms(f->sh, util_mono_us()), -1);
    assert_int_equal(spooled(f->sp), 0);
    assert_got_exactly(0, 1, 3);
}

static void test_429_retry_after_seconds_is_honoured(void **state)
{
    struct fx *f = *state;
    int64_t first, second;

    f->cfg.backoff_initial_ms = 10;         /* jitter alone: <= 10 ms */
    f->cfg.backoff_max_ms = 10;
    append_n(f->sp, 2);
    set_reply(0, REPLY_STATUS_ONCE, 429, "2");
    assert_int_equal(ship(f), 1);
    assert_true(shipper_wait_ms(f->sh, util_mono_us()) >= 1900);
    run_until_requests(f, 0, 2, 10000);
    pthread_mutex_lock(&mu);
    first = fakes[0].req[0].at_us;
    second = fakes[0].req[1].at_us;
    pthread_mutex_unlock(&mu);
    assert_true(second - first >= 1900000);
    assert_int_equal(fakes[0].req[1].status, 200);
    /* The loop may end before the shipper took the reply: finish it. */
    ship_all(f);
    assert_int_equal(spooled(f->sp), 0);
}

static void test_503_retry_after_http_date_is_honoured(void **state)
{
    struct fx *f = *state;
    char date[64];
    time_t at = time(NULL) + 4;
    struct tm tm;
    long w;

    f->cfg.backoff_initial_ms = 10;
    f->cfg.backoff_max_ms = 10;
    gmtime_r(&at, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    append_n(f->sp, 2);
    set_reply(0, REPLY_STATUS, 503, date);
    assert_int_equal(ship(f), 1);
    w = shipper_wait_ms(f->sh, util_mono_us());
    /* 4 s ahead at one-second resolution: at least 3 s, at most 4. */
    assert_true(w >= 2900 && w <= 4100);
    /* Retry-After counts on 429 and 503 only. */
    set_reply(0, REPLY_STATUS, 500, "30");
    shipper_retry_now(f->sh);
    assert_int_equal(ship(f), 1);
    assert_true(shipper_wait_ms(f->sh, util_mono_us()) <= 11);
}

static void test_400_dead_letters_the_batch_and_moves_on(void **state)
{
    struct fx *f = *state;
    struct req r;

    f->cfg.batch_max_events = 3;
    append_n(f->sp, 5);
    set_reply(0, REPLY_STATUS_ONCE, 400, NULL);
    /* Newest first (a backlog): 3-5 are refused. */
    assert_int_equal(ship(f), 1);
    r = last_req(0);
    assert_int_equal(r.first_seq, 3);
    assert_int_equal(r.last_seq, 5);
    assert_int_equal(r.status, 400);
    /* No backoff: the collector answers, the batch was the problem; the
     * rest may go at once. */
    assert_int_equal(shipper_failures(f->sh), 0);
    assert_int_equal(shipper_wait_ms(f->sh, util_mono_us()), 0);
    assert_int_equal(spooled(f->sp), 2);
    assert_int_equal(sql_int("SELECT count(*) FROM dead_letter"), 1);
    assert_int_equal(sql_int("SELECT count FROM dead_letter"), 3);
    assert_int_equal(sql_int("SELECT first_seq FROM dead_letter"), 3);
    assert_int_equal(sql_int("SELECT status FROM dead_letter"), 400);
    assert_int_equal(sql_int("SELECT reason LIKE '%as the test asked%' "
                             "FROM dead_letter"), 1);
    assert_metric("sextant_agent_batches_rejected_total{status=\"400\"} 1");
    assert_metric("sextant_agent_batches_rejected_total{status=\"413\"} 0");
    /* The stream goes on with the next batch, never the refused one. */
    assert_int_equal(ship(f), 1);
    assert_int_equal(last_req(0).first_seq, 1);
    assert_int_equal(last_req(0).last_seq, 2);
    assert_int_equal(spooled(f->sp), 0);
    assert_int_equal(ship(f), 0);
    assert_int_equal(requests(0), 2);
    assert_got_exactly(0, 1, 2);
    metrics_loop_turn(f->sp, 1, util_mono_us());
    assert_metric("sextant_agent_dead_letter_events 3");
}

static void test_413_is_dead_lettered_too(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 4);
    set_reply(0, REPLY_STATUS_ONCE, 413, NULL);
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 0);
    assert_int_equal(sql_int("SELECT sum(count) FROM dead_letter "
                             "WHERE status = 413"), 4);
    assert_metric("sextant_agent_batches_rejected_total{status=\"413\"} 1");
}

static void test_401_keeps_events_and_retries(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 3);
    set_reply(0, REPLY_STATUS, 401, NULL);
    for (unsigned k = 1; k <= 3; k++) {
        shipper_retry_now(f->sh);
        assert_int_equal(ship(f), 1);
        assert_int_equal(shipper_failures(f->sh), k);
    }
    assert_int_equal(spooled(f->sp), 3);
    assert_int_equal(sql_int("SELECT count(*) FROM dead_letter"), 0);
    assert_metric("sextant_agent_batches_rejected_total{status=\"400\"} 0");
    set_reply(0, REPLY_ACK, 0, NULL);
    ship_all(f);
    assert_int_equal(spooled(f->sp), 0);
}

static void test_ack_for_another_epoch_deletes_nothing(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 3);
    set_reply(0, REPLY_WRONG_EPOCH, 0, NULL);
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 3);
    assert_int_equal(shipper_failures(f->sh), 1);
}

static void test_unreachable_collector_is_a_failure(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 1);
    fake_stop(0);
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 1);
    assert_int_equal(shipper_failures(f->sh), 1);
}

static void test_oversized_reply_is_cut_and_a_failure(void **state)
{
    struct fx *f = *state;

    /* No time bound: ship() returning at all means the transfer ended,
     * and ASan would catch a reply written past the shipper's buffer. */
    append_n(f->sp, 2);
    set_reply(0, REPLY_HUGE, 0, NULL);
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 2);
    assert_int_equal(shipper_failures(f->sh), 1);
}

static void test_abort_keeps_the_batch_in_the_spool(void **state)
{
    struct fx *f = *state;
    int still;

    append_n(f->sp, 2);
    shipper_poll(f->sh, f->multi, util_mono_us());
    assert_int_equal(curl_multi_perform(f->multi, &still), CURLM_OK);
    shipper_abort(f->sh, f->multi);
    assert_int_equal(spooled(f->sp), 2);
    assert_int_equal(ship(f), 1);           /* and ships it afterwards */
    assert_int_equal(spooled(f->sp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T2(fn) cmocka_unit_test_setup_teardown(fn, setup2, teardown)
        cmocka_unit_test(test_full_jitter_stays_within_its_bounds),
        T(test_503_retries_with_growing_jittered_backoff),
        T(test_429_retry_after_seconds_is_honoured),
        T(test_503_retry_after_http_date_is_honoured),
        T(test_400_dead_letters_the_batch_and_moves_on),
        T(test_413_is_dead_lettered_too),
        T(test_401_keeps_events_and_retries),
        T(test_ack_for_another_epoch_deletes_nothing),
        T(test_unreachable_collector_is_a_failure),
        T(test_oversized_reply_is_cut_and_a_failure),
        T(test_abort_keeps_the_batch_in_the_spool),
#undef T
#undef T2
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
