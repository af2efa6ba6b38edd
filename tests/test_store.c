/* test_store.c -- the collector store (collector/store*.c) on a real
 * SQLite file, or as collector_store@pg on a real PostgreSQL
 * (store_test.h's PostgreSQL mode): a timeline whose rows would pass the
 * reply cap stops at a whole row, marked truncated, instead of failing;
 * the clock offset filter, with the receive times chosen, so every
 * estimate is exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_test.h"
#include "util.h"

#define N_EVENTS  3000
#define TEXT_LEN  8192              /* 6 bytes of JSON each (an escape) */

static void test_timeline_over_the_cap_is_truncated_not_failed(void **state)
{
    char dir[] = "/tmp/sextant-store-XXXXXX", path[256];
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Failover fo = SEXTANT__V1__FAILOVER__INIT;
    Sextant__V1__Event *evs, **evp;
    struct store_timeline_query q;
    struct store_options o;
    struct store *st = NULL;
    char *text, *json = NULL;
    int64_t t0 = util_now_ms() - 60000;
    uint64_t acked = 0;
    size_t len = 0;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/c.db", dir);
    /* Rendering 72 MB of JSON takes seconds under ASan on a busy
     * machine: what is tested is the cap, not the query deadline. */
    store_options_default(&o);
    o.query_ms = 3600 * 1000;
    store_test_options(path, &o);
    assert_int_equal(store_open(path, &o, &st), 0);
    text = malloc(TEXT_LEN + 1);
    evs = calloc(N_EVENTS, sizeof(*evs));
    evp = calloc(N_EVENTS, sizeof(*evp));
    assert_true(text && evs && evp);
    memset(text, 0x01, TEXT_LEN);
    text[TEXT_LEN] = '\0';
    fo.kind = "drill";
    fo.text = text;
    for (size_t i = 0; i < N_EVENTS; i++) {
        sextant__v1__event__init(&evs[i]);
        evs[i].seq = i + 1;
        evs[i].unix_ms = t0 + (int64_t)i;
        evs[i].kind_case = SEXTANT__V1__EVENT__KIND_FAILOVER;
        evs[i].failover = &fo;
        evp[i] = &evs[i];
    }
    b.cluster = "c";
    b.region = "r";
    b.node = "n";
    b.epoch = 7;
    b.first_seq = 1;
    b.n_events = N_EVENTS;
    b.events = evp;
    assert_int_equal(store_test_ingest(st, &b, util_now_ms(), &acked), 0);
    assert_int_equal(acked, N_EVENTS);

    memset(&q, 0, sizeof(q));
    q.from_ms = t0;
    q.to_ms = t0 + N_EVENTS;
    q.limit = STORE_TIMELINE_MAX_LIMIT;
    assert_int_equal(store_timeline(st, &q, &json, &len), 0);
    assert_true(len <= (64u << 20) + 64);
    assert_non_null(strstr(json, "\"truncated\":true"));
    assert_null(strstr(json, "\"count\":3000,"));
    assert_int_equal(json[len - 1], '}');
    free(json);

    store_close(st);
    free(text);
    free(evs);
    free(evp);
    store_test_remove(dir, path);
}

/* Stores one batch of node "n" with one event @seq, received at @recv_ms,
 * sent @behind_ms earlier by the agent's clock, with previous RTT @rtt. */
static void clock_batch(struct store *st, uint64_t seq, int64_t recv_ms,
                        int64_t behind_ms, uint32_t rtt_us)
{
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT, *evp = &ev;
    Sextant__V1__Failover fo = SEXTANT__V1__FAILOVER__INIT;
    uint64_t acked = 0;

    fo.kind = "drill";
    fo.text = "";
    ev.seq = seq;
    ev.unix_ms = recv_ms - behind_ms;
    ev.kind_case = SEXTANT__V1__EVENT__KIND_FAILOVER;
    ev.failover = &fo;
    b.cluster = "c";
    b.region = "r";
    b.node = "n";
    b.epoch = 7;
    b.first_seq = seq;
    b.n_events = 1;
    b.events = &evp;
    b.sent_unix_ms = recv_ms - behind_ms;
    b.prev_rtt_us = rtt_us;
    assert_int_equal(store_test_ingest(st, &b, recv_ms, &acked), 0);
    assert_int_equal(acked, seq);
}

