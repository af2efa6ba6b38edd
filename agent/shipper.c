/* shipper.c -- POSTs batches of spooled events to every collector's
 * /v1/ingest and tells the spool what each collector stored (acked),
 * refused for good (dead letter) or did not get (retry). Per collector:
 * one easy handle, one batch in flight, its own backoff with full jitter,
 * and the newest/oldest alternation on a backlog. Does not decide what is
 * deleted (spool_collectors.c) or dropped (spool_append.c) and does not
 * own the multi handle. */
#include "shipper.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "probers.h"
#include "metrics.h"
#include "probe_curl.h"
#include "spool.h"
#include "util.h"
#include "wire.h"

#define SHIPPER_LOG_BODY 300        /* reply bytes quoted in a log line */
/* Why a shipment failed, for its log line: curl's error buffer or
 * "HTTP nnn: " and the quoted reply both fit. */
#define SHIPPER_WHY_LEN  (CURL_ERROR_SIZE + SHIPPER_LOG_BODY)

static char shipper_version[] = SEXTANT_VERSION;   /* protobuf-c: not const */

/* What a finished transfer means for its batch. */
enum shipper_verdict {
    SHIPPER_ACKED,                  /* 200 and a good Ack: stored */
    SHIPPER_RETRY,                  /* network, 408, 429, 5xx, bad Ack */
    SHIPPER_REFUSED_CONFIG,         /* 401, 403, other 4xx: not the batch's
                                       fault (token, URL): retry, loudly */
    SHIPPER_DEAD,                   /* 400, 413, 415: the batch itself */
};

/* One collector's shipping state.
 *
 * A batch, once sent, is retried AS IT IS until the collector acks it or
 * refuses it for good: never rebuilt from the spool. Its fate may be
 * unknown (a reset or timeout after the collector stored it), and the
 * spool may meanwhile drop its events to stay in its bound; resending the
 * same events lets the collector settle it (it stores a seq once), where
 * counting them as dropped would count them twice. It costs one batch of
 * memory per collector, the bound's only excess. */
struct shipper_coll {
    unsigned idx;                   /* in cfg->collectors and the spool */
    const struct agent_collector *col;  /* borrowed from the shipper's cfg */
    CURL *easy;                     /* owned; in the multi while in flight */
    struct curl_slist *headers;     /* holds the token: wiped on free */
    int in_flight;
    int out;                        /* chunk is a batch sent and not yet
                                       acked or dead: retried as it is */
    struct spool_chunk chunk;       /* that batch: its events */
    uint8_t *body;                  /* ... deflated, as curl sends it */
    int64_t sent_unix_ms;
    uint32_t prev_rtt_us;           /* of the last good shipment */
    int64_t retry_at_us;            /* monotonic; 0 = no backoff */
    unsigned failures;              /* since the last success */
    int loud;                       /* refused (config): logged at error
                                       once in this streak */
    int next_newest;                /* backlog: the next batch is newest */
    int64_t pending_since_us;       /* unsent events waiting since; 0: none
                                       known (they start a new wait) */
    uint64_t peeked_next;           /* spool next seq at the last peek that
                                       sent nothing; 0: peek again */
    int empty;                      /* that peek found nothing unsent */
    int flush_failed;               /* failed since flush mode began */
    size_t resp_len;
    int resp_capped;
    char resp[SHIPPER_MAX_RESP];
    char errbuf[CURL_ERROR_SIZE];
};

struct shipper {
    const struct agent_config *cfg; /* borrowed */
    struct spool *sp;               /* borrowed */
    struct probers *pr;             /* borrowed, NULL: no probers */
    struct shipper_coll *coll;      /* owned; n of them */
    size_t n;
    uint64_t rng;                   /* xorshift state, for jitter only */
    int flush;
};

static size_t shipper_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct shipper_coll *k = arg;
    size_t n = size * nmemb, room = sizeof(k->resp) - k->resp_len;

    /* An Ack is a few bytes and an error a line of JSON: keep the head of
     * anything bigger for the log and stop reading it there. */
    if (n > room) {
        k->resp_capped = 1;
        memcpy(k->resp + k->resp_len, data, room);
        k->resp_len += room;
        return 0;                   /* makes curl stop: CURLE_WRITE_ERROR */
    }
    memcpy(k->resp + k->resp_len, data, n);
    k->resp_len += n;
    return n;
}

