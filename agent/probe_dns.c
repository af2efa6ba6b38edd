/* probe_dns.c -- the DNS answer watch (probe_dns.h has the config keys and
 * the verdict): its config, its runs (one lookup of dns_lookup.c each:
 * up to two queries, A and AAAA for "ANY", their replies merged into one
 * answer set), the verdict, and change detection against the answer set
 * kept in the target's state slot. Does not follow the answer (the HTTP
 * probe resolves on its own, http_resolve.c), cache answers, or apply
 * search domains. A run that ends before its queries (timed out,
 * cancelled) abandons them (dns_lookup_release). */
#include "probe_dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ares.h>

#include "config.h"
#include "dns_chan.h"
#include "dns_lookup.h"
#include "dns_set.h"
#include "log.h"
#include "util.h"

#define DNS_MAX_NAME        253u    /* RFC 1035, without the root dot */
#define DNS_MAX_LABEL       63u
#define DNS_SET_TEXT        512u    /* answer sets in logs and errors */

enum dns_record { DNS_REC_A, DNS_REC_AAAA, DNS_REC_CNAME, DNS_REC_ANY };

/* Config names of enum dns_record, in its order. */
static const char *const dns_record_names[] = { "A", "AAAA", "CNAME", "ANY" };

struct dns_opts {
    char *query;                /* as written, without a trailing dot */
    enum dns_record record;
    char *server;               /* "ip:port" or "[v6]:port" for c-ares;
                                   NULL: the system's nameservers */
    char **expect;              /* canonical values (dns_canon) */
    size_t n_expect;
};

/* What a target keeps from run to run, in its state slot. */
struct dns_state {
    struct dns_set last;        /* canonical: the last answer set seen */
    int have;                   /* last is a baseline (a run got answers) */
};

struct dns_run {
    struct probe_run base;          /* first: the loop only sees this */
    struct dns_run *prev, *next;    /* dns_runs */
    const struct agent_target *t;   /* borrowed until delivered/cancelled */
    struct dns_state *st;           /* the target's slot; NULL: none kept */
    /* Its queries; every reply's records merged into lk.got[0]. */
    struct dns_lookup lk;
};

/* Module state: belongs to the loop's thread. */
static struct dns_run *dns_runs;    /* in flight, newest first */

/* ---- names, addresses and options ---- */

static int dns_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* A host name as resolvers take it: labels of letters, digits, '-' and
 * '_' (service names such as _http._tcp), 1-63 bytes, 253 in all, with
 * an optional root dot. Nothing else: the name goes into logs and events. */
static int dns_name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;

    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!dns_is_alnum(c) && c != '-' && c != '_')
            return 0;
        if (++label > DNS_MAX_LABEL)
            return 0;
    }
    return label > 0;
}

/* The canonical text of an answer value, as answers are written: an
 * address as inet_ntop() prints it, a name in lower case without the root
 * dot. *out is the caller's. -EINVAL if @s is neither. */
static int dns_canon(const char *s, char **out)
{
    unsigned char bin[16];
    char buf[INET6_ADDRSTRLEN];
    const char *c = NULL;
    char *dup;
    size_t len;

    if (inet_pton(AF_INET, s, bin) == 1)
        c = inet_ntop(AF_INET, bin, buf, sizeof(buf));
    else if (inet_pton(AF_INET6, s, bin) == 1)
        c = inet_ntop(AF_INET6, bin, buf, sizeof(buf));
    else if (dns_name_ok(s))
        c = s;
    if (!c)
        return -EINVAL;
    dup = strdup(c);
    if (!dup)
        return -ENOMEM;
    len = strlen(dup);
    if (c == s) {
        if (len > 0 && dup[len - 1] == '.')
            dup[len - 1] = '\0';
        dns_set_lower(dup);
    }
    *out = dup;
    return 0;
}

static void dns_opts_free(void *p)
{
    struct dns_opts *o = p;

    if (!o)
        return;
    free(o->query);
    free(o->server);
    for (size_t i = 0; i < o->n_expect; i++)
        free(o->expect[i]);
    free(o->expect);
    free(o);
}

