/* webhook.c -- the incident webhook sender (webhook.h): a bounded queue
 * of deliveries (one per URL and notification) filled by any thread, and
 * one sender thread that owns a CURLM handle, every easy handle and an
 * in-memory SQLite connection it builds the JSON bodies with. Does not
 * decide what an incident is or when to notify (the store's incident_fn
 * does) and serves no metrics itself (metrics.c calls webhook_metrics). */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define WEBHOOK_TEXT_MAX   512u     /* the "text" line */
/* An incident without its timeline is a few KiB: a queue of 1000 such
 * stays small, and one far larger is a bug, refused. */
#define WEBHOOK_MAX_JSON   (256u << 10)
#define WEBHOOK_POLL_MS    1000     /* longest sleep: retries due later
                                     * are looked at again by then */

/* One notification on its way to one URL. */
struct webhook_job {
    struct webhook_job *prev, *next;    /* queue order, oldest first */
    size_t url;                         /* index into webhook.urls */
    char *change;                       /* until the body is built */
    char *json;
    char *text;                         /* NULL: written by the sender */
    char *body;                         /* built on its first attempt */
    int attempts;
    int64_t first_us;                   /* monotonic: when queued */
    int64_t next_us;                    /* next attempt not before */
    int in_flight;                      /* the sender owns it: not a
                                         * victim of a full queue */
    CURL *easy;                         /* sender thread only */
};

struct webhook {
    struct webhook_options opt;
    char **urls;                        /* secrets: never logged */
    char **names;                       /* scheme://host:port, for logs */
    size_t n_urls;
    struct webhook_job **picks;         /* sender thread: n_urls slots */
    unsigned char *seen;                /* sender thread: n_urls flags */
    CURLM *multi;                       /* sender thread; curl_multi_wakeup
                                         * from any */
    struct curl_slist *headers;         /* read by the sender's transfers */
    sqlite3 *db;                        /* sender thread only */
    sqlite3_stmt *fields, *body;        /* prepared on db */
    pthread_t thread;
    pthread_mutex_t mu;                 /* guards what follows */
    struct webhook_job *head, *tail;
    struct webhook_stats st;            /* st.queued: jobs in the list */
    int stopping;
    int64_t stop_deadline_us;
};

void webhook_options_default(struct webhook_options *o)
{
    o->timeout_ms = 10000;
    o->connect_timeout_ms = 5000;
    o->backoff_first_ms = 1000;
    o->backoff_max_ms = 60000;
    o->max_attempts = 10;
    o->max_age_ms = 15 * 60 * 1000;
    o->queue_max = 1000;
    o->stop_grace_ms = 2000;
}

static void webhook_job_free(struct webhook_job *j)
{
    if (!j)
        return;
    free(j->change);
    free(j->json);
    free(j->text);
    free(j->body);
    free(j);
}

/* Under mu. */
static void webhook_unlink(struct webhook *wh, struct webhook_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        wh->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        wh->tail = j->prev;
    wh->st.queued--;
}

/* Under mu. */
static void webhook_append(struct webhook *wh, struct webhook_job *j)
{
    j->prev = wh->tail;
    j->next = NULL;
    if (wh->tail)
        wh->tail->next = j;
    else
        wh->head = j;
    wh->tail = j;
    wh->st.queued++;
}

/* -- building the body (sender thread) -- */

/* The Slack line, from the incident's fields. */
static void webhook_text(const char *change, sqlite3_stmt *f, char *out,
                         size_t cap)
{
    const char *svc = (const char *)sqlite3_column_text(f, 0);
    const char *region = (const char *)sqlite3_column_text(f, 1);
    const char *to = (const char *)sqlite3_column_text(f, 2);
    char what[300], rto[48] = "";

    if (!region)
        region = "?";
    if (sqlite3_column_int(f, 5))
        snprintf(what, sizeof(what), "manual failover from %s", region);
    else
        snprintf(what, sizeof(what), "%s %s", region,
                 strcmp(change, "closed") == 0 ? "failed" : "unhealthy");
    if (sqlite3_column_type(f, 3) != SQLITE_NULL)
        snprintf(rto, sizeof(rto), ", RTO %.3f s",
                 (double)sqlite3_column_int64(f, 3) / 1000.0);
    if (!svc)
        svc = "?";
    snprintf(out, cap, "Sextant: %s incident #%lld %s: %s%s%s%s", svc,
             (long long)sqlite3_column_int64(f, 4), change, what,
             to ? ", traffic moved to " : "", to ? to : "", rto);
}

/* Builds j->body from change, json and text, then drops them. 0, or
 * -EINVAL when json is not a JSON object. */
