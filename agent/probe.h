/* probe.h -- the one interface every probe type implements, and the event a
 * probe result becomes. Does not schedule probes (loop.c) or judge health
 * over time (that is a later state machine's job): a probe runs once and
 * reports what it saw.
 *
 * A run is started by ops->start(), which adds its transfer to the loop's
 * one CURLM handle and marks the easy handle's CURLOPT_PRIVATE with the
 * run. When curl reports that transfer done, the loop hands it back to
 * ops->finish(), which fills a probe_result and frees the run. Probe types
 * that do not use libcurl (DNS through c-ares, issue 4) will add hooks that
 * expose their fds and timeout; the loop then passes those fds to
 * curl_multi_poll() as extra_fds, so there is still one loop and no thread
 * per target. */
#ifndef SEXTANT_AGENT_PROBE_H
#define SEXTANT_AGENT_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "wire.h"

/* Same numbers as sextant.v1.ProbeType, so no table maps between them. */
enum probe_type {
    PROBE_HTTP = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP,
};

#define PROBE_ERR_LEN CURL_ERROR_SIZE   /* bytes of error text we keep */

/* Each is measured from the start of the run, as libcurl reports them;
 * 0 when the run never got that far. */
struct probe_timings {
    uint64_t dns_us;
    uint64_t connect_us;
    uint64_t tls_us;            /* 0 for plain HTTP */
    uint64_t first_byte_us;
    uint64_t total_us;
};

struct probe_result {
    int ok;
    int status;                 /* protocol status (HTTP), 0 when none */
    char error[PROBE_ERR_LEN];  /* "" when ok */
    struct probe_timings t;
};

struct agent_target;
struct probe_ops;

/* The head of every in-flight run; each probe type embeds it as its first
 * member and keeps its own state after it. */
struct probe_run {
    const struct probe_ops *ops;    /* who finishes it */
    size_t slot;                    /* caller's index of the target */
    int64_t start_unix_ms;          /* wall clock at start: the event time */
};

struct probe_ops {
    enum probe_type type;
    const char *name;               /* as written in the config: "http" */
    /* Starts one run of @t (borrowed until finish or cancel) and adds its
     * transfer to @multi. *out belongs to the caller until it is handed to
     * finish() or cancel(). 0 or -errno; nothing is left in @multi on
     * failure. */
    int (*start)(const struct agent_target *t, CURLM *multi,
                 struct probe_run **out);
    /* @easy of @run completed with @code: removes it from @multi, writes
     * @res and frees the run (takes @run). */
    void (*finish)(struct probe_run *run, CURLM *multi, CURL *easy,
                   CURLcode code, struct probe_result *res);
    /* Abandons @run: removes its transfer from @multi and frees it (takes
     * @run). For shutdown and, later, for targets removed by a reload. */
    void (*cancel)(struct probe_run *run, CURLM *multi);
};

/* The implementation of @type, or NULL if there is none. */
const struct probe_ops *probe_ops_find(enum probe_type type);
/* Parses a config "type" value; -EINVAL for an unknown name. */
int probe_type_parse(const char *s, enum probe_type *out);
/* "http, ..." for error messages. */
const char *probe_type_names(void);

/* One probe-result event with its protobuf parts side by side, so that
 * building it allocates nothing. The event points into the struct itself:
 * it must not be copied or moved after probe_event_init(). */
struct probe_event {
    Sextant__V1__Event ev;
    Sextant__V1__ProbeResult pr;
    Sextant__V1__Timings tm;
    struct probe_result res;
};

/* Fills @pe from @res (copied). @target is borrowed, never written (it is
 * not const only because protobuf-c's string fields are not), and must
 * outlive the use of @pe->ev. */
void probe_event_init(struct probe_event *pe, char *target,
                      enum probe_type type, int64_t unix_ms,
                      const struct probe_result *res);

#endif
