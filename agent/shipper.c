/* shipper.c -- POSTs batches of spooled events to the collector's
 * /v1/ingest and deletes them from the spool once acked. One batch in
 * flight, oldest events first, plain exponential backoff on failure.
 * Does not drop, dead-letter, jitter or fan out to several collectors
 * yet (issue 5 grows those here, behind the same interface). */
#include "shipper.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"
#include "util.h"
#include "wire.h"

#define SHIPPER_LOG_BODY 300        /* reply bytes quoted in a log line */

static char shipper_version[] = SEXTANT_VERSION;   /* protobuf-c: not const */

struct shipper {
    const struct agent_config *cfg; /* borrowed */
    struct spool *sp;               /* borrowed */
    CURL *easy;                     /* owned; in the multi while in flight */
    struct curl_slist *headers;     /* holds the token: wiped on free */
    int in_flight;
    int drained;                    /* last poll found the spool empty */
    uint8_t *body;                  /* the batch in flight, deflated */
    size_t body_len;
    size_t sent_n;                  /* events in the batch in flight */
    uint64_t sent_first;
    uint64_t sent_last;
    uint32_t prev_rtt_us;           /* of the last good shipment */
    int64_t retry_at_us;            /* monotonic; 0 = no backoff */
    long backoff_ms;                /* the next delay */
    unsigned failures;              /* since the last success */
    size_t resp_len;
    int resp_capped;
    char resp[SHIPPER_MAX_RESP];
    char errbuf[CURL_ERROR_SIZE];
};

static size_t shipper_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct shipper *sh = arg;
    size_t n = size * nmemb, room = sizeof(sh->resp) - sh->resp_len;

    /* An Ack is a few bytes and an error a line of JSON: keep the head of
     * anything bigger for the log and stop reading it there. */
    if (n > room) {
        sh->resp_capped = 1;
        memcpy(sh->resp + sh->resp_len, data, room);
        sh->resp_len += room;
        return 0;                   /* makes curl stop: CURLE_WRITE_ERROR */
    }
    memcpy(sh->resp + sh->resp_len, data, n);
    sh->resp_len += n;
    return n;
}

static void shipper_free_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

/* Headers of every POST. The token is copied into the list and wiped when
 * the list goes. "Expect:" stops curl from waiting for 100-continue on big
 * bodies, a round trip the collector does not need. */
static int shipper_headers(struct shipper *sh)
{
    static const char *const fixed[] = {
        "Content-Type: application/x-protobuf",
        "Content-Encoding: deflate",
        "Accept: application/x-protobuf",
        "Expect:",
    };
    static const char auth_prefix[] = "Authorization: Bearer ";
    struct curl_slist *list = NULL, *next;
    size_t tlen = strlen(sh->cfg->token);
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
    memcpy(auth + sizeof(auth_prefix) - 1, sh->cfg->token, tlen + 1);
    next = curl_slist_append(list, auth);
    if (!next)
        goto out;
    list = next;
    sh->headers = list;
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

/* Options that stay the same for every batch; the body is set per batch. */
static int shipper_setup(struct shipper *sh)
{
    CURL *e = sh->easy;
    int bad = 0;

    bad |= curl_easy_setopt(e, CURLOPT_URL, sh->cfg->ingest_url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, sh->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, SHIPPER_TIMEOUT_MS)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, SHIPPER_CONNECT_MS)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT,
                            "sextant-agent/" SEXTANT_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, shipper_write)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, sh) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, sh->errbuf) != CURLE_OK;
    return bad ? -EINVAL : 0;
}

void shipper_set_config(struct shipper *sh, const struct agent_config *cfg)
{
    sh->cfg = cfg;
}

int shipper_new(const struct agent_config *cfg, struct spool *sp,
                struct shipper **out)
{
    struct shipper *sh;
    int rc;

    sh = calloc(1, sizeof(*sh));
    if (!sh)
        return -ENOMEM;
    sh->cfg = cfg;
    sh->sp = sp;
    sh->backoff_ms = SHIPPER_BACKOFF_MIN;
    rc = shipper_headers(sh);
    if (rc < 0)
        goto err;
    sh->easy = curl_easy_init();
    if (!sh->easy) {
        rc = -ENOMEM;
        goto err;
    }
    rc = shipper_setup(sh);
    if (rc < 0)
        goto err;
    *out = sh;
    return 0;
err:
    shipper_free(sh, NULL);
    return rc;
}

void shipper_abort(struct shipper *sh, CURLM *multi)
{
    if (!sh->in_flight)
        return;
    curl_multi_remove_handle(multi, sh->easy);
    sh->in_flight = 0;
    free(sh->body);
    sh->body = NULL;
}

