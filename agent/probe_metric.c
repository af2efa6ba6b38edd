/* probe_metric.c -- the metric scrape probe: one GET per run as an easy
 * handle in the loop's multi handle, the body kept up to a cap, parsed by
 * promtext.c, and every sample of a configured series added to the result
 * as a MetricSample event. Does not judge the values (no thresholds): the
 * collector reads replication lag into its RPO estimate. */
#include "probe_metric.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "probe_curl.h"
#include "promtext.h"
#include "util.h"
#include "yconf.h"

#define METRIC_BODY_MIN (16u << 10)     /* first buffer; grows by doubling */

/* A text exposition; anything else only if the server has nothing better.
 * Without this an exporter that speaks OpenMetrics or protobuf might pick
 * a format promtext does not read. */
#define METRIC_ACCEPT "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1"

struct metric_label {
    char *name;
    char *value;                        /* "" matches a missing label too */
};

struct metric_series {
    char *name;
    struct metric_label *labels;
    size_t n_labels;
};

struct metric_opts {
    struct metric_series *series;
    size_t n_series;                    /* 1..PROBE_METRIC_MAX_SERIES */
};

struct metric_run {
    struct probe_curl_run cr;           /* first: target, handle, errbuf */
    struct curl_slist *hdrs;            /* owned; used by easy */
    char *body;                         /* the response so far, owned */
    size_t len;
    size_t cap;                         /* allocated bytes of body */
    int body_over;                      /* stopped at PROBE_METRIC_MAX_BODY */
    int body_nomem;                     /* stopped: realloc failed */
};

/* -- configuration -- */

static const char *const metric_keys[] = { "url", "series", "expect_status",
                                           NULL };

static void metric_free_opts(void *p)
{
    struct metric_opts *o = p;

    if (!o)
        return;
    for (size_t i = 0; i < o->n_series; i++) {
        struct metric_series *s = &o->series[i];

        for (size_t j = 0; j < s->n_labels; j++) {
            free(s->labels[j].name);
            free(s->labels[j].value);
        }
        free(s->labels);
        free(s->name);
    }
    free(o->series);
    free(o);
}

/* The exposition's own grammar, so a typo fails at load, not silently at
 * every scrape. */
static int metric_valid_name(const char *s, int colon)
{
    size_t n = strlen(s);

    if (n == 0 || n > WIRE_MAX_STR)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '_' || (colon && c == ':') ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static const char *metric_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                            : NULL;
}

/* Reads the "labels" mapping @lm of series @s (context @ctx). */
static int metric_parse_labels(struct yconf *yc, yaml_node_t *lm,
                               const char *ctx, struct metric_series *s)
{
    yaml_node_pair_t *p0 = lm->data.mapping.pairs.start;
    size_t n = (size_t)(lm->data.mapping.pairs.top - p0);

    if (n > WIRE_MAX_LABELS)
        return yconf_fail(yc, lm, ctx, "labels", "%zu labels, at most %u",
                          n, WIRE_MAX_LABELS);
    if (n == 0)
        return 0;
    s->labels = calloc(n, sizeof(*s->labels));
    if (!s->labels)
        return yconf_fail(yc, lm, ctx, "labels", "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k = yaml_document_get_node(&yc->doc, p0[i].key);
        yaml_node_t *v = yaml_document_get_node(&yc->doc, p0[i].value);
        const char *ks = metric_scalar(k), *vs = metric_scalar(v);
        struct metric_label *l = &s->labels[i];

        if (!ks || !metric_valid_name(ks, 0))
            return yconf_fail(yc, k, ctx, "labels",
                              "\"%s\" is not a label name", ks ? ks : "?");
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->labels[j].name, ks) == 0)
                return yconf_fail(yc, k, ctx, "labels",
                                  "label \"%s\" given twice", ks);
        if (!vs)
            return yconf_fail(yc, v, ctx, "labels", "%s: expected a string",
                              ks);
        /* A bare "role:" is YAML's null, most likely a slip; "" says that
         * the label must be absent or empty. */
        if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (vs[0] == '\0' || strcmp(vs, "~") == 0 ||
             strcmp(vs, "null") == 0))
            return yconf_fail(yc, v, ctx, "labels", "%s: value is empty; "
                              "write \"\" to match a missing label", ks);
        if (strlen(vs) != v->data.scalar.length || strlen(vs) > WIRE_MAX_STR)
            return yconf_fail(yc, v, ctx, "labels", "%s: value has a NUL "
                              "byte or is over %u bytes", ks, WIRE_MAX_STR);
        l->name = strdup(ks);
        l->value = strdup(vs);
        s->n_labels++;                  /* so free_opts frees what is set */
        if (!l->name || !l->value)
            return yconf_fail(yc, v, ctx, "labels", "out of memory");
    }
    return 0;
}

