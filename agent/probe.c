/* probe.c -- the table of probe types, the probe-result event, and freeing
 * a type's config options. Runs no probe itself: each type lives in its
 * own probe_<type>.c, and the curl types start through probe_curl.c. */
#include "probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe_dns.h"
#include "probe_http.h"
#include "probe_kube.h"
#include "probe_metric.h"
#include "probe_tcp.h"

/* Adding a type: write probe_<type>.c and add its ops here. */
static const struct probe_ops *const probe_table[] = {
    &probe_dns_ops,
    &probe_http_ops,
    &probe_kube_ops,
    &probe_metric_ops,
    &probe_tcp_ops,
};

#define PROBE_N_TYPES (sizeof(probe_table) / sizeof(probe_table[0]))

const struct probe_ops *probe_ops_find(enum probe_type type)
{
    for (size_t i = 0; i < PROBE_N_TYPES; i++)
        if (probe_table[i]->type == type)
            return probe_table[i];
    return NULL;
}

int probe_type_parse(const char *s, enum probe_type *out)
{
    for (size_t i = 0; i < PROBE_N_TYPES; i++) {
        if (strcmp(probe_table[i]->name, s) == 0) {
            *out = probe_table[i]->type;
            return 0;
        }
    }
    return -EINVAL;
}

const char *probe_type_names(void)
{
    static char names[128];         /* built once, from the table */

    if (!names[0]) {
        size_t len = 0;

        for (size_t i = 0; i < PROBE_N_TYPES; i++) {
            int n = snprintf(names + len, sizeof(names) - len, "%s%s",
                             i ? ", " : "", probe_table[i]->name);
            if (n < 0 || (size_t)n >= sizeof(names) - len)
                break;
            len += (size_t)n;
        }
    }
    return names;
}

const struct probe_ops *const *probe_ops_all(size_t *n)
{
    *n = PROBE_N_TYPES;
    return probe_table;
}

void probe_opts_free(void *opts, const size_t *str_offs, size_t n)
{
    if (!opts)
        return;
    for (size_t i = 0; i < n; i++) {
        char *f;

        memcpy(&f, (char *)opts + str_offs[i], sizeof(f));
        free(f);
    }
    free(opts);
}

void probe_printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

static void probe_answers_free(Sextant__V1__DnsAnswer **a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i])
            sextant__v1__dns_answer__free_unpacked(a[i], NULL);
    free(a);
}

void probe_result_clear(struct probe_result *res)
{
    for (size_t i = 0; i < res->n_extra; i++)
        if (res->extra[i])
            sextant__v1__event__free_unpacked(res->extra[i], NULL);
    free(res->extra);
    res->extra = NULL;
    res->n_extra = 0;
    probe_answers_free(res->answers, res->n_answers);
    res->answers = NULL;
    res->n_answers = 0;
}

void probe_event_release(struct probe_event *pe)
{
    probe_answers_free(pe->res.answers, pe->res.n_answers);
    pe->res.answers = NULL;
    pe->res.n_answers = 0;
    pe->pr.answers = NULL;
    pe->pr.n_answers = 0;
}

int probe_result_add_extra(struct probe_result *res, Sextant__V1__Event *ev)
{
    Sextant__V1__Event **n;

    n = realloc(res->extra, (res->n_extra + 1) * sizeof(*n));
    if (!n) {
        sextant__v1__event__free_unpacked(ev, NULL);
        return -ENOMEM;
    }
    n[res->n_extra++] = ev;
    res->extra = n;
    return 0;
}

void probe_event_init(struct probe_event *pe, char *target,
                      enum probe_type type, int64_t unix_ms,
                      struct probe_result *res)
{
    static const Sextant__V1__Event ev0 = SEXTANT__V1__EVENT__INIT;
    static const Sextant__V1__ProbeResult pr0 =
        SEXTANT__V1__PROBE_RESULT__INIT;
    static const Sextant__V1__Timings tm0 = SEXTANT__V1__TIMINGS__INIT;

    pe->res = *res;
    pe->res.extra = NULL;           /* the loop keeps those, not the event */
    pe->res.n_extra = 0;
    res->answers = NULL;            /* taken: pe->res owns them now */
    res->n_answers = 0;
    pe->tm = tm0;
    pe->tm.dns_us = res->t.dns_us;
    pe->tm.connect_us = res->t.connect_us;
    pe->tm.tls_us = res->t.tls_us;
    pe->tm.first_byte_us = res->t.first_byte_us;
    pe->tm.total_us = res->t.total_us;
    pe->pr = pr0;
    pe->pr.target = target;
    pe->pr.type = (Sextant__V1__ProbeType)type;
    pe->pr.ok = res->ok ? 1 : 0;
    pe->pr.status = res->status;
    pe->pr.error = pe->res.error;
    pe->pr.timings = &pe->tm;
    pe->pr.served_by = pe->res.served_by;
    pe->pr.cert_not_after_unix_ms = res->cert_not_after_ms;
    pe->pr.answers = pe->res.answers;
    pe->pr.n_answers = pe->res.n_answers;
    pe->ev = ev0;
    pe->ev.unix_ms = unix_ms;
    pe->ev.kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    pe->ev.probe = &pe->pr;
}