void shipper_free(struct shipper *sh, CURLM *multi)
{
    if (!sh)
        return;
    if (multi)
        shipper_abort(sh, multi);
    if (sh->easy)
        curl_easy_cleanup(sh->easy);
    shipper_free_headers(sh->headers);
    free(sh->body);
    free(sh);
}

int shipper_owns(const struct shipper *sh, const CURL *easy)
{
    return sh->in_flight && easy == sh->easy;
}

void shipper_retry_now(struct shipper *sh)
{
    sh->retry_at_us = 0;
}

long shipper_wait_ms(const struct shipper *sh, int64_t now_us)
{
    if (sh->in_flight || sh->retry_at_us == 0)
        return -1;
    if (sh->retry_at_us <= now_us)
        return 0;
    return (long)((sh->retry_at_us - now_us + 999) / 1000);
}

int shipper_drained(const struct shipper *sh)
{
    return !sh->in_flight && sh->drained;
}

unsigned shipper_failures(const struct shipper *sh)
{
    return sh->failures;
}

/* Schedules the next try and doubles the delay, up to the cap. */
static void shipper_backoff(struct shipper *sh, int64_t now_us)
{
    sh->failures++;
    sh->retry_at_us = now_us + (int64_t)sh->backoff_ms * 1000;
    sh->backoff_ms = sh->backoff_ms * 2 > SHIPPER_BACKOFF_MAX
                         ? SHIPPER_BACKOFF_MAX : sh->backoff_ms * 2;
}

/* Builds the batch from @c and hands it to curl. */
static int shipper_start(struct shipper *sh, CURLM *multi,
                         const struct spool_chunk *c)
{
    Sextant__V1__Batch hdr = SEXTANT__V1__BATCH__INIT;
    uint8_t *body = NULL;
    size_t len;
    int rc;

    hdr.cluster = sh->cfg->cluster;
    hdr.region = sh->cfg->region;
    hdr.node = sh->cfg->node;
    hdr.agent_version = shipper_version;
    hdr.epoch = spool_epoch(sh->sp);
    hdr.first_seq = c->first_seq;
    hdr.sent_unix_ms = util_now_ms();
    hdr.prev_rtt_us = sh->prev_rtt_us;
    rc = wire_batch_encode_packed(&hdr, c->events, c->n, &body, &len);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "shipper", "cannot encode %zu events (seq %"
                PRIu64 "-%" PRIu64 "): %s", c->n, c->first_seq, c->last_seq,
                strerror(-rc));
        return rc;
    }
    sh->resp_len = 0;
    sh->resp_capped = 0;
    sh->errbuf[0] = '\0';
    rc = -EIO;
    if (curl_easy_setopt(sh->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)len) != CURLE_OK ||
        curl_easy_setopt(sh->easy, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
        curl_multi_add_handle(multi, sh->easy) != CURLM_OK) {
        log_msg(LOGL_ERROR, "shipper", "cannot start a transfer");
        free(body);
        return rc;
    }
    sh->body = body;                /* curl reads it until done */
    sh->body_len = len;
    sh->sent_n = c->n;
    sh->sent_first = c->first_seq;
    sh->sent_last = c->last_seq;
    sh->in_flight = 1;
    metrics_batch_sent(hdr.sent_unix_ms);
    log_msg(LOGL_DEBUG, "shipper", "sending %zu events (seq %" PRIu64 "-%"
            PRIu64 "), %zu bytes", c->n, c->first_seq, c->last_seq, len);
    return 0;
}

int shipper_poll(struct shipper *sh, CURLM *multi, int64_t now_us)
{
    struct spool_chunk c;
    int rc;

    if (sh->in_flight || (sh->retry_at_us && now_us < sh->retry_at_us))
        return 0;
    rc = spool_peek(sh->sp, 0, SHIPPER_MAX_EVENTS, SHIPPER_MAX_BYTES, &c);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "shipper", "cannot read the spool: %s (%s)",
                strerror(-rc), spool_errmsg(sh->sp));
        sh->drained = 0;
        shipper_backoff(sh, now_us);
        return rc;
    }
    sh->drained = c.n == 0;
    if (c.n > 0) {
        rc = shipper_start(sh, multi, &c);
        if (rc < 0)
            shipper_backoff(sh, now_us);
    }
    spool_chunk_free(&c);
    return rc;
}

/* Copies the collector's reply into @out as one printable line, for the
 * log: it is untrusted bytes and may be long. */
