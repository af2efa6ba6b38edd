/* test_agent_shipper.c -- the shipper against fake collectors in this
 * process (libmicrohttpd on free loopback ports), each replying as the
 * test chooses: what a batch carries (headers, auth, header fields, seqs,
 * oldest_seq, drops, the backlog held for that collector), when a batch
 * closes (count, bytes, age, flush), the newest/oldest alternation on a
 * backlog, drop records seen from a collector, and fan-out to two
 * collectors with one down. How failures
 * back off and what each refusal does is test_agent_shipper_fail.c; the
 * fake collectors and the per-test fixture are tests/shipper_test.c.
 * Counts are exact. The real collector is tested elsewhere. */
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

/* -- what a batch carries -- */

static void test_batch_carries_headers_auth_and_events(void **state)
{
    struct fx *f = *state;
    int64_t before = util_now_ms();
    struct req r;

    append_n(f->sp, 3);
    assert_int_equal(ship(f), 1);
    r = last_req(0);
    assert_string_equal(fakes[0].err, "");
    assert_string_equal(fakes[0].path, "/v1/ingest");
    assert_string_equal(fakes[0].ctype, "application/x-protobuf");
    assert_string_equal(fakes[0].cenc, "deflate");
    assert_string_equal(fakes[0].auth, "Bearer tok-0123456789abcdef");
    assert_false(fakes[0].had_expect);
    assert_string_equal(fakes[0].cluster, "test");
    assert_string_equal(fakes[0].region, "eu-west-1");
    assert_string_equal(fakes[0].node, "node-1");
    assert_string_equal(fakes[0].version, SEXTANT_VERSION);
    assert_int_equal(fakes[0].epoch, spool_epoch(f->sp));
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.last_seq, 3);
    assert_int_equal(r.n_events, 3);
    assert_int_equal(r.oldest_seq, 1);
    assert_int_equal(r.drops.count, 0);
    assert_int_equal(fakes[0].prev_rtt_us, 0);  /* no shipment before */
    assert_true(fakes[0].sent_unix_ms >= before &&
                fakes[0].sent_unix_ms <= util_now_ms());
}

static void test_ack_empties_the_spool(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 3);
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 0);
    assert_int_equal(shipper_failures(f->sh), 0);
    assert_int_equal(ship(f), 0);           /* nothing left to send */
    assert_true(shipper_drained(f->sh));
    assert_int_equal(requests(0), 1);
    assert_metric("sextant_agent_batches_shipped_total 1");
}

static void test_next_batch_reports_rtt_and_continues_seq(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 2);
    assert_int_equal(ship(f), 1);
    append_n(f->sp, 2);
    assert_int_equal(ship(f), 1);
    assert_int_equal(last_req(0).first_seq, 3);
    assert_int_equal(last_req(0).last_seq, 4);
    assert_true(fakes[0].prev_rtt_us > 0);
    assert_int_equal(spooled(f->sp), 0);
}

/* A 200 means stored, whole: the Ack's watermark may sit below a newest-
 * first batch (the collector is still missing older seqs). */
static void test_200_acks_the_whole_batch_whatever_its_watermark(void **s)
{
    struct fx *f = *s;

    append_n(f->sp, 5);
    set_reply(0, REPLY_ACK_BELOW, 0, NULL);
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 0);
    assert_int_equal(shipper_failures(f->sh), 0);
}

/* -- when a batch closes -- */

static void test_batch_closes_at_max_events(void **state)
{
    struct fx *f = *state;

    f->cfg.batch_max_events = 100;
    f->cfg.batch_max_age_ms = 60000;        /* never by age here */
    append_n(f->sp, 99);
    assert_int_equal(ship(f), 0);           /* 99 < 100, and young */
    append_n(f->sp, 1);
    assert_int_equal(ship(f), 1);           /* the 100th closes it */
    assert_int_equal(last_req(0).n_events, 100);
    append_n(f->sp, 250);
    assert_int_equal(ship(f), 1);
    assert_int_equal(last_req(0).n_events, 100);
    assert_int_equal(ship(f), 1);
    assert_int_equal(last_req(0).n_events, 100);
    assert_int_equal(ship(f), 0);           /* 50 left: not full */
    assert_int_equal(spooled(f->sp), 50);
    shipper_flush(f->sh, 1);                /* --once / SIGTERM */
    assert_int_equal(ship(f), 1);
    assert_int_equal(last_req(0).n_events, 50);
    assert_int_equal(spooled(f->sp), 0);
    assert_got_exactly(0, 1, 350);
}

