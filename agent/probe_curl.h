/* probe_curl.h -- the libcurl plumbing every transfer of the agent shares:
 * one function sets the options all of them need (probe_curl_common), one
 * sets TLS verification (probe_curl_tls), and one starts a probe's
 * transfer (probe_curl_start) with one error path, so the four curl probe
 * types (http, tcp, metric, kube) and the shipper cannot drift apart
 * again. Knows nothing of any type's options, verdicts or config keys:
 * each type adds its own through a setup callback.
 *
 * A curl probe type embeds struct probe_curl_run as the first member of
 * its run and describes itself once in a struct probe_curl_type:
 *
 *   struct tcp_run { struct probe_curl_run cr; };
 *   static const struct probe_curl_type tcp_curl = {
 *       .ops = &probe_tcp_ops, .run_size = sizeof(struct tcp_run),
 *       .protocols = "http", .fresh = 1, .setup = tcp_setup,
 *   };
 *   start:  probe_curl_start(&tcp_curl, t, multi, out)
 *   finish: probe_curl_result(), then probe_curl_release(cr, multi)
 *   cancel: probe_curl_cancel (as the ops' cancel itself) */
#ifndef SEXTANT_AGENT_PROBE_CURL_H
#define SEXTANT_AGENT_PROBE_CURL_H

#include <stddef.h>

#include <curl/curl.h>

#include "probe.h"

#define PROBE_CURL_USER_AGENT "sextant-agent/" SEXTANT_VERSION

/* curl's CURLOPT_SSL_VERIFYHOST value that checks the name: 1 is no
 * longer accepted and 0 turns the check off. */
#define PROBE_CURL_VERIFY_NAME 2L

/* probe_curl_start()'s answer for a run the type ended before any
 * transfer (see setup below). */
#define PROBE_CURL_EARLY 1
/* ... and for a run whose transfer the type adds to the multi handle
 * itself, later (the HTTP probe, once its own DNS lookup answered). */
#define PROBE_CURL_HOLD 2

/* The options every transfer of the agent sets, probe or shipment. */
struct probe_curl_common {
    const char *protocols;          /* CURLOPT_PROTOCOLS_STR, and the same
                                       for redirects, if a type follows
                                       them */
    long timeout_ms;                /* the whole transfer, > 0 */
    char *errbuf;                   /* CURL_ERROR_SIZE bytes, borrowed:
                                       must outlive the handle's use */
    curl_write_callback write;      /* body bytes; NULL: thrown away */
    void *write_arg;                /* borrowed, for @write */
    void *priv;                     /* CURLOPT_PRIVATE; NULL for none */
    int fresh;                      /* a new connection and DNS lookup
                                       every time: the run measures them */
    int env_proxy;                  /* honour http_proxy and friends (the
                                       shipper); probes go direct */
};

/* Sets @c on @e. 0, or -EINVAL if libcurl refused any of them (the
 * handle is then half set: the caller cleans it up). */
int probe_curl_common(CURL *e, const struct probe_curl_common *c);

/* TLS verification on @e: peer and name checked unless @verify is 0;
 * with @ca_file (borrowed; libcurl copies it) only that bundle is
 * trusted: libcurl's built-in CA path is turned off too. Plain http
 * ignores it.
 * 0 or -EINVAL. */
int probe_curl_tls(CURL *e, int verify, const char *ca_file);

struct agent_target;
struct probe_curl_type;

/* The head of every curl probe type's run. */
struct probe_curl_run {
    struct probe_run base;          /* first: the loop only sees this */
    const struct probe_curl_type *ty;   /* static: how to finish it */
    const struct agent_target *t;   /* borrowed; outlives the run */
    CURL *easy;                     /* owned; in the loop's multi once
                                       started; NULL for a run that ended
                                       early (PROBE_CURL_EARLY) */
    char errbuf[CURL_ERROR_SIZE];   /* curl's words, or the type's own for
                                       a run that ended early */
};

/* One curl probe type, as probe_curl_start() needs it. */
struct probe_curl_type {
    const struct probe_ops *ops;    /* written into each run's base */
    size_t run_size;                /* of the type's run, whose first
                                       member is struct probe_curl_run */
    const char *protocols;          /* as in probe_curl_common */
    int fresh;                      /* as in probe_curl_common */
    /* Called with the target's timeout; NULL: bytes are thrown away. Its
     * userdata is the run (struct probe_curl_run *). */
    curl_write_callback write;
    /* The type's own options on cr->easy, after the common ones. 0, or
     * PROBE_CURL_EARLY: the run failed before any transfer and the type
     * reports it itself (cr->errbuf says why), PROBE_CURL_HOLD: the handle
     * is set but stays out of the multi handle until the type adds it
     * (and the type's cancel must not remove what was never added), or
     * -errno: the start fails. Whatever it allocated into the run is freed by free_run,
     * in every case. */
    int (*setup)(struct probe_curl_run *cr);
    /* Frees what the type's part of the run owns; not the easy handle,
     * not the run. NULL if it owns nothing. */
    void (*free_run)(struct probe_curl_run *cr);
};

/* Starts one run of @t (borrowed until the run is released) for type
 * @ty: allocates the run (zeroed), creates its easy handle, sets the
 * common options, calls @ty->setup and adds the handle to @multi. 0 with
 * *out the run (its base) in @multi; PROBE_CURL_EARLY with *out a run outside
 * @multi and without an easy handle; PROBE_CURL_HOLD with *out a run
 * outside @multi, with its handle; or -ENOMEM / -EINVAL / -EIO / what
 * setup returned, with everything freed once and nothing in @multi. */
int probe_curl_start(const struct probe_curl_type *ty,
                     const struct agent_target *t, CURLM *multi,
                     struct probe_run **out);

/* Removes @cr's transfer from @multi (NULL: it was never added) and frees
 * the run with its handle and the type's part (takes @cr). */
void probe_curl_release(struct probe_curl_run *cr, CURLM *multi);
/* probe_ops.cancel for curl types that keep no list of their runs. */
void probe_curl_cancel(struct probe_run *run, CURLM *multi);

/* The start of every curl type's finish(): zeroes @res, fills its status
 * and timings from @cr's handle, and returns the status (0 if none). */
long probe_curl_result(const struct probe_curl_run *cr,
                       struct probe_result *res);
/* What went wrong with a transfer that ended with @code: its error buffer
 * @errbuf (as set with probe_curl_common) if curl said anything there,
 * else curl's text for @code. Borrowed from @errbuf or static. */
const char *probe_curl_errtext(const char *errbuf, CURLcode code);

/* @t gets libcurl's timing breakdown of @e (each 0 where the transfer
 * never got that far). */
void probe_curl_timings(CURL *e, struct probe_timings *t);

#endif
