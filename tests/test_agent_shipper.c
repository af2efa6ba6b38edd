/* test_agent_shipper.c -- the shipper against a fake collector in this
 * process (libmicrohttpd on a free loopback port) whose reply each test
 * chooses: what a batch carries (headers, auth, header fields, seqs), what
 * an Ack deletes from the spool, and that every kind of failure keeps the
 * events and backs off. The real collector is tested elsewhere. */
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
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "shipper.h"
#include "spool.h"
#include "util.h"
#include "wire.h"

enum reply {
    REPLY_ACK_ALL,          /* Ack up to the batch's last seq */
    REPLY_ACK_TWO,          /* Ack only the first two events */
    REPLY_ACK_BELOW,        /* Ack below the batch: nothing stored */
    REPLY_WRONG_EPOCH,
    REPLY_401,              /* JSON error, as the collector sends */
    REPLY_HUGE,             /* 200 with 1 MiB of junk */
};

/* What the fake collector saw; guarded by mu (MHD runs its own thread). */
struct seen {
    unsigned requests;
    char path[64];
    char ctype[64];
    char cenc[64];
    char auth[128];
    int had_expect;
    char cluster[32], region[32], node[32], version[32];
    uint64_t epoch, first_seq, last_seq;
    size_t n_events;
    uint32_t prev_rtt_us;
    int64_t sent_unix_ms;
    char err[WIRE_ERR_LEN];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct seen seen;
static enum reply reply_mode;
static struct MHD_Daemon *daemon_;
static unsigned port;
static char test_dir[64], spool_path[128];

struct upload {
    uint8_t *data;
    size_t len;
};

static void copy_header(struct MHD_Connection *c, const char *name,
                        char *out, size_t out_len)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);

    snprintf(out, out_len, "%s", v ? v : "");
}

/* Decodes the batch and records it; fills @ack for the chosen reply. */
static void take_batch(const struct upload *u, Sextant__V1__Ack *ack)
{
    Sextant__V1__Batch *b = NULL;

    if (wire_batch_decode(u->data, u->len, WIRE_MAX_RAW, &b, seen.err,
                          sizeof(seen.err)) < 0)
        return;
    snprintf(seen.cluster, sizeof(seen.cluster), "%s", b->cluster);
    snprintf(seen.region, sizeof(seen.region), "%s", b->region);
    snprintf(seen.node, sizeof(seen.node), "%s", b->node);
    snprintf(seen.version, sizeof(seen.version), "%s", b->agent_version);
    seen.epoch = b->epoch;
    seen.first_seq = b->first_seq;
    seen.n_events = b->n_events;
    seen.last_seq = b->n_events ? b->events[b->n_events - 1]->seq : 0;
    seen.prev_rtt_us = b->prev_rtt_us;
    seen.sent_unix_ms = b->sent_unix_ms;
    ack->epoch = b->epoch;
    ack->acked_seq = seen.last_seq;
    if (reply_mode == REPLY_ACK_TWO)
        ack->acked_seq = b->first_seq + 1;
    else if (reply_mode == REPLY_ACK_BELOW)
        ack->acked_seq = b->first_seq - 1;
    else if (reply_mode == REPLY_WRONG_EPOCH)
        ack->epoch = b->epoch + 1;
    wire_batch_free(b);
}