/* The collector refuses a batch of more than 10000 events whole: even
 * a config that asks for more (the config check stops a file doing it)
 * gets batches of 10000. */
static void test_batch_never_holds_more_than_the_wire_cap(void **state)
{
    struct fx *f = *state;

    f->cfg.batch_max_events = 2 * WIRE_MAX_EVENTS;
    f->cfg.batch_max_bytes = 4 << 20;
    f->cfg.batch_max_age_ms = 60000;
    append_n(f->sp, WIRE_MAX_EVENTS + 1);
    assert_int_equal(ship(f), 1);           /* full at the cap: it goes */
    assert_int_equal(last_req(0).n_events, WIRE_MAX_EVENTS);
    assert_int_equal(spooled(f->sp), 1);
    shipper_flush(f->sh, 1);
    assert_int_equal(ship(f), 1);
    assert_int_equal(last_req(0).n_events, 1);
    assert_got_exactly(0, 1, WIRE_MAX_EVENTS + 1);
}

static void test_batch_closes_at_max_bytes(void **state)
{
    struct fx *f = *state;
    size_t one;

    f->cfg.batch_max_bytes = 1024;
    f->cfg.batch_max_age_ms = 60000;
    append_named(f->sp, 400, "same-size-target");
    assert_int_equal(ship(f), 1);
    one = last_req(0).raw_bytes / last_req(0).n_events;
    assert_int_equal(last_req(0).raw_bytes, last_req(0).n_events * one);
    /* As many as fit in 1024 bytes, and not one more. */
    assert_true(last_req(0).raw_bytes <= 1024);
    assert_true(last_req(0).raw_bytes + one > 1024);
    assert_int_equal(spooled(f->sp), 400 - last_req(0).n_events);
}

static void test_batch_closes_at_max_age(void **state)
{
    struct fx *f = *state;
    int64_t t0;
    long w;

    f->cfg.batch_max_age_ms = 300;
    append_n(f->sp, 3);
    t0 = util_mono_us();
    assert_int_equal(ship(f), 0);           /* young: it waits */
    assert_int_equal(requests(0), 0);
    w = shipper_wait_ms(f->sh, util_mono_us());
    assert_true(w > 0 && w <= 300);         /* and says until when */
    run_until_requests(f, 0, 1, 5000);
    assert_true(util_mono_us() - t0 >= 300000);
    assert_int_equal(last_req(0).n_events, 3);
}
/* -- drain order -- */

static void test_backlog_alternates_newest_and_oldest(void **state)
{
    struct fx *f = *state;
    /* first, last, oldest_seq, and the backlog the batch reports: what
     * is unacked when it goes, itself included. */
    const uint64_t want[][4] = {
        { 201, 250, 1, 250 },       /* newest */
        { 1, 50, 1, 200 },          /* oldest */
        { 156, 255, 51, 155 },      /* newest: the 5 live ones first */
        { 51, 100, 51, 105 },       /* oldest */
        { 106, 155, 101, 55 },      /* newest */
        { 101, 105, 101, 5 },       /* what is left */
    };

    f->cfg.batch_max_events = 50;
    append_n(f->sp, 250);                   /* the backlog of an outage */
    assert_int_equal(ship(f), 1);
    assert_int_equal(ship(f), 1);
    append_n(f->sp, 5);                     /* live events, 251-255 */
    for (int i = 0; i < 4; i++)
        assert_int_equal(ship(f), 1);
    shipper_flush(f->sh, 1);
    assert_int_equal(ship(f), 0);
    assert_true(shipper_drained(f->sh));
    assert_int_equal(requests(0), 6);
    for (unsigned i = 0; i < 6; i++) {
        const struct req *r = &fakes[0].req[i];

        if (r->first_seq != want[i][0] || r->last_seq != want[i][1] ||
            r->oldest_seq != want[i][2] || r->spool_events != want[i][3])
            fail_msg("batch %u: seq %llu-%llu oldest %llu spool %llu, want "
                     "%llu-%llu oldest %llu spool %llu", i,
                     (unsigned long long)r->first_seq,
                     (unsigned long long)r->last_seq,
                     (unsigned long long)r->oldest_seq,
                     (unsigned long long)r->spool_events,
                     (unsigned long long)want[i][0],
                     (unsigned long long)want[i][1],
                     (unsigned long long)want[i][2],
                     (unsigned long long)want[i][3]);
        assert_true(r->spool_bytes >= r->raw_bytes);
    }
    /* The last batch was all the spool held: its bytes, exactly. */
    assert_int_equal(fakes[0].req[5].spool_bytes, fakes[0].req[5].raw_bytes);
    /* 156-255 is 100 seqs but 50 events: 201-250 went already. */
    assert_int_equal(fakes[0].req[2].n_events, 50);
    assert_got_exactly(0, 1, 255);
    assert_int_equal(spooled(f->sp), 0);
}

