/* ingest.c -- decode, validate and authorize one batch; build the Ack or
 * the JSON error once the store is done with it. The body is hostile: the
 * inflate cap and the validation limits live in proto/wire.c and the
 * config. */
#include "ingest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "wire.h"

#define INGEST_EVENT_OVERHEAD 320u  /* bytes per decoded event, beyond its
                                     * packed size */

/* What proto/wire.c leaves to us: SQLite integers are signed 64 bit, so
 * every seq (and the spool backlog, stored in the agents row) must fit
 * one, and a drop report must be self-consistent (its count fits its
 * range). 0, or -EINVAL with the reason in @err. */
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
    if (b->spool_events > (uint64_t)INT64_MAX ||
        b->spool_bytes > (uint64_t)INT64_MAX) {
        snprintf(err, err_len, "spool_%s: %llu over 2^63-1",
                 b->spool_events > (uint64_t)INT64_MAX ? "events" : "bytes",
                 (unsigned long long)(b->spool_events > (uint64_t)INT64_MAX
                                          ? b->spool_events
                                          : b->spool_bytes));
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

int ingest_decode(const struct collector_config *cfg,
                  const struct collector_cluster *cluster,
                  const uint8_t *body, size_t len, Sextant__V1__Batch **out,
                  size_t *cost, struct reply *r, enum metrics_reject *why)
{
    Sextant__V1__Batch *b = NULL;
    char err[WIRE_ERR_LEN] = "";
    char detail[WIRE_ERR_LEN + 64];
    int rc;

    rc = wire_batch_decode(body, len, (size_t)cfg->max_inflated, &b, err,
                           sizeof(err));
    if (rc == -EMSGSIZE && strncmp(err, "inflate", 7) == 0) {
        *why = METRICS_REJ_TOO_LARGE;
        reply_error(r, 413, "body too large", err);
    } else if (rc == -ENOMEM) {
        *why = METRICS_REJ_NO_MEMORY;
        reply_error(r, 503, "out of memory", "try again later");
    } else if (rc < 0) {
        *why = METRICS_REJ_MALFORMED;
        reply_error(r, 400, "malformed batch", err);
    } else if (strcmp(b->cluster, cluster->name) != 0) {
        snprintf(detail, sizeof(detail),
                 "token is for cluster \"%s\", batch names another",
                 cluster->name);
        *why = METRICS_REJ_WRONG_CLUSTER;
        reply_error(r, 403, "wrong cluster", detail);
    } else if (ingest_check_seqs(b, err, sizeof(err)) < 0) {
        *why = METRICS_REJ_MALFORMED;
        reply_error(r, 400, "malformed batch", err);
    } else {
        /* What the decoded batch holds in memory: its packed size plus
         * protobuf-c's structs and pointers per event (measured: some
         * 260 bytes for a probe result), for the writer queue's byte
         * limit. */
        *cost = protobuf_c_message_get_packed_size(&b->base) +
                b->n_events * INGEST_EVENT_OVERHEAD;
        *out = b;
        return 0;
    }
    log_msg(LOGL_WARN, "ingest", "cluster %s: %u: %s", cluster->name,
            r->status, err[0] ? err : "rejected");
    wire_batch_free(b);
    return -1;
}

void ingest_reply(const Sextant__V1__Batch *b, int rc, uint64_t acked_seq,
                  int64_t recv_ms, struct live *lv,
                  const struct collector_cluster *c, struct reply *r)
{
    Sextant__V1__Ack ack = SEXTANT__V1__ACK__INIT;
    char **names = NULL;
    int erc;

    if (rc < 0) {
        log_msg(LOGL_WARN, "ingest", "%s/%s: not stored: %s", b->cluster,
                b->node, strerror(-rc));
        reply_error(r, 503, "store unavailable",
                    "the batch was not stored; retry");
        return;
    }
    ack.epoch = b->epoch;
    ack.acked_seq = acked_seq;
    ack.received_unix_ms = recv_ms;
    /* Without memory for the list the Ack goes out without it: the agent
     * keeps the list it has and asks again with the next batch. */
    if (live_reply(lv, c, b->node, b->live_nodes_hash, util_now_ms(), &ack,
                   &names) < 0)
        log_msg(LOGL_WARN, "ingest", "%s/%s: no live node list: out of "
                "memory", b->cluster, b->node);
    erc = wire_ack_encode(&ack, &r->body, &r->len);
    free(names);
    if (erc < 0) {
        reply_error(r, 500, "internal error", "cannot encode ack");
        return;
    }
    r->status = 200;
    r->content_type = "application/x-protobuf";
    log_msg(LOGL_DEBUG, "ingest", "%s/%s: %zu events, oldest %llu, "
            "%llu dropped, acked %llu", b->cluster, b->node, b->n_events,
            (unsigned long long)b->oldest_seq,
            (unsigned long long)(b->drops ? b->drops->count : 0),
            (unsigned long long)acked_seq);
}
