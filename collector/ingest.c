/* ingest.c -- decode, validate, authorize and store one batch; build the
 * Ack or the JSON error. The body is hostile: the inflate cap and the
 * validation limits live in proto/wire.c and the config. */
#include "ingest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "wire.h"

/* What proto/wire.c leaves to us: SQLite integers are signed 64 bit, so
 * every seq must fit one, and a drop report must be self-consistent (its
 * count fits its range). 0, or -EINVAL with the reason in @err. */
static int ingest_check_seqs(const Sextant__V1__Batch *b, char *err,
                             size_t err_len)
{
    const Sextant__V1__Drops *d = b->drops;

    if (b->n_events > 0 &&
        b->events[b->n_events - 1]->seq > (uint64_t)INT64_MAX) {
        snprintf(err, err_len, "events: seq %llu over 2^63-1",
                 (unsigned long long)b->events[b->n_events - 1]->seq);
        return -EINVAL;
    }
    if (b->oldest_seq > (uint64_t)INT64_MAX) {
        snprintf(err, err_len, "oldest_seq: %llu over 2^63-1",
                 (unsigned long long)b->oldest_seq);
        return -EINVAL;
    }
    /* A real agent's oldest_seq is at most its batch's first seq (it
     * still holds that batch), or one past its drop report when it sends
     * only the report. Anything higher would make the collector write off
     * seqs the agent has not sent yet, and ack events it then skips. */
    if (b->oldest_seq > 0 && b->n_events > 0 &&
        b->oldest_seq > b->events[0]->seq) {
        snprintf(err, err_len, "oldest_seq: %llu above the batch's first "
                 "seq %llu", (unsigned long long)b->oldest_seq,
                 (unsigned long long)b->events[0]->seq);
        return -EINVAL;
    }
    if (b->oldest_seq > 0 && b->n_events == 0 &&
        (!d || d->count == 0 || b->oldest_seq > d->last_seq + 1)) {
        snprintf(err, err_len, "oldest_seq: %llu above what the batch "
                 "reports", (unsigned long long)b->oldest_seq);
        return -EINVAL;
    }
    if (!d || d->count == 0)
        return 0;
    if (d->first_seq == 0 || d->last_seq > (uint64_t)INT64_MAX) {
        snprintf(err, err_len, "drops: seqs %llu-%llu not in 1 to 2^63-1",
                 (unsigned long long)d->first_seq,
                 (unsigned long long)d->last_seq);
        return -EINVAL;
    }
    /* Drops are events the agent no longer has: all below this batch's. */
    if (b->n_events > 0 && d->last_seq >= b->events[0]->seq) {
        snprintf(err, err_len, "drops: last seq %llu not below the batch's "
                 "first seq %llu", (unsigned long long)d->last_seq,
                 (unsigned long long)b->events[0]->seq);
        return -EINVAL;
    }
    if (d->count - 1 > d->last_seq - d->first_seq) {
        snprintf(err, err_len, "drops: count %llu over the %llu seqs of "
                 "%llu-%llu", (unsigned long long)d->count,
                 (unsigned long long)(d->last_seq - d->first_seq + 1),
                 (unsigned long long)d->first_seq,
                 (unsigned long long)d->last_seq);
        return -EINVAL;
    }
    return 0;
}

void ingest_handle(const struct collector_config *cfg, struct store *st,
                   const struct collector_cluster *cluster,
                   const uint8_t *body, size_t len, struct reply *r)
{
    Sextant__V1__Batch *b = NULL;
    Sextant__V1__Ack ack = SEXTANT__V1__ACK__INIT;
    char err[WIRE_ERR_LEN] = "";
    char detail[WIRE_ERR_LEN + 64];
    int64_t recv_ms = util_now_ms();
    uint64_t acked;
    int rc;

    rc = wire_batch_decode(body, len, (size_t)cfg->max_inflated, &b, err,
                           sizeof(err));
    if (rc == -EMSGSIZE && strncmp(err, "inflate", 7) == 0) {
        reply_error(r, 413, "body too large", err);
        goto out;
    }
    if (rc == -ENOMEM) {
        reply_error(r, 503, "out of memory", "try again later");
        goto out;
    }
    if (rc < 0) {
        reply_error(r, 400, "malformed batch", err);
        goto out;
    }
    if (strcmp(b->cluster, cluster->name) != 0) {
        snprintf(detail, sizeof(detail),
                 "token is for cluster \"%s\", batch names another",
                 cluster->name);
        reply_error(r, 403, "wrong cluster", detail);
        goto out;
    }
    if (ingest_check_seqs(b, err, sizeof(err)) < 0) {
        reply_error(r, 400, "malformed batch", err);
        goto out;
    }
    rc = store_ingest(st, b, recv_ms, &acked);
    if (rc < 0) {
        reply_error(r, 503, "store unavailable",
                     "the batch was not stored; retry");
        goto out;
    }
    ack.epoch = b->epoch;
    ack.acked_seq = acked;
    ack.received_unix_ms = recv_ms;
    if (wire_ack_encode(&ack, &r->body, &r->len) < 0) {
        reply_error(r, 500, "internal error", "cannot encode ack");
        goto out;
    }
    r->status = 200;
    r->content_type = "application/x-protobuf";
    log_msg(LOGL_DEBUG, "ingest", "%s/%s: %zu events, oldest %llu, "
            "%llu dropped, acked %llu", b->cluster, b->node, b->n_events,
            (unsigned long long)b->oldest_seq,
            (unsigned long long)(b->drops ? b->drops->count : 0),
            (unsigned long long)acked);
out:
    if (r->status != 200)
        log_msg(LOGL_WARN, "ingest", "cluster %s: %u: %s", cluster->name,
                r->status, err[0] ? err : "rejected");
    wire_batch_free(b);
}
