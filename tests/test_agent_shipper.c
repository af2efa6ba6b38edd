/* test_agent_shipper.c -- the shipper against fake collectors in this
 * process (libmicrohttpd on free loopback ports), each replying as the
 * test chooses: what a batch carries (headers, auth, header fields, seqs,
 * oldest_seq, drops), when a batch closes (count, bytes, age, flush), how
 * failures back off (full jitter within its bounds, Retry-After as
 * seconds or a date), what 400/413 do (dead letter, the stream goes on),
 * 401 (retried), fan-out to two collectors with one down, and the
 * newest/oldest alternation on a backlog. Counts are exact; timing checks
 * only ever assert a lower bound the code promises (a retry not before
 * Retry-After), never that the machine is fast. The real collector is
 * tested elsewhere. */
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

enum reply {
    REPLY_ACK,              /* Ack with the batch's last seq */
    REPLY_ACK_BELOW,        /* 200, Ack whose watermark is below the batch */
    REPLY_WRONG_EPOCH,
    REPLY_STATUS,           /* fake->status, JSON error, maybe Retry-After */
    REPLY_STATUS_ONCE,      /* fake->status for the next request, then Ack */
    REPLY_HUGE,             /* 200 with 1 MiB of junk */
};

#define MAX_REQ  256
#define MAX_SEQ  4096

/* One request as the fake collector saw it. */
struct req {
    uint64_t first_seq, last_seq, oldest_seq;
    size_t n_events;
    size_t raw_bytes;       /* packed events in it */
    Sextant__V1__Drops drops;
    int64_t at_us;          /* util_mono_us() on arrival */
    unsigned status;        /* what it was answered */
};

/* A fake collector; everything below mu is guarded by it (MHD runs its
 * own thread per daemon). */