static int metric_parse_series(struct yconf *yc, yaml_node_t *it,
                               const char *ctx, struct metric_series *s)
{
    static const char *const keys[] = { "name", "labels", NULL };
    yaml_node_t *lm = NULL;
    int rc;

    if (it->type != YAML_MAPPING_NODE)
        return yconf_fail(yc, it, ctx, NULL,
                          "expected a mapping with name and labels");
    rc = yconf_check_keys(yc, it, ctx, keys);
    if (rc == 0)
        rc = yconf_str(yc, it, ctx, "name", 1, &s->name);
    if (rc == 0 && !metric_valid_name(s->name, 1))
        rc = yconf_fail(yc, yconf_find(yc, it, "name"), ctx, "name",
                        "\"%s\" is not a metric name", s->name);
    if (rc == 0)
        rc = yconf_map(yc, it, ctx, "labels", 0, &lm);
    if (rc == 0)
        rc = metric_parse_labels(yc, lm, ctx, s);
    return rc < 0 ? rc : 0;
}

/* One item of series: the array is allocated at item 0, its size capped
 * first. */
static int metric_series_item(struct yconf *yc, const struct yconf_item *it,
                              void *arg)
{
    struct metric_opts *o = arg;

    if (it->n > PROBE_METRIC_MAX_SERIES)
        return yconf_fail(yc, it->list, it->up, it->key,
                          "%zu entries, at most %u", it->n,
                          PROBE_METRIC_MAX_SERIES);
    o->series = yconf_array(it, o->series, sizeof(*o->series));
    if (!o->series)
        return yconf_fail(yc, it->list, it->up, it->key, "out of memory");
    o->n_series = it->i + 1;            /* so free_opts frees what is set */
    return metric_parse_series(yc, it->node, it->ctx, &o->series[it->i]);
}

static int metric_parse(struct yconf *yc, yaml_node_t *m, const char *ctx,
                        struct agent_target *t)
{
    struct metric_opts *o;
    int rc;

    o = calloc(1, sizeof(*o));
    if (!o)
        return yconf_fail(yc, m, ctx, "series", "out of memory");
    rc = yconf_each(yc, m, ctx, "series", 1, YCONF_ITEMS_ANY,
                    metric_series_item, o);
    if (rc == 0) {
        t->opts = o;
        o = NULL;                       /* now the target's */
    }
    metric_free_opts(o);
    return rc < 0 ? rc : 0;
}

/* -- running -- */

static size_t metric_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct metric_run *r = arg;
    size_t n = size * nmemb;

    if (n > PROBE_METRIC_MAX_BODY - r->len) {
        r->body_over = 1;
        return 0;                       /* makes curl stop: CURLE_WRITE_ERROR */
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : METRIC_BODY_MIN;
        char *nb;

        while (cap < r->len + n)
            cap *= 2;
        if (cap > PROBE_METRIC_MAX_BODY)
            cap = PROBE_METRIC_MAX_BODY;
        nb = realloc(r->body, cap);
        if (!nb) {
            r->body_nomem = 1;
            return 0;
        }
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return n;
}

/* Connections may be reused across runs (unlike the HTTP probe): a scrape
 * measures the exporter's numbers, not the network path to it. Redirects
 * are not followed, as in the HTTP probe: a 3xx fails unless listed in
 * expect_status. Compressed bodies are accepted; the cap counts decoded
 * bytes. */
