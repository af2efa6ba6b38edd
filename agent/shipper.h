/* shipper.h -- moves events from the spool to the collector: one batch in
 * flight at a time, oldest first, as an easy handle in the loop's multi
 * handle; deletes what the collector acked; backs off on failure. Does not
 * probe, schedule or own the multi handle (loop.c does).
 *
 * Driving it: the loop calls shipper_poll() every turn (it starts a batch
 * when it may), hands back the finished transfer with shipper_done() when
 * shipper_owns() says the easy handle is ours, and sleeps no longer than
 * shipper_wait_ms(). Everything runs on the loop's thread. */
#ifndef SEXTANT_AGENT_SHIPPER_H
#define SEXTANT_AGENT_SHIPPER_H

#include <stdint.h>

#include <curl/curl.h>

struct agent_config;
struct spool;

#define SHIPPER_MAX_EVENTS   5000u          /* per batch */
#define SHIPPER_MAX_BYTES    (1u << 20)     /* packed events per batch */
#define SHIPPER_MAX_RESP     (64u << 10)    /* reply bytes we keep */
#define SHIPPER_TIMEOUT_MS   30000L         /* one POST, start to end */
#define SHIPPER_CONNECT_MS   5000L
#define SHIPPER_BACKOFF_MIN  1000L          /* ms; doubles per failure */
#define SHIPPER_BACKOFF_MAX  60000L

struct shipper;                             /* opaque outside shipper.c */

/* @cfg and @sp are borrowed and must outlive the shipper. */
int shipper_new(const struct agent_config *cfg, struct spool *sp,
                struct shipper **out);
/* Points the shipper at a reloaded config (same collector, token and
 * identity: a reload refuses to change those); @cfg is borrowed. */
void shipper_set_config(struct shipper *sh, const struct agent_config *cfg);
/* Aborts a batch in flight (its events stay in the spool). NULL is a
 * no-op. */
void shipper_free(struct shipper *sh, CURLM *multi);

/* Starts a batch if none is in flight, no backoff is pending and the spool
 * has events; @now_us is util_mono_us(). 0, or -errno if the spool could
 * not be read or the batch built (logged here; the shipper backs off). */
int shipper_poll(struct shipper *sh, CURLM *multi, int64_t now_us);
/* Whether @easy is the shipper's transfer. */
int shipper_owns(const struct shipper *sh, const CURL *easy);
/* The transfer finished with @code: acks or backs off, and logs. */
void shipper_done(struct shipper *sh, CURLM *multi, CURLcode code,
                  int64_t now_us);
/* Drops the batch in flight, if any; its events stay in the spool. */
void shipper_abort(struct shipper *sh, CURLM *multi);
/* Forgets a pending backoff, so the next poll may ship at once. */
void shipper_retry_now(struct shipper *sh);

/* How long until the shipper needs a poll for its own sake (a backoff
 * ending): ms, or -1 if it waits for nothing but curl or new events. */
long shipper_wait_ms(const struct shipper *sh, int64_t now_us);
/* Nothing in flight and the last poll found the spool empty. */
int shipper_drained(const struct shipper *sh);
/* Failed shipments since the last success. */
unsigned shipper_failures(const struct shipper *sh);

#endif
