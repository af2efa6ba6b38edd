/* probe.c -- the table of probe types and the probe-result event. Runs no
 * probe itself: each type lives in its own probe_<type>.c. */
#include "probe.h"

#include <errno.h>
#include <string.h>

#include "probe_http.h"

/* Adding a type: write probe_<type>.c, add its ops here and its name to
 * probe_type_names(). */
static const struct probe_ops *const probe_table[] = {
    &probe_http_ops,
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
    return "http";
}

void probe_event_init(struct probe_event *pe, char *target,
                      enum probe_type type, int64_t unix_ms,
                      const struct probe_result *res)
{
    static const Sextant__V1__Event ev0 = SEXTANT__V1__EVENT__INIT;
    static const Sextant__V1__ProbeResult pr0 =
        SEXTANT__V1__PROBE_RESULT__INIT;
    static const Sextant__V1__Timings tm0 = SEXTANT__V1__TIMINGS__INIT;

    pe->res = *res;
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
    pe->ev = ev0;
    pe->ev.unix_ms = unix_ms;
    pe->ev.kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    pe->ev.probe = &pe->pr;
}