static int dns_parse_query(struct yconf *yc, yaml_node_t *m, const char *ctx,
                           struct dns_opts *o)
{
    size_t len;
    int rc = yconf_str(yc, m, ctx, "query", 1, &o->query);

    if (rc < 0)
        return rc;
    if (!dns_name_ok(o->query))
        return yconf_fail(yc, yconf_find(yc, m, "query"), ctx, "query",
                          "\"%s\" is not a DNS name", o->query);
    len = strlen(o->query);
    if (o->query[len - 1] == '.')
        o->query[len - 1] = '\0';
    return 0;
}

static int dns_parse_record(struct yconf *yc, yaml_node_t *m,
                            const char *ctx, struct dns_opts *o)
{
    char *s = NULL;
    int rc = yconf_str(yc, m, ctx, "record", 0, &s);

    if (rc)
        return rc;
    rc = -EINVAL;
    for (size_t i = 0; i < 4 && rc < 0; i++) {
        if (strcasecmp(s, dns_record_names[i]) == 0) {
            o->record = (enum dns_record)i;
            rc = 0;
        }
    }
    if (rc < 0)
        rc = yconf_fail(yc, yconf_find(yc, m, "record"), ctx, "record",
                        "expected A, AAAA, CNAME or ANY (A and AAAA), got "
                        "\"%s\"", s);
    free(s);
    return rc;
}

static int dns_parse_expect(struct yconf *yc, yaml_node_t *m,
                            const char *ctx, struct dns_opts *o)
{
    yaml_node_t *n = yconf_find(yc, m, "expect");
    size_t count;

    if (!n)
        return 1;
    if (n->type == YAML_SCALAR_NODE)
        count = 1;
    else if (n->type == YAML_SEQUENCE_NODE)
        count = yconf_seq_len(n);
    else
        return yconf_fail(yc, n, ctx, "expect",
                          "expected an answer or a list of answers");
    if (count == 0)
        return yconf_fail(yc, n, ctx, "expect", "empty list");
    if (count > PROBE_DNS_MAX_EXPECT)
        return yconf_fail(yc, n, ctx, "expect", "%zu answers, at most %u",
                          count, PROBE_DNS_MAX_EXPECT);
    o->expect = calloc(count, sizeof(*o->expect));
    if (!o->expect)
        return yconf_fail(yc, n, ctx, "expect", "out of memory");
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *it = n->type == YAML_SCALAR_NODE
                              ? n : yconf_seq_item(yc, n, i);
        const char *s;
        int rc;

        if (!it || it->type != YAML_SCALAR_NODE)
            return yconf_fail(yc, it ? it : n, ctx, "expect",
                              "item %zu: expected an address or a name", i);
        s = (const char *)it->data.scalar.value;
        if (strlen(s) != it->data.scalar.length)
            return yconf_fail(yc, it, ctx, "expect",
                              "item %zu: contains a NUL byte", i);
        rc = dns_canon(s, &o->expect[i]);
        if (rc == -ENOMEM)
            return yconf_fail(yc, it, ctx, "expect", "out of memory");
        if (rc < 0)
            return yconf_fail(yc, it, ctx, "expect", "item %zu: \"%s\" is "
                              "neither an IP address nor a DNS name", i, s);
        o->n_expect++;
    }
    return 0;
}

static int dns_parse(struct yconf *yc, yaml_node_t *m, const char *ctx,
                     struct agent_target *t)
{
    struct dns_opts *o = calloc(1, sizeof(*o));
    int rc;

    if (!o)
        return yconf_fail(yc, m, ctx, "query", "out of memory");
    o->record = DNS_REC_A;
    rc = dns_parse_query(yc, m, ctx, o);
    if (rc >= 0)
        rc = dns_parse_record(yc, m, ctx, o);
    if (rc >= 0)
        rc = dns_chan_parse_resolver(yc, m, ctx, &o->server);
    if (rc >= 0)
        rc = dns_parse_expect(yc, m, ctx, o);
    if (rc < 0) {
        dns_opts_free(o);
        return rc;
    }
    t->opts = o;
    return 0;
}