static void shipper_free_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

/* Headers of every POST to @k. The token is copied into the list and
 * wiped when the list goes. "Expect:" stops curl from waiting for
 * 100-continue on big bodies, a round trip the collector does not need. */
static int shipper_headers(struct shipper_coll *k)
{
    static const char *const fixed[] = {
        "Content-Type: application/x-protobuf",
        "Content-Encoding: deflate",
        "Accept: application/x-protobuf",
        "Expect:",
    };
    static const char auth_prefix[] = "Authorization: Bearer ";
    struct curl_slist *list = NULL, *next;
    size_t tlen = strlen(k->col->token);
    char *auth = NULL;
    int rc = -ENOMEM;

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        next = curl_slist_append(list, fixed[i]);
        if (!next)
            goto out;
        list = next;
    }
    auth = malloc(sizeof(auth_prefix) + tlen);
    if (!auth)
        goto out;
    memcpy(auth, auth_prefix, sizeof(auth_prefix) - 1);
    memcpy(auth + sizeof(auth_prefix) - 1, k->col->token, tlen + 1);
    next = curl_slist_append(list, auth);
    if (!next)
        goto out;
    list = next;
    k->headers = list;
    list = NULL;
    rc = 0;
out:
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    shipper_free_headers(list);
    return rc;
}

/* TLS to collector @c, on its easy handle @e: verification on unless
 * tls_verify is false; with ca_file, only those CAs are trusted (curl's
 * built-in CA path is dropped too); client_cert/client_key for a
 * collector that requires a client certificate. A collector whose
 * certificate does not verify fails the transfer with curl's "SSL
 * certificate problem: ..." in the error buffer, which the failure log
 * line quotes; the events stay spooled. Plain http:// URLs ignore all of
 * it (config.c refuses TLS keys there). 0, or -EINVAL. */
static int shipper_tls_setup(CURL *e, const struct agent_collector *c)
{
    const struct agent_tls *t = &c->tls;
    int bad = 0;

    bad |= probe_curl_tls(e, t->verify, t->ca_file) < 0;
    if (t->client_cert) {
        bad |= curl_easy_setopt(e, CURLOPT_SSLCERT, t->client_cert)
               != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_SSLKEY, t->client_key)
               != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK;
    }
    if (!t->verify)
        log_msg(LOGL_WARN, "shipper", "%s: tls_verify is off: the "
                "collector's certificate is not checked", c->ingest_url);
    return bad ? -EINVAL : 0;
}

/* Options that stay the same for every batch to @k; the body is set per
 * batch. The common ones are the probes' (probe_curl_common()), except
 * that the connection is kept from batch to batch and the environment's
 * proxy is honoured: reaching a collector is all that counts, not how
 * fast the path is. libcurl copies the strings, so a reloaded config may
 * free its own. */
static int shipper_setup(struct shipper_coll *k)
{
    const struct probe_curl_common c = {
        .protocols = "http,https",
        .timeout_ms = SHIPPER_TIMEOUT_MS,
        .errbuf = k->errbuf,
        .write = shipper_write,
        .write_arg = k,
        .env_proxy = 1,
    };
    CURL *e = k->easy;
    int bad = 0;

    bad |= probe_curl_common(e, &c) < 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, k->col->ingest_url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, k->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, SHIPPER_CONNECT_MS)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, SHIPPER_MAXAGE_CONN_S)
           != CURLE_OK;
    bad |= shipper_tls_setup(e, k->col) < 0;
    return bad ? -EINVAL : 0;
}

void shipper_set_probers(struct shipper *sh, struct probers *pr)
{
    sh->pr = pr;
}

void shipper_set_config(struct shipper *sh, const struct agent_config *cfg)
{
    sh->cfg = cfg;
    for (size_t i = 0; i < sh->n && i < cfg->n_collectors; i++)
        sh->coll[i].col = &cfg->collectors[i];
}