static int webhook_build(struct webhook *wh, struct webhook_job *j)
{
    char text[WEBHOOK_TEXT_MAX];
    const char *body;
    int rc = -EINVAL;

    if (sqlite3_bind_text(wh->fields, 1, j->json, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_step(wh->fields) != SQLITE_ROW)
        goto out;
    if (!j->text)
        webhook_text(j->change, wh->fields, text, sizeof(text));
    if (sqlite3_bind_text(wh->body, 1, j->change, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_text(wh->body, 2, j->json, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_text(wh->body, 3, j->text ? j->text : text, -1,
                          SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(wh->body) != SQLITE_ROW)
        goto out;
    body = (const char *)sqlite3_column_text(wh->body, 0);
    rc = -ENOMEM;
    j->body = body ? strdup(body) : NULL;
    if (!j->body)
        goto out;
    free(j->json);
    free(j->text);
    j->json = j->text = NULL;
    rc = 0;
out:
    sqlite3_reset(wh->fields);
    sqlite3_clear_bindings(wh->fields);
    sqlite3_reset(wh->body);
    sqlite3_clear_bindings(wh->body);
    return rc;
}

static size_t webhook_discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;                    /* the reply's body is not read */
}

/* An easy handle POSTing j->body to its URL. NULL: out of memory. */
static CURL *webhook_easy(struct webhook *wh, struct webhook_job *j)
{
    CURL *e = curl_easy_init();
    int bad = 0;

    if (!e)
        return NULL;
    bad |= curl_easy_setopt(e, CURLOPT_URL, wh->urls[j->url]) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t)strlen(j->body)) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, wh->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, wh->opt.timeout_ms)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                            wh->opt.connect_timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT,
                            "sextant-collector/" SEXTANT_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, webhook_discard)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, j) != CURLE_OK;
    if (bad) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

/* -- outcomes -- */

/* Whether an attempt's result is worth another: transport errors, 3xx,
 * 408, 429 and 5xx may pass; other 4xx will not. */
static int webhook_retryable(CURLcode res, long code)
{
    if (res != CURLE_OK)
        return 1;
    return code < 400 || code >= 500 || code == 408 || code == 429;
}

/* Delay before attempt @attempts + 1: backoff_first_ms doubled per
 * attempt made, capped. */
static int64_t webhook_backoff_us(const struct webhook_options *o,
                                  int attempts)
{
    int64_t ms = o->backoff_first_ms;

    for (int i = 1; i < attempts && ms < o->backoff_max_ms; i++)
        ms *= 2;
    return (ms < o->backoff_max_ms ? ms : o->backoff_max_ms) * 1000;
}

/* Settles an attempt of @j (not in the multi any more): delivered,
 * retried later or given up. @why: a failure of ours no retry can mend;
 * NULL: the transfer's result @res and HTTP answer @code decide. */
static void webhook_settle(struct webhook *wh, struct webhook_job *j,
                           CURLcode res, long code, const char *why)
{
    int64_t now = util_mono_us();
    int give_up, attempts = j->attempts;
    const char *name = wh->names[j->url];
    char status[32];

    if (!why && res == CURLE_OK && code >= 200 && code < 300) {
        pthread_mutex_lock(&wh->mu);
        wh->st.delivered++;
        webhook_unlink(wh, j);
        pthread_mutex_unlock(&wh->mu);
        webhook_job_free(j);
        return;
    }
    snprintf(status, sizeof(status), "HTTP %ld", code);
    give_up = why || !webhook_retryable(res, code) ||
              j->attempts >= wh->opt.max_attempts ||
              now - j->first_us >= wh->opt.max_age_ms * 1000LL;
    pthread_mutex_lock(&wh->mu);
    wh->st.failed_attempts++;
    if (give_up) {
        wh->st.given_up++;
        webhook_unlink(wh, j);
    } else {
        j->in_flight = 0;
        j->next_us = now + webhook_backoff_us(&wh->opt, j->attempts);
    }
    pthread_mutex_unlock(&wh->mu);
    if (!why)
        why = res != CURLE_OK ? curl_easy_strerror(res) : status;
    /* Waiting again, @j is no longer ours: a full queue may drop it. */
    log_msg(give_up ? LOGL_WARN : LOGL_INFO, "webhook", "%s: attempt %d "
            "failed: %s%s", name, attempts, why,
            give_up ? "; given up" : "; will retry");
    if (give_up)
        webhook_job_free(j);
}

/* Starts an attempt of picked job @j: 0, or 1 when it could not start
 * and is settled already. */
