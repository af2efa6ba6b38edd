/* store_fields.c -- an event's kind-specific fields as the events table
 * holds them: a probe result in typed columns (schema 6: 95%+ of all
 * events, so no JSON is built for them), every other kind as the JSON
 * text of the data column, with the names of the enums it writes. The
 * API renders the probe's JSON back from the columns (store_query.c,
 * and the events_full view). */
#include "store_priv.h"

#include "jsonw.h"

const char *store_health_name(Sextant__V1__Health h)
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

/* Whether @p's values fit the typed columns so that the JSON rendered
 * back from them is the very text this file would write: every timing a
 * SQLite integer (at most INT64_MAX), and no control character in
 * served_by. The API renders served_by with jsonw, as this file did, so
 * it alone would not need the rule; but the events_full view renders it
 * with SQLite's JSON functions (which write \r where jsonw writes
 * \u000d), and migration 6 keeps such a row as JSON for the same reason:
 * the rule keeps the view and both paths exact. Such a rare probe keeps
 * its JSON. */
static int store_probe_typed(const Sextant__V1__ProbeResult *p)
{
    const Sextant__V1__Timings *t = p->timings;
    const unsigned char *c = (const unsigned char *)p->served_by;

    if (t && (t->dns_us > INT64_MAX || t->connect_us > INT64_MAX ||
              t->tls_us > INT64_MAX || t->first_byte_us > INT64_MAX ||
              t->total_us > INT64_MAX))
        return 0;
    for (; c && *c; c++)
        if (*c < 0x20)
            return 0;
    return 1;
}

/* A probe result as JSON, for one that does not fit the typed columns
 * (see store_probe_typed); the error, when there is one, goes to the
 * texts table instead. */
static void store_probe_json(const Sextant__V1__ProbeResult *p,
                             struct jsonw *w)
{
    const Sextant__V1__Timings *t = p->timings;

    jsonw_key(w, "type");
    jsonw_str(w, store_probe_type_name(p->type));
    jsonw_key(w, "ok");
    jsonw_bool(w, p->ok);
    jsonw_key(w, "status");
    jsonw_int(w, p->status);
    if (!p->error[0]) {
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
}

/* A typed probe's answers, as the JSON array the texts table keeps (the
 * same text store_answers writes inside a probe's JSON). */
static void store_answers_json(const Sextant__V1__ProbeResult *p,
                               struct jsonw *w)
{
    jsonw_arr_begin(w);
    for (size_t i = 0; i < p->n_answers; i++) {
        jsonw_obj_begin(w);
        jsonw_key(w, "type");
        jsonw_str(w, p->answers[i]->type);
        jsonw_key(w, "value");
        jsonw_str(w, p->answers[i]->value);
        jsonw_key(w, "ttl");
        jsonw_uint(w, p->answers[i]->ttl);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

int store_event_fields(const Sextant__V1__Event *ev, struct jsonw *w,
                       struct store_event_row *e)
{
    const char *target = NULL;

    e->text = NULL;
    e->data = NULL;
    e->probe = NULL;
    e->answers = NULL;
    if (ev->kind_case == SEXTANT__V1__EVENT__KIND_PROBE &&
        store_probe_typed(ev->probe)) {
        const Sextant__V1__ProbeResult *p = ev->probe;

        e->probe = p;
        e->text = p->error[0] ? p->error : NULL;
        e->target = p->target[0] ? p->target : NULL;
        if (p->n_answers == 0)
            return 0;
        store_answers_json(p, w);
        e->answers = w->buf;
        return w->err;
    }
    jsonw_obj_begin(w);
    switch (ev->kind_case) {
    case SEXTANT__V1__EVENT__KIND_PROBE:
        target = ev->probe->target;
        e->text = ev->probe->error[0] ? ev->probe->error : NULL;
        store_probe_json(ev->probe, w);
        break;
    case SEXTANT__V1__EVENT__KIND_STATE:
        target = ev->state->target;
        jsonw_key(w, "from");
        jsonw_str(w, store_health_name(ev->state->from));
        jsonw_key(w, "to");
        jsonw_str(w, store_health_name(ev->state->to));
        if (ev->state->reason[0]) {
            e->text = ev->state->reason;
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
        /* Only when set: rows of events without one stay byte-identical
         * to those stored before the field existed. */
        if (ev->failover->service && ev->failover->service[0]) {
            jsonw_key(w, "service");
            jsonw_str(w, ev->failover->service);
        }
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
    e->target = target && target[0] ? target : NULL;
    e->data = w->buf;
    return w->err;
}