/* The agent's estimate in ms, or -1 for none (NULL). */
static double clock_offset(const char *path)
{
    char *row = store_test_rows(path, "SELECT clock_offset_ms FROM agents",
                                NULL);
    double v = -2;

    if (row[0])
        v = row[0] == '\n' ? -1 : strtod(row, NULL);
    free(row);
    return v;
}

/* A store on @path with the default options. */
static struct store *open_default(const char *path)
{
    struct store_options o;
    struct store *st = NULL;

    store_options_default(&o);
    store_test_options(path, &o);
    assert_int_equal(store_open(path, &o, &st), 0);
    return st;
}

static void test_clock_offset_skips_absurd_rtts_and_spikes_and_follows_a_step(
    void **state)
{
    char dir[] = "/tmp/sextant-store-XXXXXX", path[256];
    struct store *st = NULL;
    int64_t t = util_now_ms() - 3600000;
    uint64_t seq = 0;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/c.db", dir);
    st = open_default(path);

    /* Round trips over 10 s are no sample: still no estimate. */
    clock_batch(st, ++seq, t += 1000, 30000, UINT32_MAX);
    clock_batch(st, ++seq, t += 1000, 30000, 10000001);
    assert_true(clock_offset(path) == -1);
    /* 30 s behind, RTT 20 ms: 30000 - 10. */
    for (int i = 0; i < 4; i++)
        clock_batch(st, ++seq, t += 1000, 30000, 20000);
    assert_true(clock_offset(path) == 29990);
    clock_batch(st, ++seq, t += 1000, 30000, UINT32_MAX);
    assert_true(clock_offset(path) == 29990);
    /* A spike with the smallest RTT: far from the median, not chosen. */
    clock_batch(st, ++seq, t += 1000, -60000, 2000);
    assert_true(clock_offset(path) == 29990);
    /* A step to 120 s behind: followed once most of the window agrees;
     * four of eight samples are not most of it yet, five are. */
    for (int i = 0; i < 4; i++)
        clock_batch(st, ++seq, t += 1000, 120000, 20000);
    assert_true(clock_offset(path) == 29990);
    clock_batch(st, ++seq, t += 1000, 120000, 20000);
    assert_true(clock_offset(path) == 119990);
    /* Of consistent samples, the smallest RTT. */
    clock_batch(st, ++seq, t += 1000, 120000, 2000);
    assert_true(clock_offset(path) == 119999);
    /* The window outlives a restart: a spike is still a spike. */
    store_close(st);
    st = open_default(path);
    clock_batch(st, ++seq, t += 1000, -60000, 1000);
    assert_true(clock_offset(path) == 119999);
    /* A step down needs the same majority as a step up: in a clean
     * window of 8, four samples of a new offset are half of it, not most
     * of it; five are. */
    for (int i = 0; i < 8; i++)
        clock_batch(st, ++seq, t += 1000, 120000, 20000);
    assert_true(clock_offset(path) == 119990);
    for (int i = 0; i < 4; i++)
        clock_batch(st, ++seq, t += 1000, 60000, 20000);
    assert_true(clock_offset(path) == 119990);
    clock_batch(st, ++seq, t += 1000, 60000, 20000);
    assert_true(clock_offset(path) == 59990);

    store_close(st);
    store_test_remove(dir, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeline_over_the_cap_is_truncated_not_failed),
        cmocka_unit_test(
            test_clock_offset_skips_absurd_rtts_and_spikes_and_follows_a_step),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