static int webhook_begin(struct webhook *wh, struct webhook_job *j)
{
    j->attempts++;
    if (!j->body && webhook_build(wh, j) < 0) {
        webhook_settle(wh, j, CURLE_OK, 0, "the incident is not a JSON "
                       "object");
        return 1;
    }
    j->easy = webhook_easy(wh, j);
    if (!j->easy || curl_multi_add_handle(wh->multi, j->easy) != CURLM_OK) {
        curl_easy_cleanup(j->easy);
        j->easy = NULL;
        webhook_settle(wh, j, CURLE_OUT_OF_MEMORY, 0, NULL);
        return 1;
    }
    return 0;
}

/* Settles every finished transfer; returns how many. */
static int webhook_reap(struct webhook *wh)
{
    CURLMsg *m;
    int left, n = 0;

    while ((m = curl_multi_info_read(wh->multi, &left))) {
        struct webhook_job *j = NULL;
        CURLcode res = m->data.result;
        CURL *e = m->easy_handle;
        long code = 0;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&j);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        curl_multi_remove_handle(wh->multi, e);
        curl_easy_cleanup(e);
        j->easy = NULL;
        webhook_settle(wh, j, res, code, NULL);
        n++;
    }
    return n;
}

/* -- the sender thread -- */

/* Under mu: each URL's oldest job, if due and not in flight, is marked
 * in flight and put in wh->picks (the sender owns those, no one else may
 * free them). Returns how many; *wait_ms gets the time to the next job
 * due, *busy whether any job was in flight before. */
static size_t webhook_pick(struct webhook *wh, int64_t now, long *wait_ms,
                           int *busy)
{
    int64_t next = now + WEBHOOK_POLL_MS * 1000LL;
    size_t n = 0, seen = 0;

    *busy = 0;
    memset(wh->seen, 0, wh->n_urls);
    /* The first job met of each URL is its oldest: only it may go. */
    for (struct webhook_job *j = wh->head; j && seen < wh->n_urls;
         j = j->next) {
        if (wh->seen[j->url])
            continue;
        wh->seen[j->url] = 1;
        seen++;
        if (j->in_flight) {
            *busy = 1;
        } else if (j->next_us <= now) {
            j->in_flight = 1;
            wh->picks[n++] = j;
        } else if (j->next_us < next) {
            next = j->next_us;
        }
    }
    *wait_ms = (long)((next - now + 999) / 1000);
    return n;
}

static void *webhook_main(void *arg)
{
    struct webhook *wh = arg;

    for (;;) {
        int64_t now = util_mono_us();
        long wait_ms;
        int busy, running, settled;
        size_t n;

        pthread_mutex_lock(&wh->mu);
        n = webhook_pick(wh, now, &wait_ms, &busy);
        /* Stopping: go on while something is due or in flight, until
         * the grace period ends. */
        if (wh->stopping && (now >= wh->stop_deadline_us ||
                             (n == 0 && !busy))) {
            for (size_t i = 0; i < n; i++)
                wh->picks[i]->in_flight = 0;    /* not started */
            pthread_mutex_unlock(&wh->mu);
            break;
        }
        if (wh->stopping && wait_ms > (wh->stop_deadline_us - now) / 1000)
            wait_ms = (long)((wh->stop_deadline_us - now) / 1000) + 1;
        pthread_mutex_unlock(&wh->mu);
        settled = 0;
        for (size_t i = 0; i < n; i++)
            settled += webhook_begin(wh, wh->picks[i]);
        curl_multi_perform(wh->multi, &running);
        /* A settled job changes what is due: pick again before sleeping
         * on a wait worked out without it. */
        settled += webhook_reap(wh);
        if (settled == 0)
            curl_multi_poll(wh->multi, NULL, 0, (int)wait_ms, NULL);
    }
    /* Abort what is in flight: removing a handle ends its transfer. */
    pthread_mutex_lock(&wh->mu);
    for (struct webhook_job *j = wh->head; j; j = j->next)
        if (j->easy) {
            curl_multi_remove_handle(wh->multi, j->easy);
            curl_easy_cleanup(j->easy);
            j->easy = NULL;
            j->in_flight = 0;
        }
    pthread_mutex_unlock(&wh->mu);
    return NULL;
}

/* -- the API -- */

