/* wire.h -- the only code that touches protobuf-c, and the only zlib user
 * on network input (collector/web.c gunzips only the dashboard's own
 * embedded files). Builds, packs, deflates, inflates (with an output cap),
 * unpacks and validates the messages of sextant.proto. Agent and
 * collector both link it.
 *
 * Errors are negative errno values:
 *   -EMSGSIZE  output or input over a cap (inflate cap, string length, ...)
 *   -EBADMSG   not a valid zlib stream, truncated stream, or bad protobuf
 *   -EINVAL    decoded fine but fails validation (missing field, bad enum)
 *   -ENOMEM    allocation failed
 * Functions that take char *err write a one-line reason there on failure. */
#ifndef SEXTANT_WIRE_H
#define SEXTANT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "sextant.pb-c.h"

/* Limits on what a batch may hold; the collector's caps live here too so
 * that agent and collector agree. */
#define WIRE_MAX_BODY       (8u << 20)   /* compressed request bytes */
#define WIRE_MAX_RAW        (64u << 20)  /* after inflate: stop at the cap */
#define WIRE_MAX_EVENTS     10000u       /* per batch */
#define WIRE_MAX_STR        1024u        /* bytes in any one string field */
#define WIRE_MAX_TEXT       8192u        /* free text: error, reason, text */
#define WIRE_MAX_ANSWERS    64u          /* DNS answers per set */
#define WIRE_MAX_LABELS     32u          /* labels per metric sample */
#define WIRE_ERR_LEN        256u         /* size of an err buffer */
#define WIRE_MAX_LIVE       1024u        /* names in Ack.live_nodes */
#define WIRE_MAX_NODE       253u         /* bytes in one of them (DNS) */
#define WIRE_MAX_LIVE_BYTES (16u << 10)  /* their bytes together: the
                                          * agent keeps 64 KiB of reply */

/* Raw bytes <-> zlib stream (RFC 1950, "deflate" in HTTP). Caller frees
 * *out. wire_inflate stops with -EMSGSIZE as soon as the output would
 * exceed @cap, without allocating more than @cap + a small slack. */
int wire_deflate(const uint8_t *in, size_t len, uint8_t **out,
                 size_t *out_len);
int wire_inflate(const uint8_t *in, size_t len, size_t cap, uint8_t **out,
                 size_t *out_len);

/* Packs and deflates @b; caller frees *out. */
int wire_batch_encode(const Sextant__V1__Batch *b, uint8_t **out,
                      size_t *out_len);
/* Inflates (capped at @raw_cap), unpacks and validates. On success *out is
 * the batch; free it with wire_batch_free(). Unknown fields are accepted
 * (forward compatibility). */
int wire_batch_decode(const uint8_t *z, size_t len, size_t raw_cap,
                      Sextant__V1__Batch **out, char *err, size_t err_len);
/* Checks required fields, enum values, string lengths, counts, seq order
 * (ascending, first == first_seq), that every string is UTF-8 and that
 * identifiers (cluster, region, node, targets, DNS, metric, label and
 * failover names and regions) hold no control character (see
 * wire_name_check); free text (errors, reasons, failover text, label
 * values) may. 0 or -EINVAL / -EMSGSIZE with a reason naming the field. */
int wire_batch_validate(const Sextant__V1__Batch *b, char *err,
                        size_t err_len);
void wire_batch_free(Sextant__V1__Batch *b);   /* NULL is a no-op */

/* Whether the @n bytes of @s make a printable name: 0, -EILSEQ when not
 * UTF-8 (a NUL byte is UTF-8 and a control character), -EINVAL when it
 * holds a control character (C0, DEL or C1). Agent config, the agent's
 * CLI and the collector all check names with it. */
int wire_name_check(const char *s, size_t n);

/* The agent's spool keeps each event packed on its own; a batch is then
 * its header plus those bytes, without unpacking them again. */
struct wire_buf {
    const uint8_t *data;    /* borrowed */
    size_t len;
};
/* Packs one event; caller frees *out. */
int wire_event_pack(const Sextant__V1__Event *ev, uint8_t **out,
                    size_t *out_len);
/* Packs @hdr (its events are ignored) followed by the @n packed events as
 * Batch.events, and deflates; the result decodes exactly as if the events
 * had been in @hdr. Caller frees *out. */
int wire_batch_encode_packed(const Sextant__V1__Batch *hdr,
                             const struct wire_buf *events, size_t n,
                             uint8_t **out, size_t *out_len);

/* Ack: packed, not deflated (it is a few bytes). Caller frees *out. */
int wire_ack_encode(const Sextant__V1__Ack *a, uint8_t **out,
                    size_t *out_len);
int wire_ack_decode(const uint8_t *buf, size_t len, Sextant__V1__Ack *out);
/* The Ack's live node list, checked as the hostile input it is: at most
 * WIRE_MAX_LIVE names, each non-empty, at most WIRE_MAX_NODE bytes of
 * UTF-8 without control characters, strictly ascending (sorted, no
 * duplicates), WIRE_MAX_LIVE_BYTES in all. 0: *names is one allocation
 * (caller frees) holding *n pointers followed by the names, *hash the
 * Ack's live_nodes_hash; *n 0 and *names NULL when the Ack has no list.
 * -EBADMSG not an Ack, -EINVAL or -EMSGSIZE a bad list (nothing out). */
int wire_ack_live(const uint8_t *buf, size_t len, char ***names, size_t *n,
                  uint64_t *hash);

/* 1 if @s says its agent handed the target to other probers: to
 * HEALTH_UNKNOWN with a reason starting WIRE_HANDOFF (sextant.proto). */
#define WIRE_HANDOFF "handoff:"
int wire_state_is_handoff(const Sextant__V1__StateChange *s);

/* Name of the event's kind as stored and shown: "probe", "state", "dns",
 * "metric", "failover" (a Failover whose kind is "failover" or "manual"),
 * "marker" (any other Failover: deploy, drill, a word of the user's),
 * "lifecycle", or "unknown". */
const char *wire_event_kind(const Sextant__V1__Event *ev);

#endif