/* -- the bound, seen from a collector -- */

/* The collector is down; the spool overflows. The failed batch goes
 * again as it was (its event survives in memory though the spool dropped
 * it), the next carries the drop record, exactly once. */
static void test_drops_reach_the_collector_once(void **state)
{
    struct fx *f = *state;
    struct spool_stats st;
    unsigned with_drops = 0;

    assert_int_equal(spool_set_max_bytes(f->sp, SPOOL_MIN_MAX_BYTES), 0);
    set_reply(0, REPLY_STATUS, 503, NULL);
    append_n(f->sp, 1);
    assert_int_equal(ship(f), 1);           /* down: seq 1 fails */
    for (int i = 0; i < 8; i++)
        append_named(f->sp, 500, "a-longer-target-name-for-bytes");
    assert_int_equal(spool_stats(f->sp, &st), 0);
    assert_true(st.dropped > 0);
    assert_true(st.bytes <= SPOOL_MIN_MAX_BYTES);
    assert_int_equal(sql_int("SELECT min(seq) FROM events"), st.dropped + 2);
    set_reply(0, REPLY_ACK, 0, NULL);
    f->cfg.batch_max_events = 200;
    ship_all(f);
    assert_int_equal(spooled(f->sp), 0);
    assert_int_equal(fakes[0].req[1].first_seq, 1);     /* the same again */
    assert_int_equal(fakes[0].req[1].n_events, 1);
    for (unsigned i = 1; i < requests(0); i++) {
        const struct req *r = &fakes[0].req[i];

        if (r->drops.count == 0)
            continue;
        with_drops++;
        assert_int_equal(r->drops.count, st.dropped);
        assert_int_equal(r->drops.first_seq, 2);
        assert_int_equal(r->drops.last_seq, st.dropped + 1);
    }
    assert_int_equal(with_drops, 1);
    /* Seq 1 arrived though the spool dropped it: it is no loss. */
    pthread_mutex_lock(&mu);
    assert_int_equal(fakes[0].got[1], 1);
    pthread_mutex_unlock(&mu);
    for (uint64_t q = 2; q <= st.dropped + 1; q++)
        assert_int_equal(fakes[0].got[q], 0);
    for (uint64_t q = st.dropped + 2; q <= 4001; q++)
        assert_int_equal(fakes[0].got[q], 1);
    metrics_loop_turn(f->sp, 1, util_mono_us());
    {
        char line[128];

        snprintf(line, sizeof(line),
                 "sextant_agent_spool_dropped_events_total %llu",
                 (unsigned long long)st.dropped);
        assert_metric(line);
        snprintf(line, sizeof(line), "sextant_agent_events_dropped_total "
                 "%llu", (unsigned long long)st.dropped);
        assert_metric(line);
    }
}

/* A stop abandons a batch the spool had dropped events of: those become
 * a drop record after the last events, which then goes in a batch of its
 * own; every dropped event is counted once. */
static void test_late_drop_record_ships_alone(void **state)
{
    struct fx *f = *state;
    struct spool_stats st;
    uint64_t told = 0, before;
    unsigned n;

    assert_int_equal(spool_set_max_bytes(f->sp, SPOOL_MIN_MAX_BYTES), 0);
    set_reply(0, REPLY_STATUS, 503, NULL);
    for (int i = 0; i < 4; i++)
        append_named(f->sp, 500, "a-longer-target-name-for-bytes");
    assert_int_equal(ship(f), 1);           /* all of it, and R1; fails */
    append_named(f->sp, 300, "a-longer-target-name-for-bytes");
    assert_int_equal(spool_stats(f->sp, &st), 0);
    before = st.dropped;                    /* R1 only: 300 tentative */
    shipper_abort(f->sh, f->multi);         /* the agent stops */
    assert_int_equal(spool_stats(f->sp, &st), 0);
    assert_int_equal(st.dropped, before + 300);
    set_reply(0, REPLY_ACK, 0, NULL);
    ship_all(f);
    assert_int_equal(spooled(f->sp), 0);
    n = requests(0);
    assert_int_equal(n, 3);
    assert_true(fakes[0].req[1].n_events > 0);
    assert_int_equal(fakes[0].req[1].drops.count, before);
    assert_int_equal(fakes[0].req[1].oldest_seq,
                     fakes[0].req[2].drops.first_seq);
    assert_int_equal(fakes[0].req[2].n_events, 0);
    assert_int_equal(fakes[0].req[2].drops.count, 300);
    assert_int_equal(fakes[0].req[2].oldest_seq,
                     fakes[0].req[2].drops.last_seq + 1);
    for (unsigned i = 1; i < n; i++)
        told += fakes[0].req[i].drops.count;
    assert_int_equal(told, st.dropped);
    /* Survivors: everything above the later record, each once. */
    assert_int_equal(fakes[0].req[2].drops.last_seq, st.dropped);
    assert_got_exactly(0, st.dropped + 1, 2300);
    assert_true(shipper_drained(f->sh));
}