static enum MHD_Result fake_collector(void *cls, struct MHD_Connection *c,
                                      const char *url, const char *method,
                                      const char *version, const char *data,
                                      size_t *data_len, void **con_cls)
{
    static const char json401[] = "{\"error\":\"unauthorized\",\"detail\":"
                                  "\"bad token\"}";
    Sextant__V1__Ack ack = SEXTANT__V1__ACK__INIT;
    struct upload *u = *con_cls;
    struct MHD_Response *r;
    enum MHD_Result ret;
    uint8_t *out = NULL;
    size_t out_len = 0;
    unsigned status = 200;

    (void)cls; (void)method; (void)version;
    if (!u) {
        u = calloc(1, sizeof(*u));
        *con_cls = u;
        return u ? MHD_YES : MHD_NO;
    }
    if (*data_len) {
        uint8_t *nd = realloc(u->data, u->len + *data_len);
        if (!nd)
            return MHD_NO;
        memcpy(nd + u->len, data, *data_len);
        u->data = nd;
        u->len += *data_len;
        *data_len = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&mu);
    seen.requests++;
    snprintf(seen.path, sizeof(seen.path), "%s", url);
    copy_header(c, "Content-Type", seen.ctype, sizeof(seen.ctype));
    copy_header(c, "Content-Encoding", seen.cenc, sizeof(seen.cenc));
    copy_header(c, "Authorization", seen.auth, sizeof(seen.auth));
    seen.had_expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "Expect") != NULL;
    take_batch(u, &ack);
    pthread_mutex_unlock(&mu);
    if (reply_mode == REPLY_401) {
        status = 401;
        r = MHD_create_response_from_buffer(sizeof(json401) - 1,
                                            (void *)json401,
                                            MHD_RESPMEM_PERSISTENT);
    } else if (reply_mode == REPLY_HUGE) {
        out = calloc(1, 1u << 20);
        if (!out)
            return MHD_NO;
        r = MHD_create_response_from_buffer(1u << 20, out,
                                            MHD_RESPMEM_MUST_FREE);
    } else {
        if (wire_ack_encode(&ack, &out, &out_len) < 0)
            return MHD_NO;
        r = MHD_create_response_from_buffer(out_len, out,
                                            MHD_RESPMEM_MUST_COPY);
        free(out);
    }
    if (!r)
        return MHD_NO;
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void fake_done(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct upload *u = *con_cls;

    (void)cls; (void)c; (void)toe;
    if (u) {
        free(u->data);
        free(u);
        *con_cls = NULL;
    }
}

static int group_setup(void **state)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    const union MHD_DaemonInfo *info;

    (void)state;
    log_set_level(LOGL_ERROR);              /* failures here are on purpose */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    snprintf(test_dir, sizeof(test_dir), "/tmp/test_agent_shipper.XXXXXX");
    if (!mkdtemp(test_dir))
        return -1;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);     /* port 0: any free */
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                               MHD_USE_ERROR_LOG, 0, NULL, NULL,
                               fake_collector, NULL,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                               MHD_OPTION_NOTIFY_COMPLETED, fake_done, NULL,
                               MHD_OPTION_END);
    if (!daemon_)
        return -1;
    info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port = info ? info->port : 0;
    return port ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(daemon_);
    rmdir(test_dir);
    curl_global_cleanup();
    return 0;
}

/* Per test: a fresh spool, a config pointing at the fake, a multi. */
struct fx {
    struct agent_config cfg;
    char ingest[128];
    struct spool *sp;
    struct shipper *sh;
    CURLM *multi;
};