int shipper_new(const struct agent_config *cfg, struct spool *sp,
                struct shipper **out)
{
    const char *ids[AGENT_CONFIG_MAX_COLLECTORS];
    struct shipper *sh;
    int rc;

    if (cfg->n_collectors == 0 ||
        cfg->n_collectors > AGENT_CONFIG_MAX_COLLECTORS)
        return -EINVAL;
    sh = calloc(1, sizeof(*sh));
    if (!sh)
        return -ENOMEM;
    sh->cfg = cfg;
    sh->sp = sp;
    if (util_random_u64(&sh->rng) < 0 || sh->rng == 0)
        sh->rng = (uint64_t)util_mono_us() | 1;  /* jitter needs no secret */
    sh->coll = calloc(cfg->n_collectors, sizeof(*sh->coll));
    if (!sh->coll) {
        rc = -ENOMEM;
        goto err;
    }
    sh->n = cfg->n_collectors;
    for (size_t i = 0; i < sh->n; i++) {
        struct shipper_coll *k = &sh->coll[i];

        k->idx = (unsigned)i;
        k->col = &cfg->collectors[i];
        k->next_newest = 1;
        ids[i] = k->col->ingest_url;
        rc = shipper_headers(k);
        if (rc < 0)
            goto err;
        k->easy = curl_easy_init();
        if (!k->easy) {
            rc = -ENOMEM;
            goto err;
        }
        rc = shipper_setup(k);
        if (rc < 0)
            goto err;
    }
    rc = spool_set_collectors(sp, ids, sh->n);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "shipper", "cannot record the collectors in "
                "the spool: %s (%s)", strerror(-rc), spool_errmsg(sp));
        goto err;
    }
    metrics_collectors_set(ids, sh->n);
    *out = sh;
    return 0;
err:
    shipper_free(sh, NULL);
    return rc;
}

/* Ends @k's transfer, whatever became of it; the chunk stays for the
 * caller to judge. */
static void shipper_detach(struct shipper_coll *k, CURLM *multi)
{
    curl_multi_remove_handle(multi, k->easy);
    k->in_flight = 0;
    free(k->body);
    k->body = NULL;
}

/* The batch out there to @k goes with the process: whatever of it the
 * spool dropped meanwhile becomes drops (spool_batch.c). */
static void shipper_abandon(struct shipper *sh, struct shipper_coll *k)
{
    if (!k->out)
        return;
    if (spool_batch_abandoned(sh->sp, k->idx) < 0)
        log_msg(LOGL_WARN, "shipper", "cannot record the batch's drops: %s",
                spool_errmsg(sh->sp));
    spool_chunk_free(&k->chunk);
    k->out = 0;
    k->peeked_next = 0;
}

void shipper_abort(struct shipper *sh, CURLM *multi)
{
    for (size_t i = 0; i < sh->n; i++) {
        struct shipper_coll *k = &sh->coll[i];

        if (k->in_flight)
            shipper_detach(k, multi);
        shipper_abandon(sh, k);
    }
}

void shipper_free(struct shipper *sh, CURLM *multi)
{
    if (!sh)
        return;
    if (multi)
        shipper_abort(sh, multi);
    for (size_t i = 0; sh->coll && i < sh->n; i++) {
        struct shipper_coll *k = &sh->coll[i];

        shipper_abandon(sh, k);
        if (k->easy)
            curl_easy_cleanup(k->easy);
        shipper_free_headers(k->headers);
        free(k->body);
        spool_chunk_free(&k->chunk);
    }
    free(sh->coll);
    free(sh);
}

int shipper_owns(const struct shipper *sh, const CURL *easy)
{
    for (size_t i = 0; i < sh->n; i++)
        if (sh->coll[i].in_flight && sh->coll[i].easy == easy)
            return 1;
    return 0;
}

void shipper_retry_now(struct shipper *sh)
{
    for (size_t i = 0; i < sh->n; i++)
        sh->coll[i].retry_at_us = 0;
}

void shipper_flush(struct shipper *sh, int on)
{
    sh->flush = on;
    if (!on)
        return;
    shipper_retry_now(sh);
    for (size_t i = 0; i < sh->n; i++)
        sh->coll[i].flush_failed = 0;
}

