/* test_store.c -- collector/store.c on a real SQLite file: a timeline
 * whose rows would pass the reply cap stops at a whole row, marked
 * truncated, instead of failing. */
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
#include "util.h"

#define N_EVENTS  3000
#define TEXT_LEN  8192              /* 6 bytes of JSON each (an escape) */

static void test_timeline_over_the_cap_is_truncated_not_failed(void **state)
{
    char dir[] = "/tmp/sextant-store-XXXXXX", path[256], wal[300];
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Failover fo = SEXTANT__V1__FAILOVER__INIT;
    Sextant__V1__Event *evs, **evp;
    struct store_timeline_query q;
    struct store *st = NULL;
    char *text, *json = NULL;
    int64_t t0 = util_now_ms() - 60000;
    uint64_t acked = 0;
    size_t len = 0;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/c.db", dir);
    assert_int_equal(store_open(path, NULL, &st), 0);
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
    assert_int_equal(store_ingest(st, &b, util_now_ms(), &acked), 0);
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
    unlink(path);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", path);
    unlink(wal);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeline_over_the_cap_is_truncated_not_failed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
