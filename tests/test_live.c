/* test_live.c -- the collector's live node list for `probers: N`
 * (collector/live.c), alone: what an Ack gets for what the batch holds,
 * the window, a new node showing at once, and clusters kept apart. Times
 * are given, not read: no clock, no threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hrw.h"
#include "live.h"

#define T0 1800000000000LL

static struct collector_cluster clusters[2] = {
    { .name = "c1", .probers_window_ms = 5000 },
    { .name = "c2", .probers_window_ms = 5000 },
};
static struct collector_config cfg = { .clusters = clusters,
                                       .n_clusters = 2 };

/* live_reply for @node of cluster @c holding @held at @t: the Ack's list
 * hash, and its list (comma-joined, "" none) in @list. */
static uint64_t reply(struct live *lv, int c, const char *node,
                      uint64_t held, int64_t t, char *list, size_t len)
{
    Sextant__V1__Ack ack = SEXTANT__V1__ACK__INIT;
    char **names = NULL;

    assert_int_equal(live_reply(lv, &clusters[c], node, held, t, &ack,
                                &names), 0);
    list[0] = '\0';
    for (size_t i = 0; i < ack.n_live_nodes; i++) {
        if (i > 0)
            strncat(list, ",", len - strlen(list) - 1);
        strncat(list, ack.live_nodes[i], len - strlen(list) - 1);
    }
    free(names);
    return ack.live_nodes_hash;
}

static void test_a_batch_that_wants_no_list_gets_none(void **state)
{
    struct live *lv;
    char list[256];

    (void)state;
    assert_int_equal(live_new(&cfg, &lv), 0);
    assert_int_equal(reply(lv, 0, "a", 0, T0, list, sizeof(list)), 0);
    assert_string_equal(list, "");
    live_free(lv);
}

static void test_list_is_sorted_sent_once_and_kept_per_cluster(void **state)
{
    struct live *lv;
    char list[256];
    uint64_t h;

    (void)state;
    assert_int_equal(live_new(&cfg, &lv), 0);
    reply(lv, 0, "b", 0, T0, list, sizeof(list));
    reply(lv, 1, "x", 0, T0, list, sizeof(list));
    h = reply(lv, 0, "a", HRW_NO_LIST, T0 + 1, list, sizeof(list));
    assert_string_equal(list, "a,b");           /* not c2's x */
    /* Holding that list: the hash again, no list. */
    assert_true(reply(lv, 0, "b", h, T0 + 2, list, sizeof(list)) == h);
    assert_string_equal(list, "");
    /* A new node shows at once, and the holders get the new list. */
    reply(lv, 0, "c", 0, T0 + 3, list, sizeof(list));
    assert_true(reply(lv, 0, "a", h, T0 + 4, list, sizeof(list)) != h);
    assert_string_equal(list, "a,b,c");
    live_free(lv);
}

static void test_a_silent_node_leaves_after_the_window(void **state)
{
    struct live *lv;
    char list[256];

    (void)state;
    assert_int_equal(live_new(&cfg, &lv), 0);
    reply(lv, 0, "gone", 0, T0, list, sizeof(list));
    reply(lv, 0, "a", HRW_NO_LIST, T0 + 5000, list, sizeof(list));
    assert_string_equal(list, "a,gone");        /* 5 s: still in */
    reply(lv, 0, "a", HRW_NO_LIST, T0 + 6001, list, sizeof(list));
    assert_string_equal(list, "a");
    live_free(lv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_batch_that_wants_no_list_gets_none),
        cmocka_unit_test(test_list_is_sorted_sent_once_and_kept_per_cluster),
        cmocka_unit_test(test_a_silent_node_leaves_after_the_window),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
