/* probe.h -- the one interface every probe type implements, and the event a
 * probe result becomes. Does not schedule probes (loop.c) or judge health
 * over time (that is a later state machine's job): a probe runs once and
 * reports what it saw.
 *
 * A run is started by ops->start(), which adds its transfer to the loop's
 * one CURLM handle and marks the easy handle's CURLOPT_PRIVATE with the
 * run. When curl reports that transfer done, the loop hands it back to
 * ops->finish(), which fills a probe_result and frees the run. Probe types
 * that do not use libcurl (DNS through c-ares) expose their fds and
 * timeout through the poll hooks; the loop passes those fds to
 * curl_multi_poll() as extra_fds, so there is still one loop and no thread
 * per target.
 *
 * A curl type starts, releases and reads its run through probe_curl.h,
 * which also sets the options every transfer shares.
 *
 * Adding a type: write probe_<type>.c/.h exporting its ops, add them to
 * the table in probe.c, and add its tests. Config keys, parsing and
 * per-target state all live in the type's own file. */
#ifndef SEXTANT_AGENT_PROBE_H
#define SEXTANT_AGENT_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include <yaml.h>

#include "wire.h"

/* Same numbers as sextant.v1.ProbeType, so no table maps between them. */
enum probe_type {
    PROBE_HTTP = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP,
    PROBE_TCP = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_TCP,
    PROBE_DNS = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS,
    PROBE_METRIC = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_METRIC,
    PROBE_KUBE = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_KUBE,
};

#define PROBE_ERR_LEN CURL_ERROR_SIZE   /* bytes of error text we keep */
#define PROBE_SERVED_BY_LEN 128u        /* bytes of served-by we keep */

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
    char error[PROBE_ERR_LEN];  /* "" when ok; printable ASCII only */
    struct probe_timings t;
    char served_by[PROBE_SERVED_BY_LEN];  /* "" unless configured and seen */
    int64_t cert_not_after_ms;  /* TLS leaf certificate; 0 when unknown */
    /* DNS probes: the answers this run got, heap trees as for extra
     * below (sextant__v1__dns_answer__free_unpacked); owned by the
     * result, then by the probe event built from it. */
    Sextant__V1__DnsAnswer **answers;
    size_t n_answers;
    /* Events a run adds after its probe result (a DNS answer change,
     * metric samples), in order. Each is a heap tree that
     * sextant__v1__event__free_unpacked(ev, NULL) frees: every string,
     * array and sub-message malloc()ed on its own, unset strings left as
     * protobuf_c_empty_string. Owned by the result until the loop takes
     * them; probe_result_clear() frees what is left. */
    Sextant__V1__Event **extra;
    size_t n_extra;
};

/* Replaces every byte outside printable ASCII in @s with '?': curl's
 * messages may quote what the peer sent, and the collector takes only
 * valid UTF-8. */
void probe_printable(char *s);

/* Frees the extra events and answers of @res (if any), zeroing both. */
void probe_result_clear(struct probe_result *res);
/* Appends @ev (taken, even on failure) to @res->extra; 0 or -ENOMEM. */
int probe_result_add_extra(struct probe_result *res, Sextant__V1__Event *ev);

/* Frees the config options @opts (NULL is a no-op): first each string
 * at the @n byte offsets @str_offs in it (each a char *, NULL or owned),
 * then @opts. For a type's free_opts, after what else it owns. */
void probe_opts_free(void *opts, const size_t *str_offs, size_t n);

struct agent_target;
struct probe_ops;
struct yconf;

/* The head of every in-flight run; each probe type embeds it as its first
 * member and keeps its own state after it. */
struct probe_run {
    const struct probe_ops *ops;    /* who finishes it */
    size_t slot;                    /* caller's index of the target */
    int64_t start_unix_ms;          /* wall clock at start: the event time */
};

/* For probe types that run outside libcurl (DNS through c-ares): hands a
 * finished run back to the loop, which records @res and frees nothing;
 * the probe frees @run itself after the call. */