static int64_t shipper_age_us(const struct shipper *sh)
{
    return sh->cfg->batch_max_age_ms > 0 ? sh->cfg->batch_max_age_ms * 1000
                                         : 0;
}

long shipper_wait_ms(const struct shipper *sh, int64_t now_us)
{
    int64_t best = -1;

    for (size_t i = 0; i < sh->n; i++) {
        const struct shipper_coll *k = &sh->coll[i];
        int64_t at;

        if (k->in_flight)
            continue;
        if (k->retry_at_us)
            at = k->retry_at_us;
        else if (k->out)
            at = now_us;
        else if (k->pending_since_us && !k->empty && !sh->flush)
            at = k->pending_since_us + shipper_age_us(sh);
        else
            continue;
        at = at <= now_us ? 0 : (at - now_us + 999) / 1000;
        if (best < 0 || at < best)
            best = at;
    }
    return (long)best;
}

int shipper_drained(const struct shipper *sh)
{
    for (size_t i = 0; i < sh->n; i++)
        if (sh->coll[i].in_flight || sh->coll[i].out || !sh->coll[i].empty)
            return 0;
    return 1;
}

int shipper_settled(const struct shipper *sh)
{
    for (size_t i = 0; i < sh->n; i++) {
        const struct shipper_coll *k = &sh->coll[i];

        if (!k->flush_failed && (k->in_flight || k->out || !k->empty))
            return 0;
    }
    return 1;
}

unsigned shipper_failures(const struct shipper *sh)
{
    unsigned n = 0;

    for (size_t i = 0; i < sh->n; i++)
        n += sh->coll[i].failures;
    return n;
}

int64_t shipper_backoff_ms(int64_t initial_ms, int64_t cap_ms,
                           unsigned failures, uint64_t rnd)
{
    int64_t bound = initial_ms > 0 ? initial_ms : 1;

    /* Doubling stops at the cap, long before int64 could overflow. */
    for (unsigned i = 1; i < failures && bound < cap_ms; i++)
        bound *= 2;
    if (bound > cap_ms)
        bound = cap_ms;
    if (bound <= 0)
        return 0;
    return (int64_t)(rnd % ((uint64_t)bound + 1));
}

static uint64_t shipper_rand(struct shipper *sh)
{
    uint64_t x = sh->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sh->rng = x;
    return x;
}

/* Schedules @k's next try: full jitter, but never before @retry_after_ms
 * (a Retry-After; 0 if none). Returns the delay in ms. */
static int64_t shipper_backoff(struct shipper *sh, struct shipper_coll *k,
                               int64_t now_us, int64_t retry_after_ms)
{
    int64_t ms;

    k->failures++;
    ms = shipper_backoff_ms(sh->cfg->backoff_initial_ms,
                            sh->cfg->backoff_max_ms, k->failures,
                            shipper_rand(sh));
    if (retry_after_ms > SHIPPER_MAX_RETRY_AFTER_MS)
        retry_after_ms = SHIPPER_MAX_RETRY_AFTER_MS;
    if (retry_after_ms > ms)
        ms = retry_after_ms;
    /* 0 would mean "no backoff": one microsecond is as good as now. */
    k->retry_at_us = now_us + ms * 1000 + 1;
    if (sh->flush)
        k->flush_failed = 1;
    k->peeked_next = 0;
    metrics_collector_failures(k->idx, k->failures);
    return ms;
}

/* Encodes @k's batch (its chunk) with a fresh header and hands it to
 * curl. */