static int metric_setup(struct probe_curl_run *cr)
{
    struct metric_run *r = (struct metric_run *)cr;
    CURL *e = cr->easy;
    int bad = 0;

    if (!cr->t->opts || !cr->t->url)
        return -EINVAL;                 /* config.c always sets both */
    r->hdrs = curl_slist_append(NULL, METRIC_ACCEPT);
    if (!r->hdrs)
        return -ENOMEM;
    bad |= curl_easy_setopt(e, CURLOPT_URL, cr->t->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                            (curl_off_t)PROBE_METRIC_MAX_BODY) != CURLE_OK;
    return bad ? -EINVAL : 0;
}

static void metric_free_run(struct probe_curl_run *cr)
{
    struct metric_run *r = (struct metric_run *)cr;

    curl_slist_free_all(r->hdrs);
    free(r->body);
}

static const struct probe_curl_type metric_curl = {
    .ops = &probe_metric_ops,
    .run_size = sizeof(struct metric_run),
    .protocols = "http,https",
    .write = metric_write,
    .setup = metric_setup,
    .free_run = metric_free_run,
};

static int metric_start(const struct agent_target *t, void **state,
                        CURLM *multi, struct probe_run **out)
{
    (void)state;                        /* nothing kept between runs */
    return probe_curl_start(&metric_curl, t, multi, out);
}

/* What one scan of a body gathers. */
struct metric_scan {
    const struct metric_run *r;
    const struct metric_opts *o;
    struct probe_result *res;
    uint64_t matched;                   /* bit i: series i matched */
    size_t emitted;
    size_t dropped;                     /* matched past the per-run cap */
};

static const char *metric_label_of(const struct promtext_sample *s,
                                   const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return "";                          /* absent reads as empty, as PromQL */
}

static int metric_matches(const struct metric_series *ser,
                          const struct promtext_sample *s)
{
    if (strcmp(ser->name, s->name) != 0)
        return 0;
    for (size_t i = 0; i < ser->n_labels; i++)
        if (strcmp(metric_label_of(s, ser->labels[i].name),
                   ser->labels[i].value) != 0)
            return 0;
    return 1;
}

/* The sample as a heap tree that sextant__v1__event__free_unpacked()
 * frees, also when built only in part: strings not yet set are NULL or
 * protobuf_c_empty_string, and n_labels counts only complete labels. */
static int metric_event(const struct promtext_sample *s, const char *target,
                        int64_t unix_ms, Sextant__V1__Event **out)
{
    static const Sextant__V1__Event ev0 = SEXTANT__V1__EVENT__INIT;
    static const Sextant__V1__MetricSample ms0 =
        SEXTANT__V1__METRIC_SAMPLE__INIT;
    static const Sextant__V1__Label lb0 = SEXTANT__V1__LABEL__INIT;
    Sextant__V1__Event *ev;
    Sextant__V1__MetricSample *ms;

    ev = malloc(sizeof(*ev));
    if (!ev)
        return -ENOMEM;
    *ev = ev0;
    ev->unix_ms = unix_ms;
    ms = malloc(sizeof(*ms));
    if (!ms)
        goto err;
    *ms = ms0;
    ev->kind_case = SEXTANT__V1__EVENT__KIND_METRIC;
    ev->metric = ms;
    ms->value = s->value;
    ms->name = strdup(s->name);
    ms->target = strdup(target);
    if (!ms->name || !ms->target)
        goto err;
    if (s->n_labels > 0) {
        ms->labels = calloc(s->n_labels, sizeof(*ms->labels));
        if (!ms->labels)
            goto err;
    }
    for (size_t i = 0; i < s->n_labels; i++) {
        Sextant__V1__Label *lb = malloc(sizeof(*lb));

        if (!lb)
            goto err;
        *lb = lb0;
        ms->labels[ms->n_labels++] = lb;
        lb->name = strdup(s->labels[i].name);
        lb->value = strdup(s->labels[i].value);
        if (!lb->name || !lb->value)
            goto err;
    }
    *out = ev;
    return 0;
err:
    sextant__v1__event__free_unpacked(ev, NULL);
    return -ENOMEM;
}