struct fake {
    struct MHD_Daemon *d;
    unsigned port;
    enum reply mode;
    unsigned status;
    char retry_after[64];   /* "" for none */
    unsigned n_req;
    struct req req[MAX_REQ];
    unsigned got[MAX_SEQ];  /* times each seq arrived in a stored batch */
    char path[64], ctype[64], cenc[64], auth[128];
    int had_expect;
    char cluster[32], region[32], node[32], version[32];
    uint64_t epoch;
    uint32_t prev_rtt_us;
    int64_t sent_unix_ms;
    char err[WIRE_ERR_LEN];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct fake fakes[2];
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

/* Decodes and records the batch; fills @ack for the chosen reply; returns
 * the status to answer. Called with mu held. */
static unsigned take_batch(struct fake *fk, const struct upload *u,
                           Sextant__V1__Ack *ack)
{
    Sextant__V1__Batch *b = NULL;
    struct req *r = &fk->req[fk->n_req < MAX_REQ ? fk->n_req : MAX_REQ - 1];
    unsigned status = 200;

    memset(r, 0, sizeof(*r));
    r->at_us = util_mono_us();
    fk->n_req++;
    if (fk->mode == REPLY_STATUS || fk->mode == REPLY_STATUS_ONCE)
        status = fk->status;
    if (fk->mode == REPLY_STATUS_ONCE)
        fk->mode = REPLY_ACK;
    r->status = status;
    if (wire_batch_decode(u->data, u->len, WIRE_MAX_RAW, &b, fk->err,
                          sizeof(fk->err)) < 0)
        return 400;
    snprintf(fk->cluster, sizeof(fk->cluster), "%s", b->cluster);
    snprintf(fk->region, sizeof(fk->region), "%s", b->region);
    snprintf(fk->node, sizeof(fk->node), "%s", b->node);
    snprintf(fk->version, sizeof(fk->version), "%s", b->agent_version);
    fk->epoch = b->epoch;
    fk->prev_rtt_us = b->prev_rtt_us;
    fk->sent_unix_ms = b->sent_unix_ms;
    r->first_seq = b->first_seq;
    r->oldest_seq = b->oldest_seq;
    r->n_events = b->n_events;
    r->last_seq = b->n_events ? b->events[b->n_events - 1]->seq : 0;
    for (size_t i = 0; i < b->n_events; i++)
        r->raw_bytes += sextant__v1__event__get_packed_size(b->events[i]);
    if (b->drops)
        r->drops = *b->drops;
    if (status == 200 && fk->mode != REPLY_WRONG_EPOCH &&
        fk->mode != REPLY_HUGE)
        for (size_t i = 0; i < b->n_events; i++)
            if (b->events[i]->seq < MAX_SEQ)
                fk->got[b->events[i]->seq]++;
    ack->epoch = b->epoch;
    ack->acked_seq = r->last_seq;
    ack->received_unix_ms = util_now_ms();
    if (fk->mode == REPLY_ACK_BELOW)
        ack->acked_seq = b->first_seq - 1;
    else if (fk->mode == REPLY_WRONG_EPOCH)
        ack->epoch = b->epoch + 1;
    wire_batch_free(b);
    return status;
}

static enum MHD_Result fake_collector(void *cls, struct MHD_Connection *c,
                                      const char *url, const char *method,
                                      const char *version, const char *data,
                                      size_t *data_len, void **con_cls)
{
    static const char json[] = "{\"error\":\"rejected\",\"detail\":"
                               "\"as the test asked\"}";
    Sextant__V1__Ack ack = SEXTANT__V1__ACK__INIT;
    struct fake *fk = cls;
    struct upload *u = *con_cls;
    struct MHD_Response *r;
    enum MHD_Result ret;
    char retry_after[64];
    uint8_t *out = NULL;
    size_t out_len = 0;
    unsigned status;
    int huge;

    (void)method; (void)version;
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
    snprintf(fk->path, sizeof(fk->path), "%s", url);
    copy_header(c, "Content-Type", fk->ctype, sizeof(fk->ctype));
    copy_header(c, "Content-Encoding", fk->cenc, sizeof(fk->cenc));
    copy_header(c, "Authorization", fk->auth, sizeof(fk->auth));
    fk->had_expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "Expect") != NULL;
    status = take_batch(fk, u, &ack);
    huge = fk->mode == REPLY_HUGE;
    snprintf(retry_after, sizeof(retry_after), "%s", fk->retry_after);
    pthread_mutex_unlock(&mu);
    if (status != 200) {
        r = MHD_create_response_from_buffer(sizeof(json) - 1, (void *)json,
                                            MHD_RESPMEM_PERSISTENT);
        if (r && retry_after[0])
            MHD_add_response_header(r, "Retry-After", retry_after);
    } else if (huge) {
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

/* Starts fake @i on @port (0: any free one, read back). */
static int fake_start(unsigned i, unsigned port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    const union MHD_DaemonInfo *info;
    struct fake *fk = &fakes[i];

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    fk->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                             MHD_USE_ERROR_LOG, 0, NULL, NULL,
                             fake_collector, fk,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                             MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
                             MHD_OPTION_NOTIFY_COMPLETED, fake_done, NULL,
                             MHD_OPTION_END);
    if (!fk->d)
        return -1;
    info = MHD_get_daemon_info(fk->d, MHD_DAEMON_INFO_BIND_PORT);
    fk->port = info ? info->port : 0;
    return fk->port ? 0 : -1;
}

static void fake_stop(unsigned i)
{
    if (fakes[i].d)
        MHD_stop_daemon(fakes[i].d);
    fakes[i].d = NULL;
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOGL_ERROR);              /* failures here are on purpose */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    snprintf(test_dir, sizeof(test_dir), "/tmp/test_agent_shipper.XXXXXX");
    if (!mkdtemp(test_dir))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rmdir(test_dir);
    curl_global_cleanup();
    return 0;
}

/* Per test: a fresh spool, fakes, a config pointing at them, a multi. */
struct fx {
    struct agent_config cfg;
    struct agent_collector coll[2];
    char ingest[2][128];
    struct spool *sp;
    struct shipper *sh;
    CURLM *multi;
};

static void fx_config(struct fx *f, size_t n_coll)
{
    f->cfg.cluster = strdup("test");
    f->cfg.region = strdup("eu-west-1");
    f->cfg.node = strdup("node-1");
    for (size_t i = 0; i < n_coll; i++) {
        snprintf(f->ingest[i], sizeof(f->ingest[i]),
                 "http://127.0.0.1:%u/v1/ingest", fakes[i].port);
        f->coll[i].url = f->ingest[i];
        f->coll[i].ingest_url = f->ingest[i];
        f->coll[i].token = i ? "tok-bbbbbbbbbbbbbbbb"
                             : "tok-0123456789abcdef";
        f->coll[i].tls.verify = 1;
    }
    f->cfg.collectors = f->coll;
    f->cfg.n_collectors = n_coll;
    /* Batches go at once unless a test says otherwise. */
    f->cfg.batch_max_events = 5000;
    f->cfg.batch_max_bytes = 1 << 20;
    f->cfg.batch_max_age_ms = 0;
    f->cfg.backoff_initial_ms = 1000;
    f->cfg.backoff_max_ms = 60000;
    f->cfg.shutdown_grace_ms = 5000;
}