typedef void (*probe_complete_fn)(struct probe_run *run,
                                  struct probe_result *res, void *arg);

struct probe_ops {
    enum probe_type type;
    const char *name;               /* as written in the config: "http" */

    /* -- configuration (config.c calls these) -- */
    /* Keys this type takes besides the common ones (name, type, interval,
     * timeout, healthy_after, unhealthy_after). If "url" is among them,
     * config.c parses it (http or https, libcurl's parser) into t->url;
     * if "expect_status" is, into t->expect_status. NULL-terminated. */
    const char *const *keys;
    int url_required;               /* "url" must be given */
    /* Reads the type's own keys of mapping @m (path @ctx in the file) into
     * t->opts, with yconf's one-line errors. NULL if the type has none. */
    int (*parse)(struct yconf *yc, yaml_node_t *m, const char *ctx,
                 struct agent_target *t);
    void (*free_opts)(void *opts);  /* NULL-safe; NULL if no opts */

    /* -- running (loop.c calls these) -- */
    /* Starts one run of @t (borrowed until finish or cancel). @state is
     * the target's slot for what a type keeps from run to run (the last
     * DNS answers, say): NULL at first, kept across runs and across a
     * reload that leaves the target unchanged, freed with state_free().
     * A curl type adds its transfer to @multi and sets CURLOPT_PRIVATE to
     * the run. *out belongs to the caller until finish() or cancel().
     * 0 or -errno; nothing is left in @multi on failure. */
    int (*start)(const struct agent_target *t, void **state, CURLM *multi,
                 struct probe_run **out);
    /* curl types: @easy of @run completed with @code: removes it from
     * @multi, writes @res and frees the run (takes @run). */
    void (*finish)(struct probe_run *run, CURLM *multi, CURL *easy,
                   CURLcode code, struct probe_result *res);
    /* Abandons @run: removes its transfer and frees it (takes @run). For
     * shutdown and for targets a reload changed or removed. */
    void (*cancel)(struct probe_run *run, CURLM *multi);
    void (*state_free)(void *state);    /* NULL if the type keeps none */

    /* -- types outside libcurl: the loop waits on their fds too -- */
    /* Writes up to @max fds to wait on; returns how many. */
    size_t (*poll_fds)(struct curl_waitfd *fds, size_t max);
    /* ms until the type needs poll_process() anyway; -1 for never. */
    long (*poll_timeout_ms)(void);
    /* Handles readiness (@fds as poll_fds() gave them, with revents) and
     * timeouts; calls @done for every run that finished. */
    void (*poll_process)(const struct curl_waitfd *fds, size_t n,
                         probe_complete_fn done, void *arg);
};

/* The implementation of @type, or NULL if there is none. */
const struct probe_ops *probe_ops_find(enum probe_type type);
/* Parses a config "type" value; -EINVAL for an unknown name. */
int probe_type_parse(const char *s, enum probe_type *out);
/* "http, tcp, ..." for error messages. */
const char *probe_type_names(void);
/* Every probe type, for the loop's poll hooks; *n is set to the count. */
const struct probe_ops *const *probe_ops_all(size_t *n);

/* One probe-result event with its protobuf parts side by side, so that
 * building it allocates nothing. The event points into the struct itself:
 * it must not be copied or moved after probe_event_init(). */
struct probe_event {
    Sextant__V1__Event ev;
    Sextant__V1__ProbeResult pr;
    Sextant__V1__Timings tm;
    struct probe_result res;
};

/* Frees what @pe owns (the answers it took from its result). */
void probe_event_release(struct probe_event *pe);

/* Fills @pe from @res (copied; the answers are taken: @res no longer owns
 * them). @target is borrowed, never written (it is
 * not const only because protobuf-c's string fields are not), and must
 * outlive the use of @pe->ev. */
void probe_event_init(struct probe_event *pe, char *target,
                      enum probe_type type, int64_t unix_ms,
                      struct probe_result *res);

#endif