static void shipper_reply_text(const struct shipper *sh, char *out,
                               size_t out_len)
{
    size_t n = sh->resp_len < SHIPPER_LOG_BODY ? sh->resp_len
                                               : SHIPPER_LOG_BODY;
    size_t j = 0;

    for (size_t i = 0; i < n && j + 1 < out_len; i++) {
        unsigned char c = (unsigned char)sh->resp[i];
        out[j++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    out[j] = '\0';
    util_rtrim(out);
    if (j == 0)
        snprintf(out, out_len, "(empty reply)");
}

/* Checks the Ack of a 200 reply and deletes what it covers. 0 on success;
 * on failure writes why to @why. */
static int shipper_take_ack(struct shipper *sh, char *why, size_t why_len)
{
    Sextant__V1__Ack ack = SEXTANT__V1__ACK__INIT;
    uint64_t upto, deleted = 0;
    int rc;

    if (sh->resp_capped) {
        snprintf(why, why_len, "reply larger than %u bytes",
                 SHIPPER_MAX_RESP);
        return -EMSGSIZE;
    }
    rc = wire_ack_decode((const uint8_t *)sh->resp, sh->resp_len, &ack);
    if (rc < 0) {
        snprintf(why, why_len, "reply is not an Ack: %s", strerror(-rc));
        return rc;
    }
    if (ack.epoch != spool_epoch(sh->sp)) {
        snprintf(why, why_len, "Ack for epoch %016" PRIx64 ", ours is %016"
                 PRIx64, ack.epoch, spool_epoch(sh->sp));
        return -EPROTO;
    }
    /* Below the batch means it stored none of it: retrying at once would
     * spin, so this counts as a failure and backs off. */
    if (ack.acked_seq < sh->sent_first) {
        snprintf(why, why_len, "collector acked seq %" PRIu64 ", below the "
                 "batch's first seq %" PRIu64, ack.acked_seq, sh->sent_first);
        return -EPROTO;
    }
    /* Never delete what we did not send, whatever the collector says. */
    upto = ack.acked_seq < sh->sent_last ? ack.acked_seq : sh->sent_last;
    rc = spool_ack(sh->sp, upto, &deleted);
    if (rc < 0) {
        snprintf(why, why_len, "cannot delete acked events from the spool: "
                 "%s (%s)", strerror(-rc), spool_errmsg(sh->sp));
        return rc;
    }
    log_msg(LOGL_DEBUG, "shipper", "acked up to seq %" PRIu64 ", %" PRIu64
            " events deleted", upto, deleted);
    metrics_ack_received(ack.received_unix_ms);
    return 0;
}

void shipper_done(struct shipper *sh, CURLM *multi, CURLcode code,
                  int64_t now_us)
{
    char why[512], reply[SHIPPER_LOG_BODY + 1];
    curl_off_t rtt = 0;
    long status = 0;
    int rc = -EIO;

    curl_multi_remove_handle(multi, sh->easy);
    sh->in_flight = 0;
    free(sh->body);
    sh->body = NULL;
    sh->drained = 0;
    if (curl_easy_getinfo(sh->easy, CURLINFO_RESPONSE_CODE, &status)
        != CURLE_OK)
        status = 0;
    if (curl_easy_getinfo(sh->easy, CURLINFO_TOTAL_TIME_T, &rtt) != CURLE_OK)
        rtt = 0;
    /* We cut an oversized reply short: judge it by its status and head. */
    if (code == CURLE_WRITE_ERROR && sh->resp_capped && status > 0)
        code = CURLE_OK;
    if (code != CURLE_OK) {
        snprintf(why, sizeof(why), "%s",
                 sh->errbuf[0] ? sh->errbuf : curl_easy_strerror(code));
    } else if (status != 200) {
        shipper_reply_text(sh, reply, sizeof(reply));
        snprintf(why, sizeof(why), "HTTP %ld: %s", status, reply);
    } else {
        rc = shipper_take_ack(sh, why, sizeof(why));
    }
    if (rc < 0) {
        shipper_backoff(sh, now_us);
        metrics_batch_failed();
        log_msg(LOGL_WARN, "shipper", "%zu events (seq %" PRIu64 "-%" PRIu64
                ") not delivered: %s; retry %u in %ld ms", sh->sent_n,
                sh->sent_first, sh->sent_last, why, sh->failures,
                (long)((sh->retry_at_us - now_us) / 1000));
        return;
    }
    if (sh->failures > 0)
        log_msg(LOGL_INFO, "shipper", "delivering again after %u failed "
                "attempts", sh->failures);
    sh->failures = 0;
    sh->backoff_ms = SHIPPER_BACKOFF_MIN;
    sh->retry_at_us = 0;
    sh->prev_rtt_us = rtt > (curl_off_t)UINT32_MAX ? UINT32_MAX
                                                   : (uint32_t)rtt;
    metrics_batch_shipped((int64_t)rtt);
}