static int shipper_send(struct shipper *sh, struct shipper_coll *k,
                        CURLM *multi)
{
    Sextant__V1__Batch hdr = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Drops drops = SEXTANT__V1__DROPS__INIT;
    const struct spool_chunk *c = &k->chunk;
    uint8_t *body = NULL;
    size_t len;
    int rc;

    hdr.cluster = sh->cfg->cluster;
    hdr.region = sh->cfg->region;
    hdr.node = sh->cfg->node;
    hdr.agent_version = shipper_version;
    hdr.epoch = spool_epoch(sh->sp);
    hdr.first_seq = c->first_seq;
    hdr.oldest_seq = c->oldest_seq;
    hdr.sent_unix_ms = util_now_ms();
    hdr.prev_rtt_us = k->prev_rtt_us;
    hdr.live_nodes_hash = probers_held(sh->pr);
    /* The backlog is news, not the batch: one that cannot be read goes
     * as 0 (unknown to the collector too), and the batch goes all the
     * same. */
    if (spool_held_for(sh->sp, k->idx, &hdr.spool_events,
                       &hdr.spool_bytes) < 0) {
        log_msg(LOGL_WARN, "shipper", "cannot read the spool's backlog: %s",
                spool_errmsg(sh->sp));
        hdr.spool_events = 0;
        hdr.spool_bytes = 0;
    }
    if (c->drop.count > 0) {
        drops.count = c->drop.count;
        drops.first_seq = c->drop.first_seq;
        drops.last_seq = c->drop.last_seq;
        drops.first_unix_ms = c->drop.first_unix_ms;
        drops.last_unix_ms = c->drop.last_unix_ms;
        hdr.drops = &drops;
    }
    rc = wire_batch_encode_packed(&hdr, c->events, c->n, &body, &len);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "shipper", "cannot encode %zu events (seq %"
                PRIu64 "-%" PRIu64 "): %s", c->n, c->first_seq, c->last_seq,
                strerror(-rc));
        return rc;
    }
    k->resp_len = 0;
    k->resp_capped = 0;
    k->errbuf[0] = '\0';
    if (curl_easy_setopt(k->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)len) != CURLE_OK ||
        curl_easy_setopt(k->easy, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
        curl_multi_add_handle(multi, k->easy) != CURLM_OK) {
        log_msg(LOGL_ERROR, "shipper", "cannot start a transfer");
        free(body);
        return -EIO;
    }
    k->body = body;                 /* curl reads it until done */
    k->sent_unix_ms = hdr.sent_unix_ms;
    k->in_flight = 1;
    log_msg(LOGL_DEBUG, "shipper", "%s: sending %zu events (seq %" PRIu64
            "-%" PRIu64 ", oldest %" PRIu64 ", %" PRIu64 " dropped), %zu "
            "bytes%s", k->col->url, c->n, c->first_seq, c->last_seq,
            c->oldest_seq, c->drop.count, len,
            k->failures ? ", again" : "");
    return 0;
}

/* Makes @c (taken, even on failure) @k's batch out there and sends it. */
static int shipper_start(struct shipper *sh, struct shipper_coll *k,
                         CURLM *multi, struct spool_chunk *c)
{
    int rc = spool_batch_sent(sh->sp, k->idx, c);

    if (rc < 0) {
        log_msg(LOGL_ERROR, "shipper", "cannot mark the batch sent in the "
                "spool: %s (%s)", strerror(-rc), spool_errmsg(sh->sp));
        spool_chunk_free(c);
        return rc;
    }
    k->chunk = *c;
    memset(c, 0, sizeof(*c));       /* now k's */
    k->out = 1;
    return shipper_send(sh, k, multi);
}

/* Drain order. Whenever @k has more unsent events than fit one batch (a
 * backlog after an outage), its batches alternate: the NEWEST unsent
 * events, then the OLDEST, then the newest again... so live events reach
 * the collector within a batch or two while the backlog drains from its
 * old end at half the rate. Without a backlog both are the same batch.
 *
 * A batch closes when it is full (batch_max_events, or the next event
 * would pass batch_max_bytes) or its oldest event has waited
 * batch_max_age; flushing sends whatever there is. */