size_t probe_dns_state_text(const void *state, char *buf, size_t len)
{
    const struct dns_state *st = state;

    if (len > 0)
        buf[0] = '\0';
    if (!st || !st->have)
        return 0;
    dns_set_text(&st->last, 1, buf, len);
    return st->last.n;
}

/* ---- runs ---- */

static void dns_link(struct dns_run *r)
{
    r->prev = NULL;
    r->next = dns_runs;
    if (dns_runs)
        dns_runs->prev = r;
    dns_runs = r;
}

static void dns_unlink(struct dns_run *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        dns_runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Frees @r, abandoning the queries still in flight. */
static void dns_run_free(struct dns_run *r)
{
    dns_lookup_release(&r->lk);
    free(r);
}

static size_t dns_qtypes(enum dns_record rec, int *types)
{
    switch (rec) {
    case DNS_REC_AAAA:
        types[0] = ns_t_aaaa;
        return 1;
    case DNS_REC_CNAME:
        types[0] = ns_t_cname;
        return 1;
    case DNS_REC_ANY:
        types[0] = ns_t_a;
        types[1] = ns_t_aaaa;
        return 2;
    case DNS_REC_A:
    default:
        types[0] = ns_t_a;
        return 1;
    }
}

static int dns_start(const struct agent_target *t, void **state,
                     CURLM *multi, struct probe_run **out)
{
    const struct dns_opts *o = t->opts;
    int qtypes[DNS_LOOKUP_MAX];
    struct dns_run *r;
    size_t n;

    (void)multi;                    /* c-ares, not curl */
    if (!o)
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->base.ops = &probe_dns_ops;
    r->base.start_unix_ms = util_now_ms();
    r->t = t;
    if (state) {
        if (!*state)
            *state = calloc(1, sizeof(struct dns_state));
        if (!*state)
            goto nomem;
        r->st = *state;
    }
    /* A set-up failure is the target's, not the loop's: the run ends at
     * once and poll_process() delivers it. */
    n = dns_qtypes(o->record, qtypes);
    if (dns_lookup_send(&r->lk, o->server, t->timeout_ms, o->query, qtypes,
                        n, 1) < 0)
        goto nomem;
    dns_link(r);
    *out = &r->base;
    return 0;
nomem:
    dns_run_free(r);
    return -ENOMEM;
}

static void dns_cancel(struct probe_run *run, CURLM *multi)
{
    struct dns_run *r = (struct dns_run *)run;

    (void)multi;
    dns_unlink(r);
    dns_run_free(r);
}

static void dns_state_free(void *p)
{
    struct dns_state *st = p;

    if (!st)
        return;
    dns_set_free(&st->last);
    free(st);
}

/* ---- verdict and change events ---- */

static int dns_wanted(enum dns_record rec, int type)
{
    switch (rec) {
    case DNS_REC_AAAA:  return type == ns_t_aaaa;
    case DNS_REC_CNAME: return type == ns_t_cname;
    case DNS_REC_ANY:   return type == ns_t_a || type == ns_t_aaaa;
    case DNS_REC_A:
    default:            return type == ns_t_a;
    }
}

static int dns_expect_met(const struct dns_opts *o, const struct dns_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        for (size_t j = 0; j < o->n_expect; j++)
            if (strcmp(s->a[i].value, o->expect[j]) == 0)
                return 1;
    return 0;
}

static int dns_strdup_to(char **field, const char *s)
{
    char *d = strdup(s);

    if (!d)
        return -ENOMEM;
    *field = d;
    return 0;
}

/* @s as protobuf answers in *out (count in *n, kept consistent so that a
 * failure leaves a tree free_unpacked() can free). */
static int dns_answers_pb(const struct dns_set *s,
                          Sextant__V1__DnsAnswer ***out, size_t *n)
{
    Sextant__V1__DnsAnswer **arr;

    if (s->n == 0)
        return 0;
    arr = calloc(s->n, sizeof(*arr));
    if (!arr)
        return -ENOMEM;
    *out = arr;
    for (size_t i = 0; i < s->n; i++) {
        Sextant__V1__DnsAnswer *a = malloc(sizeof(*a));

        if (!a)
            return -ENOMEM;
        sextant__v1__dns_answer__init(a);
        arr[(*n)++] = a;
        if (dns_strdup_to(&a->type, dns_set_type_name(s->a[i].type)) < 0 ||
            dns_strdup_to(&a->value, s->a[i].value) < 0)
            return -ENOMEM;
        a->ttl = s->a[i].ttl;
    }
    return 0;
}

/* A DnsChange event as probe.h wants extras: a heap tree. Its time is
 * left 0 so the loop stamps it with the run's. NULL on ENOMEM. */
static Sextant__V1__Event *dns_change_event(const char *target,
                                            const char *name,
                                            const struct dns_set *old,
                                            const struct dns_set *new)
{
    Sextant__V1__Event *ev = malloc(sizeof(*ev));
    Sextant__V1__DnsChange *dc;

    if (!ev)
        return NULL;
    sextant__v1__event__init(ev);
    dc = malloc(sizeof(*dc));
    if (!dc)
        goto err;
    sextant__v1__dns_change__init(dc);
    ev->kind_case = SEXTANT__V1__EVENT__KIND_DNS;
    ev->dns = dc;
    if (dns_strdup_to(&dc->name, name) < 0 ||
        dns_strdup_to(&dc->target, target) < 0 ||
        dns_answers_pb(old, &dc->old_answers, &dc->n_old_answers) < 0 ||
        dns_answers_pb(new, &dc->new_answers, &dc->n_new_answers) < 0)
        goto err;
    return ev;
err:
    sextant__v1__event__free_unpacked(ev, NULL);
    return NULL;
}

/* The run got answers: compares them with the target's last set, adds a
 * change event to @res if they differ, and keeps them as the new last
 * set (TTLs refreshed). The first set only becomes the baseline. */
static void dns_track(struct dns_run *r, struct probe_result *res)
{
    const struct dns_opts *o = r->t->opts;
    struct dns_state *st = r->st;

    /* Every run that got answers carries them, so the collector knows
     * what the name serves without waiting for a change. */
    if (dns_answers_pb(&r->lk.got[0], &res->answers, &res->n_answers) < 0)
        log_msg(LOGL_WARN, "dns", "%s: answers not recorded: out of memory",
                r->t->name);
    if (!st)
        return;
    if (st->have && !dns_set_same(&st->last, &r->lk.got[0])) {
        char was[DNS_SET_TEXT], now[DNS_SET_TEXT];
        Sextant__V1__Event *ev = dns_change_event(r->t->name, o->query,
                                                  &st->last, &r->lk.got[0]);

        /* Without the event the baseline stays, so the next run that
         * sees the new answers reports the change instead. */
        if (!ev || probe_result_add_extra(res, ev) < 0) {
            log_msg(LOGL_WARN, "dns", "%s: answer change not reported: out "
                    "of memory", r->t->name);
            return;
        }
        dns_set_text(&st->last, 0, was, sizeof(was));
        dns_set_text(&r->lk.got[0], 0, now, sizeof(now));
        log_msg(LOGL_INFO, "dns", "%s: %s changed: [%s] -> [%s]", r->t->name,
                o->query, was, now);
    }
    dns_set_free(&st->last);
    st->last = r->lk.got[0];
    memset(&r->lk.got[0], 0, sizeof(r->lk.got[0]));
    st->have = 1;
}

/* The verdict of a run whose queries all came back. */
static void dns_verdict(struct dns_run *r, struct probe_result *res)
{
    const struct dns_opts *o = r->t->opts;
    const struct dns_lookup *l = &r->lk;
    size_t wanted = 0, bad = dns_lookup_failed(l);
    char list[PROBE_ERR_LEN - 24];  /* fits after "answer not expected: " */

    dns_set_canon(&r->lk.got[0]);
    /* NODATA for one half of "ANY" is fine (an IPv4-only name); any other
     * error fails the run, so a half answer never looks like a change. */
    if (bad < l->n && l->status[bad] == ARES_ETIMEOUT) {
        /* c-ares's own timeout, a hair before ours: the same failure. */
        snprintf(res->error, sizeof(res->error), "timeout after %lld ms",
                 r->t->timeout_ms);
        return;
    }
    if (bad < l->n) {
        const char *why = dns_chan_status_text(l->status[bad],
                                               o->server != NULL);

        if (l->n > 1)
            snprintf(res->error, sizeof(res->error), "%s: %s",
                     dns_set_type_name(l->qtype[bad]), why);
        else
            snprintf(res->error, sizeof(res->error), "%s", why);
        return;
    }
    for (size_t i = 0; i < r->lk.got[0].n; i++)
        wanted += (size_t)dns_wanted(o->record, r->lk.got[0].a[i].type);
    if (wanted == 0) {
        snprintf(res->error, sizeof(res->error), "no %s records (NODATA)",
                 o->record == DNS_REC_ANY ? "A or AAAA"
                                          : dns_record_names[o->record]);
        return;
    }
    if (o->n_expect > 0 && !dns_expect_met(o, &r->lk.got[0])) {
        dns_set_text(&r->lk.got[0], 0, list, sizeof(list));
        snprintf(res->error, sizeof(res->error), "answer not expected: %s",
                 list);
    } else {
        res->ok = 1;
    }
    dns_track(r, res);
}

/* Printable ASCII only: the collector takes valid UTF-8 and the text may
 * quote a resolver's words. */
static void dns_printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

/* Fills @res for @r, which is done or past its deadline. */
static void dns_complete(struct dns_run *r, int64_t now_us,
                         struct probe_result *res)
{
    memset(res, 0, sizeof(*res));
    if (r->lk.setup_err[0])
        snprintf(res->error, sizeof(res->error), "%s", r->lk.setup_err);
    else if (dns_lookup_late(&r->lk))
        snprintf(res->error, sizeof(res->error), "timeout after %lld ms",
                 r->t->timeout_ms);
    else
        dns_verdict(r, res);
    dns_printable(res->error);
    res->t.dns_us = dns_lookup_us(&r->lk, now_us);
    res->t.total_us = res->t.dns_us;
}


/* ---- the loop's poll hooks ---- */

static long dns_poll_timeout_ms(void)
{
    int64_t now = util_mono_us();
    long w = -1, c;

    for (struct dns_run *r = dns_runs; r; r = r->next) {
        long ms = dns_lookup_wait_ms(&r->lk, now);

        if (ms == 0)
            return 0;               /* done, waiting to be delivered */
        if (w < 0 || ms < w)
            w = ms;
    }
    c = dns_chan_poll_timeout_ms();
    return c >= 0 && (w < 0 || c < w) ? c : w;
}

/* The first run that is done or past its deadline, or NULL. A rescan per
 * delivery, because @done may do anything but call back into us. */
static struct dns_run *dns_next_due(int64_t now_us)
{
    for (struct dns_run *r = dns_runs; r; r = r->next)
        if (dns_lookup_ended(&r->lk, now_us))
            return r;
    return NULL;
}

static void dns_poll_process(const struct curl_waitfd *fds, size_t n,
                             probe_complete_fn done, void *arg)
{
    struct dns_run *r;
    int64_t now;

    (void)fds;                      /* every socket is tried: dns_chan.c */
    (void)n;
    dns_chan_process();             /* the callbacks only mark runs */
    now = util_mono_us();
    while ((r = dns_next_due(now)) != NULL) {
        struct probe_result res;

        dns_unlink(r);
        dns_complete(r, now, &res);
        done(&r->base, &res, arg);
        probe_result_clear(&res);   /* what @done did not take */
        dns_run_free(r);
    }
}

void probe_dns_shutdown(void)
{
    dns_chan_shutdown();
}

static const char *const dns_keys[] = {
    "query", "record", "resolver", "expect", NULL
};

/* No finish(): the loop calls it only for curl transfers. */
const struct probe_ops probe_dns_ops = {
    .type = PROBE_DNS,
    .name = "dns",
    .keys = dns_keys,
    .parse = dns_parse,
    .free_opts = dns_opts_free,
    .start = dns_start,
    .cancel = dns_cancel,
    .state_free = dns_state_free,
    .poll_fds = dns_chan_poll_fds,
    .poll_timeout_ms = dns_poll_timeout_ms,
    .poll_process = dns_poll_process,
};