static int setup(void **state)
{
    static unsigned n;
    struct fx *f = calloc(1, sizeof(*f));
    char err[SPOOL_ERR_LEN];

    if (!f)
        return -1;
    snprintf(spool_path, sizeof(spool_path), "%s/spool-%u.db", test_dir,
             ++n);
    snprintf(f->ingest, sizeof(f->ingest), "http://127.0.0.1:%u/v1/ingest",
             port);
    f->cfg.cluster = strdup("test");
    f->cfg.region = strdup("eu-west-1");
    f->cfg.node = strdup("node-1");
    f->cfg.token = strdup("tok-0123456789abcdef");
    f->cfg.ingest_url = f->ingest;
    if (spool_open(spool_path, &f->sp, err, sizeof(err)) < 0)
        return -1;
    f->multi = curl_multi_init();
    if (!f->multi || shipper_new(&f->cfg, f->sp, &f->sh) < 0)
        return -1;
    pthread_mutex_lock(&mu);
    memset(&seen, 0, sizeof(seen));
    reply_mode = REPLY_ACK_ALL;
    pthread_mutex_unlock(&mu);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[160];

    shipper_free(f->sh, f->multi);
    curl_multi_cleanup(f->multi);
    spool_close(f->sp);
    f->cfg.ingest_url = NULL;               /* not ours to free */
    agent_config_free(&f->cfg);
    free(f);
    unlink(spool_path);
    snprintf(p, sizeof(p), "%s-wal", spool_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", spool_path);
    unlink(p);
    return 0;
}

static void append_n(struct spool *sp, size_t n)
{
    Sextant__V1__Event e = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__ProbeResult pr = SEXTANT__V1__PROBE_RESULT__INIT;
    Sextant__V1__Event *evs[500];
    Sextant__V1__Event batch[500];
    char name[] = "web";

    pr.target = name;
    pr.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    pr.ok = 1;
    pr.status = 200;
    e.kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    e.probe = &pr;
    while (n > 0) {
        size_t k = n < 500 ? n : 500;

        for (size_t i = 0; i < k; i++) {
            batch[i] = e;
            evs[i] = &batch[i];
        }
        assert_int_equal(spool_append_many(sp, evs, k), 0);
        n -= k;
    }
}

static uint64_t spooled(struct spool *sp)
{
    uint64_t n = 0;

    assert_int_equal(spool_count(sp, &n), 0);
    return n;
}

/* Polls the shipper and drives curl until its batch is done (10 s max);
 * returns 1 if a batch went out, 0 if the poll started none. */
static int ship(struct fx *f)
{
    int64_t until = util_mono_us() + 10000000;
    unsigned before;

    pthread_mutex_lock(&mu);
    before = seen.requests;
    pthread_mutex_unlock(&mu);
    shipper_poll(f->sh, f->multi, util_mono_us());
    for (;;) {
        int still, q;
        CURLMsg *m;

        assert_int_equal(curl_multi_perform(f->multi, &still), CURLM_OK);
        m = curl_multi_info_read(f->multi, &q);
        if (m && m->msg == CURLMSG_DONE) {
            assert_true(shipper_owns(f->sh, m->easy_handle));
            shipper_done(f->sh, f->multi, m->data.result, util_mono_us());
            return 1;
        }
        if (still == 0) {
            pthread_mutex_lock(&mu);
            assert_int_equal(seen.requests, before);
            pthread_mutex_unlock(&mu);
            return 0;
        }
        assert_true(util_mono_us() < until);
        assert_int_equal(curl_multi_poll(f->multi, NULL, 0, 100, NULL),
                         CURLM_OK);
    }
}

static void test_batch_carries_headers_auth_and_events(void **state)
{
    struct fx *f = *state;
    int64_t before = util_now_ms();

    append_n(f->sp, 3);
    assert_int_equal(ship(f), 1);
    assert_string_equal(seen.err, "");
    assert_string_equal(seen.path, "/v1/ingest");
    assert_string_equal(seen.ctype, "application/x-protobuf");
    assert_string_equal(seen.cenc, "deflate");
    assert_string_equal(seen.auth, "Bearer tok-0123456789abcdef");
    assert_false(seen.had_expect);
    assert_string_equal(seen.cluster, "test");
    assert_string_equal(seen.region, "eu-west-1");
    assert_string_equal(seen.node, "node-1");
    assert_string_equal(seen.version, SEXTANT_VERSION);
    assert_int_equal(seen.epoch, spool_epoch(f->sp));
    assert_int_equal(seen.first_seq, 1);
    assert_int_equal(seen.last_seq, 3);
    assert_int_equal(seen.n_events, 3);
    assert_int_equal(seen.prev_rtt_us, 0);  /* no shipment before */
    assert_true(seen.sent_unix_ms >= before &&
                seen.sent_unix_ms <= util_now_ms());
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
    assert_int_equal(seen.requests, 1);
}

static void test_next_batch_reports_rtt_and_continues_seq(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 2);
    assert_int_equal(ship(f), 1);
    append_n(f->sp, 2);
    assert_int_equal(ship(f), 1);
    assert_int_equal(seen.first_seq, 3);
    assert_int_equal(seen.last_seq, 4);
    assert_true(seen.prev_rtt_us > 0);
    assert_int_equal(spooled(f->sp), 0);
}

