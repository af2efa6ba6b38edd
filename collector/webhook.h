/* webhook.h -- sends incident notifications (opened, updated, closed) to
 * the URLs of the config's incidents.webhooks, as a JSON POST with a
 * Slack-compatible "text" line. One sender thread with libcurl; callers
 * only queue, so neither ingest nor the incident engine ever waits on a
 * receiver.
 *
 * Body: {"event":"incident.opened"|"incident.updated"|"incident.closed",
 *        "incident":{...as store_incident gives it...},
 *        "text":"<one line for a human>"}
 * Each URL gets each notification, in order: a URL's next notification
 * waits until its previous one is delivered or given up. A 2xx is
 * delivered. A transport error, a timeout, a 3xx (redirects are not
 * followed), 408, 429 or 5xx is retried after a backoff that doubles from
 * backoff_first_ms up to backoff_max_ms, until max_attempts or max_age_ms
 * is reached; then, and at once for any other 4xx (the receiver refuses
 * the payload: sending it again cannot help), it is given up. Every
 * outcome is counted (webhook_stats); a URL is never logged whole, since
 * a Slack webhook's path is its secret.
 *
 * Threads: webhook_notify and webhook_stats from any thread; webhook_stop
 * from the one that started it, once nothing calls webhook_notify any
 * more (stop the store first). */
#ifndef SEXTANT_COLLECTOR_WEBHOOK_H
#define SEXTANT_COLLECTOR_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "jsonw.h"

struct webhook;

struct webhook_options {
    long timeout_ms;            /* a whole request: 10 s */
    long connect_timeout_ms;    /* its connect: 5 s */
    long backoff_first_ms;      /* first retry after: 1 s */
    long backoff_max_ms;        /* doubling up to: 60 s */
    int max_attempts;           /* per URL and notification: 10 */
    long max_age_ms;            /* no attempt this long after notify:
                                 * 15 min */
    size_t queue_max;           /* deliveries waiting, all URLs: 1000 */
    long stop_grace_ms;         /* webhook_stop lets deliveries that are
                                 * due finish this long: 2 s */
};
void webhook_options_default(struct webhook_options *o);

/* Counters since start; queued is now. */
struct webhook_stats {
    uint64_t delivered;         /* answered 2xx */
    uint64_t failed_attempts;   /* attempts that were not */
    uint64_t given_up;          /* deliveries abandoned after them */
    uint64_t dropped;           /* pushed out of a full queue */
    uint64_t queued;            /* deliveries waiting or in flight */
};

/* Starts the sender for the @n URLs of @urls (copied; http or https, as
 * the config checked). @opt NULL: the defaults. 0 and *out, or -EINVAL
 * (no URL), -ENOMEM, -EAGAIN (no thread). */
int webhook_start(const char *const *urls, size_t n,
                  const struct webhook_options *opt, struct webhook **out);
/* Stops the sender: deliveries that are due get stop_grace_ms to finish,
 * then every transfer is aborted and what is left is logged as dropped.
 * Returns within about stop_grace_ms, whatever the receivers do. NULL is
 * a no-op. */
void webhook_stop(struct webhook *wh);

/* Queues @change ("opened", "updated" or "closed") of the incident
 * @incident_json (a JSON object, borrowed for the call) for every URL,
 * with @text as the "text" line, or, @text NULL, a line the sender
 * writes from the incident: service, incident id, region, where traffic
 * went and the RTO when known. Never blocks on the network; a full queue
 * drops its oldest waiting delivery (counted). 0, -EINVAL (an unknown
 * @change), -EMSGSIZE (@incident_json over 256 KiB or @text over 512
 * bytes) or -ENOMEM (both counted as dropped). store_options'
 * incident_fn is webhook_incident_fn. */
int webhook_notify(struct webhook *wh, const char *change,
                   const char *incident_json, const char *text);
/* store_options.incident_fn: webhook_notify(@ctx, change, json, NULL). */
void webhook_incident_fn(void *ctx, const char *change, const char *json);

/* The counters of @wh (NULL: all zero). */
void webhook_stats(struct webhook *wh, struct webhook_stats *out);
/* Appends the counters as Prometheus text (metrics.c's format: HELP,
 * TYPE, then the sample) to @w: sextant_collector_webhook_delivered_total,
 * _failed_attempts_total, _given_up_total, _dropped_total (counters) and
 * sextant_collector_webhook_queued (gauge). @wh NULL (no webhooks): zeros,
 * so rate() works from the first scrape. */
void webhook_metrics(struct webhook *wh, struct jsonw *w);

#endif