/* "scheme://host:port" of @url, for logs (the path may be a secret). */
static char *webhook_name(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
    size_t n;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
            CURLUE_OK) {
        n = strlen(scheme) + strlen(host) + strlen(port) + 5;
        out = malloc(n);
        if (out)
            snprintf(out, n, "%s://%s:%s", scheme, host, port);
    } else {
        out = strdup("(unparsable URL)");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

/* Frees @wh and all it holds; its thread must not be running. */
static void webhook_free(struct webhook *wh)
{
    struct webhook_job *j = wh->head, *next;

    for (; j; j = next) {
        next = j->next;
        webhook_job_free(j);
    }
    for (size_t i = 0; i < wh->n_urls; i++) {
        free(wh->urls[i]);
        free(wh->names[i]);
    }
    free(wh->urls);
    free(wh->names);
    free(wh->picks);
    free(wh->seen);
    sqlite3_finalize(wh->fields);
    sqlite3_finalize(wh->body);
    sqlite3_close(wh->db);
    if (wh->multi)
        curl_multi_cleanup(wh->multi);
    curl_slist_free_all(wh->headers);
    pthread_mutex_destroy(&wh->mu);
    free(wh);
    curl_global_cleanup();
}

/* The in-memory SQLite connection and its two statements: JSON in and
 * out the way the store does it, so a body is valid JSON or not sent. */
static int webhook_db(struct webhook *wh)
{
    static const char fields[] =
        "SELECT json_extract(?1, '$.service'), json_extract(?1, '$.region'),"
        " json_extract(?1, '$.to_region'),"
        " json_extract(?1, '$.durations_ms.rto'), json_extract(?1, '$.id'),"
        " json_extract(?1, '$.manual')"
        " WHERE json_valid(?1) AND json_type(?1) = 'object'";
    static const char body[] =
        "SELECT json_object('event', 'incident.' || ?1,"
        " 'incident', json(?2), 'text', ?3)";

    if (sqlite3_open_v2(":memory:", &wh->db, SQLITE_OPEN_READWRITE, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(wh->db, fields, -1, &wh->fields, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(wh->db, body, -1, &wh->body, NULL) != SQLITE_OK)
        return -ENOMEM;
    return 0;
}

/* Allocates @wh's per-URL arrays and copies @urls. */
static int webhook_urls(struct webhook *wh, const char *const *urls,
                        size_t n)
{
    wh->urls = calloc(n, sizeof(*wh->urls));
    wh->names = calloc(n, sizeof(*wh->names));
    wh->picks = calloc(n, sizeof(*wh->picks));
    wh->seen = calloc(n, 1);
    if (!wh->urls || !wh->names || !wh->picks || !wh->seen)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        wh->n_urls = i + 1;             /* so webhook_free sees this one */
        wh->urls[i] = strdup(urls[i]);
        wh->names[i] = webhook_name(urls[i]);
        if (!wh->urls[i] || !wh->names[i])
            return -ENOMEM;
    }
    return 0;
}

int webhook_start(const char *const *urls, size_t n,
                  const struct webhook_options *opt, struct webhook **out)
{
    struct webhook *wh;
    int rc;

    if (n == 0)
        return -EINVAL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -ENOMEM;
    wh = calloc(1, sizeof(*wh));
    if (!wh) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    pthread_mutex_init(&wh->mu, NULL);
    if (opt)
        wh->opt = *opt;
    else
        webhook_options_default(&wh->opt);
    rc = webhook_urls(wh, urls, n);
    if (rc == 0)
        rc = webhook_db(wh);
    if (rc == 0) {
        wh->multi = curl_multi_init();
        wh->headers = curl_slist_append(NULL,
                                        "Content-Type: application/json");
        if (!wh->multi || !wh->headers)
            rc = -ENOMEM;
    }
    if (rc == 0 && pthread_create(&wh->thread, NULL, webhook_main, wh) != 0)
        rc = -EAGAIN;
    if (rc < 0) {
        webhook_free(wh);
        return rc;
    }
    *out = wh;
    return 0;
}

void webhook_stop(struct webhook *wh)
{
    uint64_t left;

    if (!wh)
        return;
    pthread_mutex_lock(&wh->mu);
    wh->stopping = 1;
    wh->stop_deadline_us = util_mono_us() + wh->opt.stop_grace_ms * 1000LL;
    pthread_mutex_unlock(&wh->mu);
    curl_multi_wakeup(wh->multi);
    pthread_join(wh->thread, NULL);
    left = wh->st.queued;
    if (left)
        log_msg(LOGL_WARN, "webhook", "stopping: %" PRIu64 " deliveries "
                "not sent (%" PRIu64 " delivered, %" PRIu64 " given up, %"
                PRIu64 " dropped since start)", left, wh->st.delivered,
                wh->st.given_up, wh->st.dropped);
    webhook_free(wh);
}

/* A job for URL @url, or NULL (out of memory). */
static struct webhook_job *webhook_job_new(size_t url, const char *change,
                                           const char *json,
                                           const char *text, int64_t now)
{
    struct webhook_job *j = calloc(1, sizeof(*j));

    if (!j)
        return NULL;
    j->url = url;
    j->first_us = j->next_us = now;
    j->change = strdup(change);
    j->json = strdup(json);
    j->text = text ? strdup(text) : NULL;
    if (!j->change || !j->json || (text && !j->text)) {
        webhook_job_free(j);
        return NULL;
    }
    return j;
}

/* Under mu: makes room for one more job by dropping the oldest waiting
 * (counted). 0: there was room, 1: one was dropped, -ENOSPC: every
 * queued job is in flight (counted: the new one is what goes). */
static int webhook_make_room(struct webhook *wh)
{
    struct webhook_job *j = wh->head;

    if (wh->st.queued < wh->opt.queue_max)
        return 0;
    while (j && j->in_flight)
        j = j->next;
    wh->st.dropped++;
    if (!j)
        return -ENOSPC;
    webhook_unlink(wh, j);
    webhook_job_free(j);
    return 1;
}

int webhook_notify(struct webhook *wh, const char *change,
                   const char *incident_json, const char *text)
{
    int64_t now = util_mono_us();
    uint64_t dropped = 0;
    int rc = 0;

    if (strcmp(change, "opened") != 0 && strcmp(change, "updated") != 0 &&
        strcmp(change, "closed") != 0 && strcmp(change, "retracted") != 0)
        return -EINVAL;
    if (strlen(incident_json) > WEBHOOK_MAX_JSON ||
        (text && strlen(text) > WEBHOOK_TEXT_MAX)) {
        pthread_mutex_lock(&wh->mu);
        wh->st.dropped += wh->n_urls;
        pthread_mutex_unlock(&wh->mu);
        log_msg(LOGL_ERROR, "webhook", "%s: incident JSON or text over "
                "its cap: not sent", change);
        return -EMSGSIZE;
    }
    for (size_t u = 0; u < wh->n_urls; u++) {
        /* Built before the lock: the sender waits on it for no malloc. */
        struct webhook_job *j = webhook_job_new(u, change, incident_json,
                                                text, now);

        int room;

        pthread_mutex_lock(&wh->mu);
        room = j ? webhook_make_room(wh) : -ENOMEM;
        if (room == -ENOMEM)
            wh->st.dropped++;
        if (room < 0)
            webhook_job_free(j);
        else
            webhook_append(wh, j);
        pthread_mutex_unlock(&wh->mu);
        dropped += room != 0;
        if (room == -ENOMEM)
            rc = -ENOMEM;
    }
    if (dropped)
        log_msg(LOGL_WARN, "webhook", "%s: %" PRIu64 " deliveries dropped "
                "(queue of %zu full%s)", change, dropped, wh->opt.queue_max,
                rc < 0 ? ", or out of memory" : "");
    curl_multi_wakeup(wh->multi);
    return rc;
}

void webhook_incident_fn(void *ctx, const char *change, const char *json)
{
    webhook_notify(ctx, change, json, NULL);
}

void webhook_stats(struct webhook *wh, struct webhook_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!wh)
        return;
    pthread_mutex_lock(&wh->mu);
    *out = wh->st;
    pthread_mutex_unlock(&wh->mu);
}

void webhook_metrics(struct webhook *wh, struct jsonw *w)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } m[] = {
        { "sextant_collector_webhook_delivered_total", "counter",
          "Incident webhook deliveries answered 2xx.",
          offsetof(struct webhook_stats, delivered) },
        { "sextant_collector_webhook_failed_attempts_total", "counter",
          "Incident webhook attempts that got no 2xx (each retry counts).",
          offsetof(struct webhook_stats, failed_attempts) },
        { "sextant_collector_webhook_given_up_total", "counter",
          "Incident webhook deliveries abandoned after their attempts.",
          offsetof(struct webhook_stats, given_up) },
        { "sextant_collector_webhook_dropped_total", "counter",
          "Incident webhook deliveries dropped from a full queue.",
          offsetof(struct webhook_stats, dropped) },
        { "sextant_collector_webhook_queued", "gauge",
          "Incident webhook deliveries waiting or in flight.",
          offsetof(struct webhook_stats, queued) },
    };
    struct webhook_stats st;
    char line[512];

    webhook_stats(wh, &st);
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        uint64_t v;
        int n;

        memcpy(&v, (const char *)&st + m[i].off, sizeof(v));
        n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n"
                     "%s %" PRIu64 "\n", m[i].name, m[i].help, m[i].name,
                     m[i].type, m[i].name, v);
        jsonw_raw(w, line, (size_t)n);
    }
}