static int metric_on_sample(const struct promtext_sample *s, void *arg)
{
    struct metric_scan *sc = arg;
    Sextant__V1__Event *ev;
    int any = 0, rc;

    for (size_t i = 0; i < sc->o->n_series; i++) {
        if (metric_matches(&sc->o->series[i], s)) {
            sc->matched |= (uint64_t)1 << i;
            any = 1;
        }
    }
    if (!any)
        return 0;
    if (sc->emitted == PROBE_METRIC_MAX_SAMPLES) {
        sc->dropped++;
        return 0;
    }
    rc = metric_event(s, sc->r->cr.t->name, sc->r->cr.base.start_unix_ms,
                      &ev);
    if (rc == 0)
        rc = probe_result_add_extra(sc->res, ev);
    if (rc < 0)
        return rc;
    sc->emitted++;
    return 0;
}

/* Parses the body of a good response into @res (ok, or why not). */
static void metric_scan_body(const struct metric_run *r,
                             struct probe_result *res)
{
    const struct metric_opts *o = r->cr.t->opts;
    const char *name = r->cr.t->name;
    struct metric_scan sc = { .r = r, .o = o, .res = res };
    struct promtext_stats st;
    int rc;

    rc = promtext_parse(r->body, r->len, metric_on_sample, &sc, &st);
    if (rc < 0) {
        probe_result_clear(res);
        snprintf(res->error, sizeof(res->error), "parsing the body: %s",
                 strerror(-rc));
        return;
    }
    if (st.malformed > 0)
        log_msg(LOGL_DEBUG, "metric", "%s: %zu malformed lines of %zu, "
                "first at line %zu: %s", name, st.malformed, st.lines,
                st.first_bad_line, st.first_bad_why);
    if (st.samples == 0 && st.malformed > 0) {
        snprintf(res->error, sizeof(res->error), "not a metrics exposition: "
                 "%zu malformed lines, no sample (line %zu: %s)",
                 st.malformed, st.first_bad_line, st.first_bad_why);
        return;
    }
    for (size_t i = 0; i < o->n_series; i++)
        if (!(sc.matched & ((uint64_t)1 << i)))
            log_msg(LOGL_DEBUG, "metric", "%s: series %s (%zu label "
                    "filters) matched no sample", name, o->series[i].name,
                    o->series[i].n_labels);
    if (sc.dropped > 0)
        log_msg(LOGL_WARN, "metric", "%s: %zu matching samples dropped "
                "over the cap of %u per run; narrow the label filters",
                name, sc.dropped, PROBE_METRIC_MAX_SAMPLES);
    res->ok = 1;
}

static int metric_status_ok(const struct agent_target *t, long status)
{
    if (t->n_expect_status == 0)
        return status >= 200 && status <= 299;  /* a 3xx has no metrics */
    return agent_target_status_ok(t, status);
}

static void metric_finish(struct probe_run *run, CURLM *multi, CURL *easy,
                          CURLcode code, struct probe_result *res)
{
    struct metric_run *r = (struct metric_run *)run;
    long status;

    (void)easy;                         /* one transfer per run: cr.easy */
    status = probe_curl_result(&r->cr, res);
    if (r->body_over || code == CURLE_FILESIZE_EXCEEDED) {
        snprintf(res->error, sizeof(res->error), "body over %u bytes",
                 PROBE_METRIC_MAX_BODY);
    } else if (r->body_nomem) {
        snprintf(res->error, sizeof(res->error), "body: out of memory");
    } else if (code != CURLE_OK) {
        snprintf(res->error, sizeof(res->error), "%s",
                 probe_curl_errtext(r->cr.errbuf, code));
        probe_printable(res->error);
    } else if (!metric_status_ok(r->cr.t, status)) {
        snprintf(res->error, sizeof(res->error), "status %ld not expected",
                 status);
    } else {
        metric_scan_body(r, res);
    }
    probe_curl_release(&r->cr, multi);
}

const struct probe_ops probe_metric_ops = {
    .type = PROBE_METRIC,
    .name = "metric",
    .keys = metric_keys,
    .url_required = 1,
    .parse = metric_parse,
    .free_opts = metric_free_opts,
    .start = metric_start,
    .finish = metric_finish,
    .cancel = probe_curl_cancel,
};
