/* shipper_test.c -- the shipper tests' shared fixture (see
 * shipper_test.h): fake collectors, per-test spool, config, shipper
 * and multi, and the helpers that drive and inspect them. */
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

pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
struct fake fakes[2];
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
    r->spool_events = b->spool_events;
    r->spool_bytes = b->spool_bytes;
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
int fake_start(unsigned i, unsigned port)
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

void fake_stop(unsigned i)
{
    if (fakes[i].d)
        MHD_stop_daemon(fakes[i].d);
    fakes[i].d = NULL;
}

int group_setup(void **state)
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

int group_teardown(void **state)
{
    (void)state;
    rmdir(test_dir);
    curl_global_cleanup();
    return 0;
}

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

int setup(void **state)
{
    return setup_n(state, 1);
}

int setup2(void **state)
{
    return setup_n(state, 2);
}

int teardown(void **state)
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
void append_named(struct spool *sp, size_t n, const char *name)
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

void append_n(struct spool *sp, size_t n)
{
    append_named(sp, n, "web");
}

uint64_t spooled(struct spool *sp)
{
    uint64_t n = 0;

    assert_int_equal(spool_count(sp, &n), 0);
    return n;
}

unsigned requests(unsigned i)
{
    unsigned n;

    pthread_mutex_lock(&mu);
    n = fakes[i].n_req;
    pthread_mutex_unlock(&mu);
    return n;
}

struct req last_req(unsigned i)
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
int ship(struct fx *f)
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
int ship_all(struct fx *f)
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
void run_until_requests(struct fx *f, unsigned i, unsigned want,
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

int64_t sql_int(const char *sql)
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
void assert_got_exactly(unsigned i, uint64_t lo, uint64_t hi)
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

void set_reply(unsigned i, enum reply mode, unsigned status,
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
void assert_metric(const char *line)
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