static int shipper_poll_one(struct shipper *sh, struct shipper_coll *k,
                            CURLM *multi, int64_t now_us, uint64_t next_seq)
{
    /* The collector refuses a batch over WIRE_MAX_EVENTS whole: whatever
     * the config says (it checks too), never build one. */
    size_t max_events = sh->cfg->batch_max_events <= 0 ? 1
                      : sh->cfg->batch_max_events > (long long)WIRE_MAX_EVENTS
                            ? WIRE_MAX_EVENTS
                            : (size_t)sh->cfg->batch_max_events;
    size_t max_bytes = sh->cfg->batch_max_bytes > 0
                           ? (size_t)sh->cfg->batch_max_bytes : 1;
    struct spool_chunk c;
    int rc, ready;

    if (k->in_flight || (k->retry_at_us && now_us < k->retry_at_us))
        return 0;
    if (k->out) {                   /* a failed batch: the same again */
        rc = shipper_send(sh, k, multi);
        if (rc < 0)
            shipper_backoff(sh, k, now_us, 0);
        return rc;
    }
    /* Nothing appended since the last look: nothing new to decide. */
    if (k->peeked_next == next_seq &&
        (k->empty || (!sh->flush &&
                      now_us - k->pending_since_us < shipper_age_us(sh))))
        return 0;
    rc = spool_peek_for(sh->sp, k->idx, k->next_newest, max_events,
                        max_bytes, &c);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "shipper", "cannot read the spool: %s (%s)",
                strerror(-rc), spool_errmsg(sh->sp));
        k->empty = 0;
        shipper_backoff(sh, k, now_us, 0);
        return rc;
    }
    k->peeked_next = next_seq;
    k->empty = c.n == 0 && c.drop.count == 0;
    if (k->empty) {
        k->pending_since_us = 0;
        return 0;
    }
    if (!k->pending_since_us)
        k->pending_since_us = now_us;
    /* A drop record with no events left to carry it goes alone, now: the
     * collector should hear of a loss without waiting for new events. */
    ready = sh->flush || c.more || c.n >= max_events || c.n == 0 ||
            now_us - k->pending_since_us >= shipper_age_us(sh);
    if (!ready) {
        spool_chunk_free(&c);
        return 0;
    }
    if (c.more) {
        k->next_newest = !k->next_newest;
    } else {
        k->pending_since_us = 0;    /* all of it goes: a new wait begins */
        k->next_newest = 1;
    }
    rc = shipper_start(sh, k, multi, &c);
    if (rc < 0) {
        shipper_backoff(sh, k, now_us, 0);
        return rc;
    }
    k->peeked_next = 0;
    return 0;
}

int shipper_poll(struct shipper *sh, CURLM *multi, int64_t now_us)
{
    uint64_t next_seq;
    int rc = 0, any = 0;

    for (size_t i = 0; i < sh->n; i++) {
        const struct shipper_coll *k = &sh->coll[i];

        if (!k->in_flight && (!k->retry_at_us || now_us >= k->retry_at_us))
            any = 1;
    }
    if (!any)
        return 0;
    rc = spool_next_seq(sh->sp, &next_seq);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "shipper", "cannot read the spool: %s (%s)",
                strerror(-rc), spool_errmsg(sh->sp));
        /* Backing off keeps a broken disk from one line per turn. */
        for (size_t i = 0; i < sh->n; i++)
            if (!sh->coll[i].in_flight)
                shipper_backoff(sh, &sh->coll[i], now_us, 0);
        return rc;
    }
    for (size_t i = 0; i < sh->n; i++) {
        int r = shipper_poll_one(sh, &sh->coll[i], multi, now_us, next_seq);

        if (r < 0)
            rc = r;
    }
    return rc;
}

/* Copies the collector's reply into @out as one printable line, for the
 * log and the dead letter: it is untrusted bytes and may be long. */