/* -- fan-out -- */

static void test_two_collectors_each_get_everything(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 40);
    assert_int_equal(ship(f), 2);           /* both at once */
    append_n(f->sp, 10);
    ship_all(f);
    assert_got_exactly(0, 1, 50);
    assert_got_exactly(1, 1, 50);
    assert_string_equal(fakes[1].auth, "Bearer tok-bbbbbbbbbbbbbbbb");
    assert_int_equal(spooled(f->sp), 0);
}

static void test_one_collector_down_holds_the_spool_not_the_other(void **s)
{
    struct fx *f = *s;
    unsigned port_b = fakes[1].port;

    fake_stop(1);
    for (int round = 0; round < 3; round++) {
        append_n(f->sp, 10);
        shipper_retry_now(f->sh);
        ship(f);
    }
    /* a has all 30; b has none, so the spool keeps all 30. */
    assert_got_exactly(0, 1, 30);
    assert_int_equal(spooled(f->sp), 30);
    /* Yet what it holds for a is each new batch only: what b lacks is
     * not a's backlog. */
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(fakes[0].req[i].spool_events, 10);
    assert_true(shipper_failures(f->sh) >= 3);
    assert_false(shipper_drained(f->sh));
    {
        char line[256];

        snprintf(line, sizeof(line), "sextant_agent_collector_batches_"
                 "shipped_total{collector=\"%s\"} 3", f->ingest[0]);
        assert_metric(line);
        snprintf(line, sizeof(line), "sextant_agent_collector_failures"
                 "{collector=\"%s\"} 3", f->ingest[1]);
        assert_metric(line);
    }
    /* b comes back on its port and gets everything, once; a nothing new. */
    assert_int_equal(fake_start(1, port_b), 0);
    ship_all(f);
    assert_got_exactly(1, 1, 30);
    assert_int_equal(fakes[1].req[fakes[1].n_req - 1].spool_events,
                     fakes[1].req[fakes[1].n_req - 1].n_events);
    assert_got_exactly(0, 1, 30);
    assert_int_equal(spooled(f->sp), 0);
    assert_int_equal(shipper_failures(f->sh), 0);
}

/* A stop (flush mode) does not wait for a collector that fails. */
static void test_settled_when_the_down_collector_failed_once(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 5);
    fake_stop(1);
    shipper_flush(f->sh, 1);
    assert_false(shipper_settled(f->sh));
    ship(f);
    ship(f);
    assert_true(shipper_settled(f->sh));
    assert_false(shipper_drained(f->sh));
    assert_got_exactly(0, 1, 5);
    assert_int_equal(spooled(f->sp), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T2(fn) cmocka_unit_test_setup_teardown(fn, setup2, teardown)
        T(test_batch_carries_headers_auth_and_events),
        T(test_ack_empties_the_spool),
        T(test_next_batch_reports_rtt_and_continues_seq),
        T(test_200_acks_the_whole_batch_whatever_its_watermark),
        T(test_batch_closes_at_max_events),
        T(test_batch_never_holds_more_than_the_wire_cap),
        T(test_batch_closes_at_max_bytes),
        T(test_batch_closes_at_max_age),
        T(test_backlog_alternates_newest_and_oldest),
        T(test_drops_reach_the_collector_once),
        T(test_late_drop_record_ships_alone),
        T2(test_two_collectors_each_get_everything),
        T2(test_one_collector_down_holds_the_spool_not_the_other),
        T2(test_settled_when_the_down_collector_failed_once),
#undef T
#undef T2
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
