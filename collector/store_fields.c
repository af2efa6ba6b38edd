/* store_fields.c -- an event's kind-specific fields as the JSON text the
 * events table's data column holds, with the names of the enums it
 * writes. */
#include "store_priv.h"

#include "jsonw.h"

static const char *store_health_name(Sextant__V1__Health h)
{
    switch (h) {
    case SEXTANT__V1__HEALTH__HEALTH_HEALTHY:   return "healthy";
    case SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY: return "unhealthy";
    default:                                    return "unknown";
    }
}

static const char *store_probe_type_name(Sextant__V1__ProbeType t)
{
    switch (t) {
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP:   return "http";
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_TCP:    return "tcp";
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS:    return "dns";
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_METRIC: return "metric";
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_KUBE:   return "kube";
    default:                                         return "unknown";
    }
}

static const char *store_phase_name(Sextant__V1__LifecyclePhase p)
{
    switch (p) {
    case SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_START:  return "start";
    case SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_STOP:   return "stop";
    case SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_RELOAD: return "reload";
    default:                                                   return "unknown";
    }
}

static void store_answers(struct jsonw *w, const char *key,
                          Sextant__V1__DnsAnswer **a, size_t n)
{
    jsonw_key(w, key);
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n; i++) {
        jsonw_obj_begin(w);
        jsonw_key(w, "type");
        jsonw_str(w, a[i]->type);
        jsonw_key(w, "value");
        jsonw_str(w, a[i]->value);
        jsonw_key(w, "ttl");
        jsonw_uint(w, a[i]->ttl);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

/* Writes the kind-specific fields of @ev as one JSON object and returns the
 * event's target (borrowed from @ev, NULL when it has none). A probe's
 * error or a state change's reason that is not empty goes to *text
 * instead (borrowed; interned, and put back into the fields on reading);
 * otherwise *text is NULL. */
const char *store_event_fields(const Sextant__V1__Event *ev,
                               struct jsonw *w, const char **text)
{
    const char *target = NULL;

    *text = NULL;
    jsonw_obj_begin(w);
    switch (ev->kind_case) {
    case SEXTANT__V1__EVENT__KIND_PROBE: {
        const Sextant__V1__ProbeResult *p = ev->probe;
        const Sextant__V1__Timings *t = p->timings;

        target = p->target;
        jsonw_key(w, "type");
        jsonw_str(w, store_probe_type_name(p->type));
        jsonw_key(w, "ok");
        jsonw_bool(w, p->ok);
        jsonw_key(w, "status");
        jsonw_int(w, p->status);
        if (p->error[0]) {
            *text = p->error;
        } else {
            jsonw_key(w, "error");
            jsonw_str(w, "");
        }
        jsonw_key(w, "dns_us");
        jsonw_uint(w, t ? t->dns_us : 0);
        jsonw_key(w, "connect_us");
        jsonw_uint(w, t ? t->connect_us : 0);
        jsonw_key(w, "tls_us");
        jsonw_uint(w, t ? t->tls_us : 0);
        jsonw_key(w, "first_byte_us");
        jsonw_uint(w, t ? t->first_byte_us : 0);
        jsonw_key(w, "total_us");
        jsonw_uint(w, t ? t->total_us : 0);
        jsonw_key(w, "served_by");
        jsonw_str(w, p->served_by);
        jsonw_key(w, "cert_not_after_ms");
        jsonw_int(w, p->cert_not_after_unix_ms);
        if (p->n_answers > 0)
            store_answers(w, "answers", p->answers, p->n_answers);
        break;
    }
    case SEXTANT__V1__EVENT__KIND_STATE:
        target = ev->state->target;
        jsonw_key(w, "from");
        jsonw_str(w, store_health_name(ev->state->from));
        jsonw_key(w, "to");
        jsonw_str(w, store_health_name(ev->state->to));
        if (ev->state->reason[0]) {
            *text = ev->state->reason;
        } else {
            jsonw_key(w, "reason");
            jsonw_str(w, "");
        }
        break;
    case SEXTANT__V1__EVENT__KIND_DNS:
        target = ev->dns->target[0] ? ev->dns->target : ev->dns->name;
        jsonw_key(w, "name");
        jsonw_str(w, ev->dns->name);
        store_answers(w, "old", ev->dns->old_answers,
                      ev->dns->n_old_answers);
        store_answers(w, "new", ev->dns->new_answers,
                      ev->dns->n_new_answers);
        break;
    case SEXTANT__V1__EVENT__KIND_METRIC:
        target = ev->metric->target[0] ? ev->metric->target : NULL;
        jsonw_key(w, "name");
        jsonw_str(w, ev->metric->name);
        jsonw_key(w, "labels");
        jsonw_obj_begin(w);
        for (size_t i = 0; i < ev->metric->n_labels; i++) {
            jsonw_key(w, ev->metric->labels[i]->name);
            jsonw_str(w, ev->metric->labels[i]->value);
        }
        jsonw_obj_end(w);
        jsonw_key(w, "value");
        jsonw_double(w, ev->metric->value);
        break;
    case SEXTANT__V1__EVENT__KIND_FAILOVER:
        jsonw_key(w, "kind");
        jsonw_str(w, ev->failover->kind);
        jsonw_key(w, "from");
        jsonw_str(w, ev->failover->from_region);
        jsonw_key(w, "to");
        jsonw_str(w, ev->failover->to_region);
        jsonw_key(w, "text");
        jsonw_str(w, ev->failover->text);
        break;
    case SEXTANT__V1__EVENT__KIND_LIFECYCLE:
        jsonw_key(w, "phase");
        jsonw_str(w, store_phase_name(ev->lifecycle->phase));
        jsonw_key(w, "version");
        jsonw_str(w, ev->lifecycle->version);
        jsonw_key(w, "detail");
        jsonw_str(w, ev->lifecycle->detail);
        break;
    default:                    /* a kind from a newer agent: keep the row */
        break;
    }
    jsonw_obj_end(w);
    return target && target[0] ? target : NULL;
}