static void shipper_reply_text(const struct shipper_coll *k, char *out,
                               size_t out_len)
{
    size_t n = k->resp_len < SHIPPER_LOG_BODY ? k->resp_len
                                              : SHIPPER_LOG_BODY;
    size_t j = 0;

    for (size_t i = 0; i < n && j + 1 < out_len; i++) {
        unsigned char ch = (unsigned char)k->resp[i];
        out[j++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
    }
    out[j] = '\0';
    util_rtrim(out);
    if (j == 0)
        snprintf(out, out_len, "(empty reply)");
}

/* Checks the Ack of a 200 reply. A 200 means the collector stored the
 * whole batch (issue 5): acked_seq is its contiguous watermark, which a
 * newest-first batch leaves below the batch, so it is only logged. 0 on
 * success; on failure writes why to @why. */
static int shipper_check_ack(struct shipper *sh, struct shipper_coll *k,
                             Sextant__V1__Ack *ack, char *why,
                             size_t why_len)
{
    int rc;

    if (k->resp_capped) {
        snprintf(why, why_len, "reply larger than %u bytes",
                 SHIPPER_MAX_RESP);
        return -EMSGSIZE;
    }
    rc = wire_ack_decode((const uint8_t *)k->resp, k->resp_len, ack);
    if (rc < 0) {
        snprintf(why, why_len, "reply is not an Ack: %s", strerror(-rc));
        return rc;
    }
    if (ack->epoch != spool_epoch(sh->sp)) {
        snprintf(why, why_len, "Ack for epoch %016" PRIx64 ", ours is %016"
                 PRIx64, ack->epoch, spool_epoch(sh->sp));
        return -EPROTO;
    }
    return 0;
}

static enum shipper_verdict shipper_judge(long status)
{
    if (status == 400 || status == 413 || status == 415)
        return SHIPPER_DEAD;
    if (status == 408 || status == 429)
        return SHIPPER_RETRY;
    if (status >= 400 && status < 500)
        return SHIPPER_REFUSED_CONFIG;
    return SHIPPER_RETRY;
}

/* The collector stored the batch. */
static void shipper_acked(struct shipper *sh, struct shipper_coll *k,
                          const Sextant__V1__Ack *ack, curl_off_t rtt,
                          int64_t now_us)
{
    uint64_t deleted = 0;
    int rc = spool_batch_acked(sh->sp, k->idx, &k->chunk, &deleted);

    probers_ack(sh->pr, (const uint8_t *)k->resp, k->resp_len);

    if (rc < 0) {
        /* Stored there, not recorded here: sending it again is harmless
         * (the collector skips what it has), losing it is not. */
        int64_t ms = shipper_backoff(sh, k, now_us, 0);

        log_msg(LOGL_ERROR, "shipper", "%s: acked, but the spool cannot "
                "record it: %s (%s); resending in %" PRId64 " ms",
                k->col->url, strerror(-rc), spool_errmsg(sh->sp), ms);
        return;
    }
    log_msg(LOGL_DEBUG, "shipper", "%s: stored seq %" PRIu64 "-%" PRIu64
            " (its watermark %" PRIu64 "), %" PRIu64 " events deleted",
            k->col->url, k->chunk.first_seq, k->chunk.last_seq,
            ack->acked_seq, deleted);
    spool_chunk_free(&k->chunk);
    k->out = 0;
    if (k->failures > 0)
        log_msg(LOGL_INFO, "shipper", "%s: delivering again after %u "
                "failed attempts", k->col->url, k->failures);
    k->failures = 0;
    k->loud = 0;
    k->retry_at_us = 0;
    k->prev_rtt_us = rtt > (curl_off_t)UINT32_MAX ? UINT32_MAX
                                                  : (uint32_t)rtt;
    /* In this order, here: several collectors may be in flight at once,
     * and the offset must pair a batch's own send and receive times. */
    metrics_batch_sent(k->sent_unix_ms);
    metrics_ack_received(ack->received_unix_ms);
    metrics_batch_shipped((int64_t)rtt);
    metrics_collector_shipped(k->idx);
    metrics_collector_failures(k->idx, 0);
}

/* The collector refused the batch itself (@status): set it aside. 413 and
 * 415 cannot happen with a sane config (batch_max_bytes is far below the
 * collector's cap, and the content type is fixed), but if a proxy or a
 * smaller cap says so anyway, retrying the same bytes forever would stop
 * the stream behind them: they are dead-lettered like 400. */
static void shipper_dead(struct shipper *sh, struct shipper_coll *k,
                         long status, const char *reply, int64_t now_us)
{
    uint64_t deleted = 0;
    int rc = spool_batch_dead(sh->sp, k->idx, &k->chunk, (int)status, reply,
                              &deleted);

    metrics_batch_rejected((int)status);
    if (rc < 0) {
        int64_t ms = shipper_backoff(sh, k, now_us, 0);

        log_msg(LOGL_ERROR, "shipper", "%s: refused %zu events (seq %" PRIu64
                "-%" PRIu64 ") with HTTP %ld: %s; cannot set them aside: %s "
                "(%s); retrying in %" PRId64 " ms", k->col->url, k->chunk.n,
                k->chunk.first_seq, k->chunk.last_seq, status, reply,
                strerror(-rc), spool_errmsg(sh->sp), ms);
        return;
    }
    log_msg(LOGL_ERROR, "shipper", "%s: refused %zu events (seq %" PRIu64
            "-%" PRIu64 ") for good with HTTP %ld: %s; moved to the spool's "
            "dead_letter table, shipping goes on", k->col->url, k->chunk.n,
            k->chunk.first_seq, k->chunk.last_seq, status, reply);
    spool_chunk_free(&k->chunk);
    k->out = 0;
    /* The collector answers: this is no reason to wait. */
    k->failures = 0;
    k->retry_at_us = 0;
    metrics_collector_failures(k->idx, 0);
}

void shipper_done(struct shipper *sh, CURLM *multi, CURL *easy,
                  CURLcode code, int64_t now_us)
{
    Sextant__V1__Ack ack = SEXTANT__V1__ACK__INIT;
    char why[SHIPPER_WHY_LEN], reply[SHIPPER_LOG_BODY + 1];
    enum shipper_verdict v = SHIPPER_RETRY;
    struct shipper_coll *k = NULL;
    curl_off_t rtt = 0, retry_after = -1;
    long status = 0, connects = 0;
    int64_t ms, ra_ms = 0;

    for (size_t i = 0; i < sh->n && !k; i++)
        if (sh->coll[i].in_flight && sh->coll[i].easy == easy)
            k = &sh->coll[i];
    if (!k)
        return;
    shipper_detach(k, multi);
    k->peeked_next = 0;
    if (curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &rtt) != CURLE_OK)
        rtt = 0;
    /* Keep-alive at work, or the collector closing idle connections. */
    if (curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects) ==
            CURLE_OK && connects > 0)
        log_msg(LOGL_DEBUG, "shipper", "%s: a new connection", k->col->url);
    /* Seconds, from "Retry-After: 120" or an HTTP date (curl does both). */
    if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after)
        != CURLE_OK)
        retry_after = -1;
    /* We cut an oversized reply short: judge it by its status and head. */
    if (code == CURLE_WRITE_ERROR && k->resp_capped && status > 0)
        code = CURLE_OK;
    shipper_reply_text(k, reply, sizeof(reply));
    if (code != CURLE_OK) {
        snprintf(why, sizeof(why), "%s", probe_curl_errtext(k->errbuf, code));
    } else if (status == 200) {
        if (shipper_check_ack(sh, k, &ack, why, sizeof(why)) == 0)
            v = SHIPPER_ACKED;
    } else {
        v = shipper_judge(status);
        snprintf(why, sizeof(why), "HTTP %ld: %s", status, reply);
        if ((status == 429 || status == 503) && retry_after > 0)
            ra_ms = retry_after > SHIPPER_MAX_RETRY_AFTER_MS / 1000
                        ? SHIPPER_MAX_RETRY_AFTER_MS
                        : (int64_t)retry_after * 1000;
    }
    if (v == SHIPPER_ACKED) {
        shipper_acked(sh, k, &ack, rtt, now_us);
    } else if (v == SHIPPER_DEAD) {
        shipper_dead(sh, k, status, reply, now_us);
    } else {
        ms = shipper_backoff(sh, k, now_us, ra_ms);
        metrics_batch_failed();
        log_msg(v == SHIPPER_REFUSED_CONFIG && !k->loud ? LOGL_ERROR
                                                         : LOGL_WARN,
                "shipper", "%s: %zu events (seq %" PRIu64 "-%" PRIu64 ") not "
                "delivered: %s%s; retry %u in %" PRId64 " ms%s", k->col->url,
                k->chunk.n, k->chunk.first_seq, k->chunk.last_seq, why,
                v == SHIPPER_REFUSED_CONFIG
                    ? " (the collector refuses us, not the batch: check "
                      "the token and URL; the events stay spooled)" : "",
                k->failures, ms, ra_ms ? " (Retry-After)" : "");
        if (v == SHIPPER_REFUSED_CONFIG)
            k->loud = 1;
    }
}
