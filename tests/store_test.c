/* store_test.c -- submit-and-wait over the store, for its unit tests: a
 * waiter of our own (mutex, condition variable on CLOCK_MONOTONIC) that
 * the writer's done call signals. */
#include "store_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "store_priv.h"

struct store_test_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* CLOCK_MONOTONIC */
    int done, rc;
    uint64_t acked;
};

/* A helper has no test to fail: a call that does not return 0 aborts. */
static void store_test_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "store_test: %s: %d\n", what, rc);
        abort();
    }
}

static void store_test_init(struct store_test_waiter *w)
{
    pthread_condattr_t ca;

    store_test_check(pthread_mutex_init(&w->lock, NULL),
                     "pthread_mutex_init");
    store_test_check(pthread_condattr_init(&ca), "pthread_condattr_init");
    store_test_check(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC),
                     "pthread_condattr_setclock");
    store_test_check(pthread_cond_init(&w->cond, &ca), "pthread_cond_init");
    pthread_condattr_destroy(&ca);
    w->done = 0;
    w->rc = 0;
    w->acked = 0;
}

static void store_test_done(void *ctx, int rc, uint64_t acked)
{
    struct store_test_waiter *w = ctx;

    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->acked = acked;
    w->done = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Waits for the done call, up to STORE_TEST_WAIT_MS: its rc. Past the
 * deadline the writer is hung: abort, since the job still holds @w (on
 * our stack) and would signal it after we returned. */
static int store_test_wait(struct store_test_waiter *w)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += STORE_TEST_WAIT_MS / 1000;
    pthread_mutex_lock(&w->lock);
    while (!w->done && rc == 0)
        rc = pthread_cond_timedwait(&w->cond, &w->lock, &until);
    if (!w->done) {
        fprintf(stderr, "store_test: no answer from the writer after %d "
                "ms\n", STORE_TEST_WAIT_MS);
        abort();
    }
    rc = w->rc;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static void store_test_free(struct store_test_waiter *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

int store_test_ingest(struct store *st, const Sextant__V1__Batch *b,
                      int64_t recv_ms, uint64_t *acked_seq)
{
    struct store_test_waiter w;
    int rc;

    store_test_init(&w);
    rc = store_wait_ready(st, STORE_TEST_WAIT_MS);
    if (rc == 0)
        rc = store_submit(st, b, recv_ms, 0, store_test_done, &w);
    if (rc == 0)
        rc = store_test_wait(&w);
    if (rc == 0)
        *acked_seq = w.acked;
    store_test_free(&w);
    return rc;
}

int store_test_retention_run(struct store *st, int64_t now_ms)
{
    struct store_test_waiter w;
    int rc;

    store_test_init(&w);
    rc = store_wait_ready(st, STORE_TEST_WAIT_MS);
    if (rc == 0)
        rc = store_submit_retention(st, now_ms, store_test_done, &w);
    if (rc == 0)
        rc = store_test_wait(&w);
    store_test_free(&w);
    return rc;
}

void store_test_remove(const char *dir, const char *path)
{
    static const char *const suffix[] = { "", "-wal", "-shm" };
    char p[4096];

    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
}