static void test_partial_ack_deletes_only_what_it_covers(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 5);
    reply_mode = REPLY_ACK_TWO;
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 3);
    assert_int_equal(shipper_failures(f->sh), 0);
    reply_mode = REPLY_ACK_ALL;
    assert_int_equal(ship(f), 1);           /* the rest, at once */
    assert_int_equal(seen.first_seq, 3);
    assert_int_equal(spooled(f->sp), 0);
}

static void test_error_reply_keeps_events_and_backs_off(void **state)
{
    struct fx *f = *state;
    int64_t now;
    long w;

    append_n(f->sp, 3);
    reply_mode = REPLY_401;
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 3);
    assert_int_equal(shipper_failures(f->sh), 1);
    assert_false(shipper_drained(f->sh));
    now = util_mono_us();
    w = shipper_wait_ms(f->sh, now);
    assert_true(w > 800 && w <= 1000);
    assert_int_equal(ship(f), 0);           /* still backing off */
    shipper_retry_now(f->sh);
    assert_int_equal(ship(f), 1);
    assert_int_equal(shipper_failures(f->sh), 2);
    w = shipper_wait_ms(f->sh, util_mono_us());
    assert_true(w > 1800 && w <= 2000);     /* doubled */
    reply_mode = REPLY_ACK_ALL;
    shipper_retry_now(f->sh);
    assert_int_equal(ship(f), 1);
    assert_int_equal(shipper_failures(f->sh), 0);
    assert_int_equal(shipper_wait_ms(f->sh, util_mono_us()), -1);
    assert_int_equal(spooled(f->sp), 0);
}

static void test_ack_for_another_epoch_deletes_nothing(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 3);
    reply_mode = REPLY_WRONG_EPOCH;
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 3);
    assert_int_equal(shipper_failures(f->sh), 1);
}

static void test_ack_below_the_batch_is_a_failure(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, 3);
    reply_mode = REPLY_ACK_BELOW;
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 3);
    assert_int_equal(shipper_failures(f->sh), 1);
}

static void test_unreachable_collector_is_a_failure(void **state)
{
    struct fx *f = *state;
    struct shipper *sh2;

    append_n(f->sp, 1);
    /* Port 1 on loopback: nothing listens there. */
    snprintf(f->ingest, sizeof(f->ingest), "http://127.0.0.1:1/v1/ingest");
    assert_int_equal(shipper_new(&f->cfg, f->sp, &sh2), 0);
    shipper_free(f->sh, f->multi);
    f->sh = sh2;
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 1);
    assert_int_equal(shipper_failures(f->sh), 1);
}

static void test_oversized_reply_is_cut_and_a_failure(void **state)
{
    struct fx *f = *state;
    int64_t t0 = util_mono_us();

    append_n(f->sp, 2);
    reply_mode = REPLY_HUGE;
    assert_int_equal(ship(f), 1);
    assert_int_equal(spooled(f->sp), 2);
    assert_int_equal(shipper_failures(f->sh), 1);
    assert_true(util_mono_us() - t0 < 5000000);
}

static void test_batches_are_capped_at_5000_events(void **state)
{
    struct fx *f = *state;

    append_n(f->sp, SHIPPER_MAX_EVENTS + 700);
    assert_int_equal(ship(f), 1);
    assert_int_equal(seen.n_events, SHIPPER_MAX_EVENTS);
    assert_int_equal(spooled(f->sp), 700);
    assert_int_equal(ship(f), 1);
    assert_int_equal(seen.n_events, 700);
    assert_int_equal(seen.first_seq, SHIPPER_MAX_EVENTS + 1);
    assert_int_equal(spooled(f->sp), 0);
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
        T(test_batch_carries_headers_auth_and_events),
        T(test_ack_empties_the_spool),
        T(test_next_batch_reports_rtt_and_continues_seq),
        T(test_partial_ack_deletes_only_what_it_covers),
        T(test_error_reply_keeps_events_and_backs_off),
        T(test_ack_for_another_epoch_deletes_nothing),
        T(test_ack_below_the_batch_is_a_failure),
        T(test_unreachable_collector_is_a_failure),
        T(test_oversized_reply_is_cut_and_a_failure),
        T(test_batches_are_capped_at_5000_events),
        T(test_abort_keeps_the_batch_in_the_spool),
#undef T
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
