/* shipper.h -- moves events from the spool to every configured collector
 * (fan-out): per collector one batch in flight at a time, as an easy
 * handle in the loop's multi handle, with its own backoff and its own
 * acked ranges in the spool. Batches close at shipping.batch_max_events,
 * batch_max_bytes or batch_max_age, whichever comes first; with a backlog
 * bigger than one batch they alternate newest and oldest unsent events.
 * Failures back off with full jitter and never give up; 400/413/415 set
 * the batch aside as a dead letter. Does not probe, schedule or own the
 * multi handle (loop.c does).
 *
 * Driving it: the loop calls shipper_poll() every turn (it starts batches
 * when it may), hands back each finished transfer with shipper_done()
 * when shipper_owns() says the easy handle is ours, and sleeps no longer
 * than shipper_wait_ms(). Everything runs on the loop's thread. */
#ifndef SEXTANT_AGENT_SHIPPER_H
#define SEXTANT_AGENT_SHIPPER_H

#include <stdint.h>

#include <curl/curl.h>

struct agent_config;
struct spool;

#define SHIPPER_MAX_RESP     (64u << 10)    /* reply bytes we keep */
/* One POST, start to end: a full batch (batch_max_bytes) over a slow
 * link, plus a collector's group commit under load. Longer only delays
 * the retry of a batch that is lost anyway. */
#define SHIPPER_TIMEOUT_MS   30000L
/* Connecting alone: a collector that accepts no connection in 5 s is down
 * or cut off, and backing off sooner lets the other collectors' batches
 * and the next try go ahead. */
#define SHIPPER_CONNECT_MS   5000L
/* A kept-alive connection idle longer than this is not reused: a new one
 * is opened. Below the collector's default idle close (30 s,
 * limits.connection_timeout and request_timeout), so with the defaults
 * the agent never sends into a socket the collector is closing. With a
 * shorter close on the collector, libcurl sees the closed socket before
 * reusing it, and if the close crosses the request on the wire (nothing
 * answered yet on a reused connection), libcurl itself resends it on a
 * new connection: no failure, no backoff, no lost batch. */
#define SHIPPER_MAXAGE_CONN_S 20L
/* A Retry-After is honoured up to this long; a collector (or a proxy in
 * front of it) asking for more is capped, not obeyed for days. */
#define SHIPPER_MAX_RETRY_AFTER_MS (3600LL * 1000)

struct shipper;                             /* opaque outside shipper.c */

/* @cfg and @sp are borrowed and must outlive the shipper. Makes the
 * config's collectors the spool's (spool_set_collectors()): a collector
 * no longer configured is forgotten there. */
int shipper_new(const struct agent_config *cfg, struct spool *sp,
                struct shipper **out);
/* Points the shipper at a reloaded config with the same collectors (a
 * reload refuses to change those); shipping.* limits apply from the next
 * batch. @cfg is borrowed. */
void shipper_set_config(struct shipper *sh, const struct agent_config *cfg);
/* Each batch asks for the live node list @pr holds (probers_held) and
 * each Ack hands @pr its list (probers_ack); @pr is borrowed. */
struct probers;
void shipper_set_probers(struct shipper *sh, struct probers *pr);
/* Aborts batches in flight (their events stay in the spool). NULL is a
 * no-op. */
void shipper_free(struct shipper *sh, CURLM *multi);

/* Starts a batch for each collector that has none in flight, no backoff
 * pending and a batch ready to close (or, flushing, any events at all);
 * @now_us is util_mono_us(). 0, or -errno if the spool could not be read
 * or a batch built (logged here; that collector backs off). */
int shipper_poll(struct shipper *sh, CURLM *multi, int64_t now_us);
/* Whether @easy is one of the shipper's transfers. */
int shipper_owns(const struct shipper *sh, const CURL *easy);
/* @easy finished with @code: acks, dead-letters or backs off, and logs. */
void shipper_done(struct shipper *sh, CURLM *multi, CURL *easy,
                  CURLcode code, int64_t now_us);
/* Drops every batch in flight; their events stay in the spool. */
void shipper_abort(struct shipper *sh, CURLM *multi);
/* Forgets pending backoffs, so the next poll may ship at once. */
void shipper_retry_now(struct shipper *sh);
/* Flush mode (--once draining, SIGTERM): batches go out as soon as there
 * is an event, without waiting for batch_max_age. Turning it on forgets
 * backoffs and starts shipper_settled()'s count afresh. */
void shipper_flush(struct shipper *sh, int on);

/* How long until the shipper needs a poll for its own sake (a backoff
 * ending, a batch coming of age): ms, or -1 if it waits for nothing but
 * curl or new events. */
long shipper_wait_ms(const struct shipper *sh, int64_t now_us);
/* Nothing in flight and the last poll found nothing unsent, for every
 * collector. */
int shipper_drained(const struct shipper *sh);
/* Flushing: every collector is drained or has failed once since
 * shipper_flush(sh, 1) -- a stop need not wait for a collector that is
 * down. */
int shipper_settled(const struct shipper *sh);
/* Failed shipments since the last success, summed over collectors. */
unsigned shipper_failures(const struct shipper *sh);

/* Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * the delay after @failures failures in a row (>= 1) is uniform in
 * [0, min(@cap_ms, @initial_ms * 2^(failures - 1))], drawn from @rnd.
 * Spreads the retries of many agents after a collector restart instead
 * of bringing them back in lockstep. */
int64_t shipper_backoff_ms(int64_t initial_ms, int64_t cap_ms,
                           unsigned failures, uint64_t rnd);

#endif