static int fx_new_shipper(struct fx *f)
{
    shipper_free(f->sh, f->multi);
    f->sh = NULL;
    return shipper_new(&f->cfg, f->sp, &f->sh);
}

static int setup_n(void **state, size_t n_coll)
{
    static unsigned n;
    struct fx *f = calloc(1, sizeof(*f));
    char err[SPOOL_ERR_LEN];

    if (!f)
        return -1;
    memset(fakes, 0, sizeof(fakes));
    for (size_t i = 0; i < 2; i++)
        if (fake_start((unsigned)i, 0) < 0)
            return -1;
    snprintf(spool_path, sizeof(spool_path), "%s/spool-%u.db", test_dir,
             ++n);
    fx_config(f, n_coll);
    if (spool_open(spool_path, &f->sp, err, sizeof(err)) < 0)
        return -1;
    metrics_reset();
    f->multi = curl_multi_init();
    if (!f->multi || fx_new_shipper(f) < 0)
        return -1;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_n(state, 1);
}

static int setup2(void **state)
{
    return setup_n(state, 2);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[160];

    shipper_free(f->sh, f->multi);
    curl_multi_cleanup(f->multi);
    spool_close(f->sp);
    f->cfg.collectors = NULL;               /* not ours to free */
    f->cfg.n_collectors = 0;
    agent_config_free(&f->cfg);
    free(f);
    fake_stop(0);
    fake_stop(1);
    unlink(spool_path);
    snprintf(p, sizeof(p), "%s-wal", spool_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", spool_path);
    unlink(p);
    return 0;
}

/* Appends @n probe events of target @name. */
static void append_named(struct spool *sp, size_t n, const char *name)
{
    Sextant__V1__Event e = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__ProbeResult pr = SEXTANT__V1__PROBE_RESULT__INIT;
    Sextant__V1__Event *evs[500];
    Sextant__V1__Event batch[500];
    char buf[256];

    snprintf(buf, sizeof(buf), "%s", name);
    pr.target = buf;
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

static void append_n(struct spool *sp, size_t n)
{
    append_named(sp, n, "web");
}

static uint64_t spooled(struct spool *sp)
{
    uint64_t n = 0;

    assert_int_equal(spool_count(sp, &n), 0);
    return n;
}

static unsigned requests(unsigned i)
{
    unsigned n;

    pthread_mutex_lock(&mu);
    n = fakes[i].n_req;
    pthread_mutex_unlock(&mu);
    return n;
}

static struct req last_req(unsigned i)
{
    struct req r;

    pthread_mutex_lock(&mu);
    assert_true(fakes[i].n_req > 0);
    r = fakes[i].req[fakes[i].n_req - 1];
    pthread_mutex_unlock(&mu);
    return r;
}

/* Polls once and drives curl until every transfer that poll started is
 * done; returns how many finished. */
static int ship(struct fx *f)
{
    /* A hang, not a slow machine: a POST ends by itself after
     * SHIPPER_TIMEOUT_MS, and this is twice that. */
    int64_t until = util_mono_us() + 2 * SHIPPER_TIMEOUT_MS * 1000;
    int done = 0;

    shipper_poll(f->sh, f->multi, util_mono_us());
    for (;;) {
        int still, q;
        CURLMsg *m;

        assert_int_equal(curl_multi_perform(f->multi, &still), CURLM_OK);
        while ((m = curl_multi_info_read(f->multi, &q)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            assert_true(shipper_owns(f->sh, m->easy_handle));
            shipper_done(f->sh, f->multi, m->easy_handle, m->data.result,
                         util_mono_us());
            done++;
        }
        if (still == 0)
            return done;
        assert_true(util_mono_us() < until);
        assert_int_equal(curl_multi_poll(f->multi, NULL, 0, 100, NULL),
                         CURLM_OK);
    }
}

/* Ships, forgetting backoffs, until the shipper is drained (at most 200
 * rounds); returns the rounds it took. */
static int ship_all(struct fx *f)
{
    for (int i = 0; i < 200; i++) {
        shipper_retry_now(f->sh);
        ship(f);
        if (shipper_drained(f->sh))
            return i + 1;
    }
    fail_msg("not drained after 200 rounds");
    return -1;
}

/* Runs like the agent's loop for up to @max_ms: polls when the shipper
 * asks, hands back transfers; stops once fake @i has @want requests. */
static void run_until_requests(struct fx *f, unsigned i, unsigned want,
                               long max_ms)
{
    int64_t until = util_mono_us() + max_ms * 1000;

    while (requests(i) < want) {
        int still, q;
        long w;
        CURLMsg *m;

        assert_true(util_mono_us() < until);
        shipper_poll(f->sh, f->multi, util_mono_us());
        assert_int_equal(curl_multi_perform(f->multi, &still), CURLM_OK);
        while ((m = curl_multi_info_read(f->multi, &q)) != NULL)
            if (m->msg == CURLMSG_DONE)
                shipper_done(f->sh, f->multi, m->easy_handle,
                             m->data.result, util_mono_us());
        w = shipper_wait_ms(f->sh, util_mono_us());
        if (w < 0 || w > 50)
            w = 50;
        assert_int_equal(curl_multi_poll(f->multi, NULL, 0, (int)w, NULL),
                         CURLM_OK);
    }
}

static int64_t sql_int(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_open_v2(spool_path, &db, SQLITE_OPEN_READONLY,
                                     NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Every seq in [lo, hi] reached fake @i exactly once, and nothing else. */
static void assert_got_exactly(unsigned i, uint64_t lo, uint64_t hi)
{
    pthread_mutex_lock(&mu);
    for (uint64_t s = 1; s < MAX_SEQ; s++) {
        unsigned want = s >= lo && s <= hi ? 1 : 0;

        if (fakes[i].got[s] != want) {
            pthread_mutex_unlock(&mu);
            fail_msg("fake %u got seq %llu %u times, want %u", i,
                     (unsigned long long)s, fakes[i].got[s], want);
        }
    }
    pthread_mutex_unlock(&mu);
}

static void set_reply(unsigned i, enum reply mode, unsigned status,
                      const char *retry_after)
{
    pthread_mutex_lock(&mu);
    fakes[i].mode = mode;
    fakes[i].status = status;
    snprintf(fakes[i].retry_after, sizeof(fakes[i].retry_after), "%s",
             retry_after ? retry_after : "");
    pthread_mutex_unlock(&mu);
}

/* "name value" is a line of the rendered /metrics page. */
static void assert_metric(const char *line)
{
    static char page[METRICS_RENDER_MAX];
    char want[256];
    size_t len;

    assert_true(strlen(line) + 3 <= sizeof(want));
    assert_int_equal(metrics_render(page, sizeof(page), util_mono_us(),
                                    &len), 0);
    want[0] = '\n';
    memcpy(want + 1, line, strlen(line));
    memcpy(want + 1 + strlen(line), "\n", 2);
    if (!strstr(page, want))
        fail_msg("no line \"%s\" in:\n%s", line, page);
}

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

/* -- drain order -- */

static void test_backlog_alternates_newest_and_oldest(void **state)
{
    struct fx *f = *state;
    const uint64_t want[][3] = {    /* first, last, oldest_seq */
        { 201, 250, 1 },            /* newest */
        { 1, 50, 1 },               /* oldest */
        { 156, 255, 51 },           /* newest: the 5 live ones first */
        { 51, 100, 51 },            /* oldest */
        { 106, 155, 101 },          /* newest */
        { 101, 105, 101 },          /* what is left */
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
            r->oldest_seq != want[i][2])
            fail_msg("batch %u: seq %llu-%llu oldest %llu, want %llu-%llu "
                     "oldest %llu", i, (unsigned long long)r->first_seq,
                     (unsigned long long)r->last_seq,
                     (unsigned long long)r->oldest_seq,
                     (unsigned long long)want[i][0],
                     (unsigned long long)want[i][1],
                     (unsigned long long)want[i][2]);
    }
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
