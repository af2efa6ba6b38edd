/* probe_dns.c -- the DNS answer watch (probe_dns.h has the config keys and
 * the verdict): c-ares queries driven by the loop's poll hooks, a bounded
 * reader of the replies, and change detection against the answer set kept
 * in the target's state slot. Does not follow the answer (the HTTP probe
 * resolves on its own), cache answers, or apply search domains.
 *
 * Lifetimes, since c-ares has no per-query cancel: a run owns up to two
 * queries (A and AAAA for "ANY"); a query lives until c-ares calls it
 * back, which may be after its run timed out or was cancelled. The run
 * then only cuts the query's link to it, and the callback frees the query
 * without touching the run. Channels are shared by every run with the
 * same resolver and timeout and count the queries they hold, abandoned
 * ones included, so a channel outlives every callback into it. */
#include "probe_dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <ares.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define DNS_TRIES           2       /* rounds over the nameservers */
#define DNS_CHAN_IDLE_US    (60LL * 1000000)   /* an unused channel lives */
#define DNS_CHAN_MAX_AGE_US (300LL * 1000000)  /* then resolv.conf is read
                                                  again by a new channel */
#define DNS_TRUNC_WAIT_MS   10L     /* poll fds the loop had no room for */
#define DNS_MAX_NAME        253u    /* RFC 1035, without the root dot */
#define DNS_MAX_LABEL       63u
#define DNS_MAX_SERVER      64u     /* "[v6]:port" */
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

struct dns_answer {
    int type;                   /* ns_t_a, ns_t_aaaa or ns_t_cname */
    unsigned char addr[16];     /* A, AAAA: for the numeric order */
    char *value;                /* owned: address text or lower-case name */
    uint32_t ttl;
};

/* A list of answers; canonical after dns_set_canon(): sorted (A, AAAA,
 * CNAME; addresses numerically, names by byte), no duplicates, at most
 * PROBE_DNS_MAX_ANSWERS. */
struct dns_set {
    struct dns_answer *a;
    size_t n, cap;
};

/* What a target keeps from run to run, in its state slot. */
struct dns_state {
    struct dns_set last;        /* canonical: the last answer set seen */
    int have;                   /* last is a baseline (a run got answers) */
};

/* One resolver set-up (nameservers, timeout). Sharing it across targets
 * spares each query the file reads and allocations of ares_init. */
struct dns_chan {
    struct dns_chan *next;
    ares_channel ch;
    char *server;               /* as in dns_opts; NULL: the system's */
    long long timeout_ms;       /* of the targets it serves */
    size_t queries;             /* in c-ares now, abandoned ones included */
    int64_t created_us;
    int64_t idle_us;            /* when queries last dropped to 0 */
};

struct dns_run;

struct dns_query {
    struct dns_run *run;        /* NULL once the run is gone */
    struct dns_chan *chan;
    int qtype;
    unsigned idx;               /* in run->q */
};

struct dns_run {
    struct probe_run base;          /* first: the loop only sees this */
    struct dns_run *prev, *next;    /* dns_runs */
    const struct agent_target *t;   /* borrowed until delivered/cancelled */
    struct dns_state *st;           /* the target's slot; NULL: none kept */
    struct dns_query *q[2];         /* in c-ares; NULL once called back */
    int status[2];                  /* ARES_ status of each answered query */
    int qtype[2];
    size_t n_queries;
    size_t pending;                 /* queries not called back yet */
    struct dns_set got;             /* records of the replies so far */
    int64_t start_us, deadline_us;  /* monotonic */
    int64_t end_us;                 /* last reply; 0 while pending */
    char setup_err[96];             /* could not query at all: why */
};

/* Module state: all of it belongs to the loop's thread. */
static struct dns_chan *dns_chans;
static struct dns_run *dns_runs;    /* in flight, newest first */
static int dns_truncated;           /* poll_fds ran out of room */
static int dns_lib_ready;           /* ares_library_init() done */

/* ---- names, addresses and options ---- */

static int dns_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

static void dns_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
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
        dns_lower(dup);
    }
    *out = dup;
    return 0;
}

/* "ip:port", "[v6]:port", or a bare IP for port 53, into the form
 * ares_set_servers_ports_csv() reads. A name is refused: resolving the
 * resolver would need a resolver. */
static int dns_server_parse(const char *s, char **out)
{
    char host[INET6_ADDRSTRLEN + 1], ip[INET6_ADDRSTRLEN];
    char buf[DNS_MAX_SERVER], *dup;
    unsigned char bin[16];
    uint16_t port = NS_DEFAULTPORT;
    int af;

    if (inet_pton(AF_INET, s, bin) == 1) {
        af = AF_INET;
    } else if (inet_pton(AF_INET6, s, bin) == 1) {
        af = AF_INET6;
    } else {
        if (util_parse_hostport(s, host, sizeof(host), &port) < 0 ||
            port == 0)
            return -EINVAL;
        af = s[0] == '[' ? AF_INET6 : AF_INET;
        if (inet_pton(af, host, bin) != 1)
            return -EINVAL;
    }
    if (!inet_ntop(af, bin, ip, sizeof(ip)))
        return -EINVAL;
    snprintf(buf, sizeof(buf), af == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
             (unsigned)port);
    dup = strdup(buf);
    if (!dup)
        return -ENOMEM;
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

static int dns_parse_resolver(struct yconf *yc, yaml_node_t *m,
                              const char *ctx, struct dns_opts *o)
{
    char *s = NULL;
    int rc = yconf_str(yc, m, ctx, "resolver", 0, &s);

    if (rc)
        return rc;
    rc = dns_server_parse(s, &o->server);
    if (rc == -ENOMEM)
        rc = yconf_fail(yc, m, ctx, "resolver", "out of memory");
    else if (rc < 0)
        rc = yconf_fail(yc, yconf_find(yc, m, "resolver"), ctx, "resolver",
                        "expected an IP address and port, as 127.0.0.1:53 "
                        "or [::1]:53, got \"%s\"", s);
    free(s);
    return rc;
}

/* "expect": one answer, or a list of them. */
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
        rc = dns_parse_resolver(yc, m, ctx, o);
    if (rc >= 0)
        rc = dns_parse_expect(yc, m, ctx, o);
    if (rc < 0) {
        dns_opts_free(o);
        return rc;
    }
    t->opts = o;
    return 0;
}

/* ---- answer sets ---- */

static const char *dns_type_name(int type)
{
    return type == ns_t_a ? "A" : type == ns_t_aaaa ? "AAAA" : "CNAME";
}

static void dns_set_free(struct dns_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->a[i].value);
    free(s->a);
    memset(s, 0, sizeof(*s));
}

/* Appends a record; takes @value, even on failure. */
static int dns_set_add(struct dns_set *s, int type, const unsigned char *addr,
                       size_t addr_len, char *value, uint32_t ttl)
{
    struct dns_answer *a;

    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;

        a = realloc(s->a, ncap * sizeof(*a));
        if (!a) {
            free(value);
            return -ENOMEM;
        }
        s->a = a;
        s->cap = ncap;
    }
    a = &s->a[s->n++];
    memset(a, 0, sizeof(*a));
    a->type = type;
    if (addr)
        memcpy(a->addr, addr, addr_len);
    a->value = value;
    a->ttl = ttl;
    return 0;
}

static int dns_rank(int type)
{
    return type == ns_t_a ? 0 : type == ns_t_aaaa ? 1 : 2;
}

/* The canonical order; 0 means the same answer, whatever the TTL. */
static int dns_answer_cmp(const void *pa, const void *pb)
{
    const struct dns_answer *a = pa, *b = pb;

    if (dns_rank(a->type) != dns_rank(b->type))
        return dns_rank(a->type) - dns_rank(b->type);
    if (a->type != ns_t_cname)
        return memcmp(a->addr, b->addr, sizeof(a->addr));
    return strcmp(a->value, b->value);
}

/* Sorts, merges duplicates (the CNAME chain comes with both replies of
 * "ANY"; the shorter TTL wins) and keeps what one event may carry. The
 * cut comes after the sort, so it does not depend on the reply's order. */
static void dns_set_canon(struct dns_set *s)
{
    size_t j = 0;

    if (s->n == 0)
        return;
    qsort(s->a, s->n, sizeof(*s->a), dns_answer_cmp);
    for (size_t i = 0; i < s->n; i++) {
        if (j > 0 && dns_answer_cmp(&s->a[j - 1], &s->a[i]) == 0) {
            if (s->a[i].ttl < s->a[j - 1].ttl)
                s->a[j - 1].ttl = s->a[i].ttl;
            free(s->a[i].value);
        } else {
            s->a[j++] = s->a[i];
        }
    }
    s->n = j;
    if (s->n > PROBE_DNS_MAX_ANSWERS) {
        log_msg(LOGL_DEBUG, "dns", "%zu answers, keeping the first %u", s->n,
                PROBE_DNS_MAX_ANSWERS);
        while (s->n > PROBE_DNS_MAX_ANSWERS)
            free(s->a[--s->n].value);
    }
}

/* Same answers, TTLs aside; both canonical. */
static int dns_set_same(const struct dns_set *a, const struct dns_set *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (dns_answer_cmp(&a->a[i], &b->a[i]) != 0)
            return 0;
    return 1;
}

/* "A 127.0.1.1 ttl 30, ..." (or without TTLs) into @buf; "..." at the end
 * when it does not fit. */
static void dns_set_text(const struct dns_set *s, int ttl, char *buf,
                         size_t len)
{
    size_t off = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < s->n; i++) {
        const struct dns_answer *a = &s->a[i];
        int n = ttl ? snprintf(buf + off, len - off, "%s%s %s ttl %u",
                               i ? ", " : "", dns_type_name(a->type),
                               a->value, (unsigned)a->ttl)
                    : snprintf(buf + off, len - off, "%s%s %s",
                               i ? ", " : "", dns_type_name(a->type),
                               a->value);

        if (n < 0 || (size_t)n >= len - off) {
            if (len >= 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        off += (size_t)n;
    }
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

/* ---- reading replies (hostile input: every offset is checked) ---- */

static unsigned dns_u16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t dns_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* The name at @p, expanded (compression pointers are followed by c-ares,
 * which bounds them); *enc is its length at @p. Caller frees *name. */
static int dns_name_at(const unsigned char *p, const unsigned char *abuf,
                       int alen, char **name, long *enc)
{
    if (p < abuf || p >= abuf + alen)
        return ARES_EBADRESP;
    if (ares_expand_name(p, abuf, alen, name, enc) != ARES_SUCCESS)
        return ARES_EBADRESP;
    if (*enc <= 0 || *enc > (abuf + alen) - p) {
        ares_free_string(*name);
        return ARES_EBADRESP;
    }
    return ARES_SUCCESS;
}

/* One answer record of @type with @rdlen bytes at @p; ARES_ status. */
static int dns_read_rr(struct dns_set *s, int type, const unsigned char *p,
                       unsigned rdlen, const unsigned char *abuf, int alen,
                       uint32_t ttl)
{
    char buf[INET6_ADDRSTRLEN], *name = NULL, *v;
    long enc;
    int rc;

    if (type == ns_t_a || type == ns_t_aaaa) {
        int af = type == ns_t_a ? AF_INET : AF_INET6;

        if (rdlen != (type == ns_t_a ? 4u : 16u))
            return ARES_EBADRESP;
        if (!inet_ntop(af, p, buf, sizeof(buf)))
            return ARES_EBADRESP;
        v = strdup(buf);
        if (!v)
            return ARES_ENOMEM;
        return dns_set_add(s, type, p, rdlen, v, ttl) < 0 ? ARES_ENOMEM
                                                          : ARES_SUCCESS;
    }
    rc = dns_name_at(p, abuf, alen, &name, &enc);
    if (rc != ARES_SUCCESS)
        return rc;
    /* c-ares escapes unprintable bytes, so the name is printable ASCII;
     * an empty (root) or over-long target is not worth an answer. */
    if (name[0] == '\0' || strlen(name) >= WIRE_MAX_STR) {
        ares_free_string(name);
        return ARES_SUCCESS;
    }
    v = strdup(name);
    ares_free_string(name);
    if (!v)
        return ARES_ENOMEM;
    dns_lower(v);
    return dns_set_add(s, type, NULL, 0, v, ttl) < 0 ? ARES_ENOMEM
                                                     : ARES_SUCCESS;
}

/* Adds the answer records of @qtype and the CNAMEs of the chain in the
 * reply @abuf to @s; other sections and types are skipped. */
static int dns_read_reply(struct dns_set *s, int qtype,
                          const unsigned char *abuf, int alen)
{
    const unsigned char *p, *end;
    unsigned qd, an;
    char *name;
    long enc;
    int rc;

    if (!abuf || alen < NS_HFIXEDSZ)
        return ARES_EBADRESP;
    end = abuf + alen;
    qd = dns_u16(abuf + 4);
    an = dns_u16(abuf + 6);
    p = abuf + NS_HFIXEDSZ;
    for (unsigned i = 0; i < qd; i++) {
        rc = dns_name_at(p, abuf, alen, &name, &enc);
        if (rc != ARES_SUCCESS)
            return rc;
        ares_free_string(name);
        p += enc;
        if (end - p < NS_QFIXEDSZ)
            return ARES_EBADRESP;
        p += NS_QFIXEDSZ;
    }
    for (unsigned i = 0; i < an; i++) {
        unsigned type, cls, rdlen;
        uint32_t ttl;

        rc = dns_name_at(p, abuf, alen, &name, &enc);
        if (rc != ARES_SUCCESS)
            return rc;
        ares_free_string(name);
        p += enc;
        if (end - p < NS_RRFIXEDSZ)
            return ARES_EBADRESP;
        type = dns_u16(p);
        cls = dns_u16(p + 2);
        ttl = dns_u32(p + 4);
        rdlen = dns_u16(p + 8);
        p += NS_RRFIXEDSZ;
        if ((size_t)(end - p) < rdlen)
            return ARES_EBADRESP;
        if (ttl > INT32_MAX)        /* RFC 2181 5.2: treat as zero */
            ttl = 0;
        if (cls == ns_c_in && (type == (unsigned)qtype || type == ns_t_cname)
            && s->n < PROBE_DNS_MAX_RECORDS) {
            rc = dns_read_rr(s, (int)type, p, rdlen, abuf, alen, ttl);
            if (rc != ARES_SUCCESS)
                return rc;
        }
        p += rdlen;
    }
    return ARES_SUCCESS;
}

/* ---- channels ---- */

static void dns_chan_free(struct dns_chan *c)
{
    ares_destroy(c->ch);    /* calls back what it holds: ARES_EDESTRUCTION */
    free(c->server);
    free(c);
}

/* A new channel for @server (NULL: the system's) tuned for @timeout_ms;
 * on failure a reason goes to @err. */
static int dns_chan_new(const char *server, long long timeout_ms,
                        int64_t now_us, struct dns_chan **out, char *err,
                        size_t err_len)
{
    struct ares_options ao;
    struct dns_chan *c;
    int ar, rc = -ENOMEM;

    if (!dns_lib_ready) {
        ar = ares_library_init(ARES_LIB_INIT_ALL);
        if (ar != ARES_SUCCESS) {
            snprintf(err, err_len, "c-ares: %s", ares_strerror(ar));
            return ar == ARES_ENOMEM ? -ENOMEM : -EIO;
        }
        dns_lib_ready = 1;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (server) {
        c->server = strdup(server);
        if (!c->server)
            goto err;
    }
    memset(&ao, 0, sizeof(ao));
    /* c-ares waits T for the first round over the nameservers and 2T for
     * the second, so one nameserver gets a retry of a lost UDP packet and
     * still an answer within the timeout. With several nameservers it
     * takes longer; the run's own deadline ends it at the timeout. */
    ao.timeout = timeout_ms / 3 > 0 ? (int)(timeout_ms / 3) : 1;
    ao.tries = DNS_TRIES;
    /* A configured resolver is the one server the SRE wants to hear: its
     * SERVFAIL or REFUSED is the answer, not a reason to ask it again
     * (c-ares would, and then report them all as ECONNREFUSED). The
     * system's nameservers keep c-ares's failover from one to the next. */
    ao.flags = server ? ARES_FLAG_NOCHECKRESP : 0;
    ar = ares_init_options(&c->ch, &ao, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                            ARES_OPT_FLAGS);
    if (ar != ARES_SUCCESS) {
        snprintf(err, err_len, "resolver set-up: %s", ares_strerror(ar));
        rc = ar == ARES_ENOMEM ? -ENOMEM : -EIO;
        goto err;
    }
    if (server) {
        ar = ares_set_servers_ports_csv(c->ch, server);
        if (ar != ARES_SUCCESS) {
            snprintf(err, err_len, "resolver %s: %s", server,
                     ares_strerror(ar));
            rc = ar == ARES_ENOMEM ? -ENOMEM : -EINVAL;
            ares_destroy(c->ch);
            goto err;
        }
    }
    c->timeout_ms = timeout_ms;
    c->created_us = c->idle_us = now_us;
    c->next = dns_chans;
    dns_chans = c;
    *out = c;
    return 0;
err:
    free(c->server);
    free(c);
    return rc;
}

/* Destroys channels no query uses that idled for a minute or are old
 * enough that /etc/resolv.conf should be read again. */
static void dns_reap(int64_t now_us)
{
    struct dns_chan **pp = &dns_chans;

    while (*pp) {
        struct dns_chan *c = *pp;
        int idle = now_us - c->idle_us >= DNS_CHAN_IDLE_US;
        int old = now_us - c->created_us >= DNS_CHAN_MAX_AGE_US;

        if (c->queries == 0 && (idle || old)) {
            *pp = c->next;
            dns_chan_free(c);
        } else {
            pp = &c->next;
        }
    }
}

/* The channel for @server and @timeout_ms, made if there is none young
 * enough: a busy one is never idle, so age alone retires it. */
static int dns_chan_get(const char *server, long long timeout_ms,
                        int64_t now_us, struct dns_chan **out, char *err,
                        size_t err_len)
{
    for (struct dns_chan *c = dns_chans; c; c = c->next) {
        if (c->timeout_ms != timeout_ms ||
            now_us - c->created_us >= DNS_CHAN_MAX_AGE_US)
            continue;
        if ((!server && !c->server) ||
            (server && c->server && strcmp(server, c->server) == 0)) {
            *out = c;
            return 0;
        }
    }
    return dns_chan_new(server, timeout_ms, now_us, out, err, err_len);
}

void probe_dns_shutdown(void)
{
    while (dns_chans) {
        struct dns_chan *c = dns_chans;

        dns_chans = c->next;
        dns_chan_free(c);
    }
    if (dns_lib_ready) {
        ares_library_cleanup();
        dns_lib_ready = 0;
    }
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

/* Frees @r, abandoning its queries to their callbacks. */
static void dns_run_free(struct dns_run *r)
{
    for (size_t i = 0; i < 2; i++)
        if (r->q[i])
            r->q[i]->run = NULL;
    dns_set_free(&r->got);
    free(r);
}

/* c-ares is done with one query: with a reply, an error, a timeout of its
 * own, or its channel's destruction. */
static void dns_on_answer(void *arg, int status, int timeouts,
                          unsigned char *abuf, int alen)
{
    struct dns_query *q = arg;
    struct dns_run *r = q->run;

    (void)timeouts;
    if (--q->chan->queries == 0)
        q->chan->idle_us = util_mono_us();
    if (r) {
        r->q[q->idx] = NULL;
        if (status == ARES_SUCCESS)
            status = dns_read_reply(&r->got, q->qtype, abuf, alen);
        r->status[q->idx] = status;
        if (--r->pending == 0)
            r->end_us = util_mono_us();
    }
    free(q);
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
    struct dns_chan *c = NULL;
    struct dns_run *r;
    int rc;

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
    r->start_us = util_mono_us();
    r->deadline_us = r->start_us + t->timeout_ms * 1000;
    r->n_queries = dns_qtypes(o->record, r->qtype);
    for (size_t i = 0; i < r->n_queries; i++) {
        r->q[i] = calloc(1, sizeof(*r->q[i]));
        if (!r->q[i])
            goto nomem;
    }
    dns_reap(r->start_us);
    rc = dns_chan_get(o->server, t->timeout_ms, r->start_us, &c, r->setup_err,
                      sizeof(r->setup_err));
    if (rc == -ENOMEM)
        goto nomem;
    dns_link(r);
    if (rc < 0) {
        /* Not the loop's error: the target's. It shows as a failed run,
         * delivered by the next poll_process(). */
        for (size_t i = 0; i < r->n_queries; i++) {
            free(r->q[i]);
            r->q[i] = NULL;
        }
        r->end_us = r->start_us;
        *out = &r->base;
        return 0;
    }
    r->pending = r->n_queries;
    for (size_t i = 0; i < r->n_queries; i++) {
        r->q[i]->run = r;
        r->q[i]->chan = c;
        r->q[i]->qtype = r->qtype[i];
        r->q[i]->idx = (unsigned)i;
        c->queries++;
    }
    /* c-ares may call back before ares_query() returns (a send that fails
     * at once); the callback only marks the run, which poll_process()
     * delivers, so the loop never sees a result before start() returns. */
    for (size_t i = 0; i < r->n_queries; i++) {
        struct dns_query *q = r->q[i];     /* the callback may clear r->q[i] */

        ares_query(c->ch, o->query, ns_c_in, r->qtype[i], dns_on_answer, q);
    }
    *out = &r->base;
    return 0;
nomem:
    for (size_t i = 0; i < 2; i++)
        free(r->q[i]);
    free(r);
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

/* @custom: the run asked a configured resolver, so ECONNREFUSED can only
 * be the port; with the system's nameservers it is also c-ares's word for
 * "every nameserver said SERVFAIL or REFUSED". */
static const char *dns_status_text(int status, int custom)
{
    switch (status) {
    case ARES_ENOTFOUND:    return "NXDOMAIN";
    case ARES_ETIMEOUT:     return "timeout";
    case ARES_ESERVFAIL:    return "SERVFAIL";
    case ARES_EREFUSED:     return "REFUSED";
    case ARES_EFORMERR:     return "FORMERR";
    case ARES_ENOTIMP:      return "NOTIMP";
    case ARES_ECONNREFUSED: return custom ? "connection refused"
                                          : "no nameserver would answer "
                                            "(refused or failed)";
    case ARES_EBADRESP:     return "malformed reply";
    case ARES_ENOMEM:       return "out of memory";
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:   return "resolver shut down";
    default:                return ares_strerror(status);
    }
}

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
        if (dns_strdup_to(&a->type, dns_type_name(s->a[i].type)) < 0 ||
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
    if (dns_answers_pb(&r->got, &res->answers, &res->n_answers) < 0)
        log_msg(LOGL_WARN, "dns", "%s: answers not recorded: out of memory",
                r->t->name);
    if (!st)
        return;
    if (st->have && !dns_set_same(&st->last, &r->got)) {
        char was[DNS_SET_TEXT], now[DNS_SET_TEXT];
        Sextant__V1__Event *ev = dns_change_event(r->t->name, o->query,
                                                  &st->last, &r->got);

        /* Without the event the baseline stays, so the next run that
         * sees the new answers reports the change instead. */
        if (!ev || probe_result_add_extra(res, ev) < 0) {
            log_msg(LOGL_WARN, "dns", "%s: answer change not reported: out "
                    "of memory", r->t->name);
            return;
        }
        dns_set_text(&st->last, 0, was, sizeof(was));
        dns_set_text(&r->got, 0, now, sizeof(now));
        log_msg(LOGL_INFO, "dns", "%s: %s changed: [%s] -> [%s]", r->t->name,
                o->query, was, now);
    }
    dns_set_free(&st->last);
    st->last = r->got;
    memset(&r->got, 0, sizeof(r->got));
    st->have = 1;
}

/* The verdict of a run whose queries all came back. */
static void dns_verdict(struct dns_run *r, struct probe_result *res)
{
    const struct dns_opts *o = r->t->opts;
    size_t wanted = 0, bad = r->n_queries;
    char list[PROBE_ERR_LEN - 24];  /* fits after "answer not expected: " */

    dns_set_canon(&r->got);
    /* NODATA for one half of "ANY" is fine (an IPv4-only name); any other
     * error fails the run, so a half answer never looks like a change. */
    for (size_t i = 0; i < r->n_queries && bad == r->n_queries; i++)
        if (r->status[i] != ARES_SUCCESS && r->status[i] != ARES_ENODATA)
            bad = i;
    if (bad < r->n_queries && r->status[bad] == ARES_ETIMEOUT) {
        /* c-ares's own timeout, a hair before ours: the same failure. */
        snprintf(res->error, sizeof(res->error), "timeout after %lld ms",
                 r->t->timeout_ms);
        return;
    }
    if (bad < r->n_queries) {
        const char *why = dns_status_text(r->status[bad], o->server != NULL);

        if (r->n_queries > 1)
            snprintf(res->error, sizeof(res->error), "%s: %s",
                     dns_type_name(r->qtype[bad]), why);
        else
            snprintf(res->error, sizeof(res->error), "%s", why);
        return;
    }
    for (size_t i = 0; i < r->got.n; i++)
        wanted += (size_t)dns_wanted(o->record, r->got.a[i].type);
    if (wanted == 0) {
        snprintf(res->error, sizeof(res->error), "no %s records (NODATA)",
                 o->record == DNS_REC_ANY ? "A or AAAA"
                                          : dns_record_names[o->record]);
        return;
    }
    if (o->n_expect > 0 && !dns_expect_met(o, &r->got)) {
        dns_set_text(&r->got, 0, list, sizeof(list));
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
    int64_t end = r->end_us;

    memset(res, 0, sizeof(*res));
    if (r->setup_err[0]) {
        snprintf(res->error, sizeof(res->error), "%s", r->setup_err);
    } else if (r->pending > 0 || r->end_us > r->deadline_us) {
        snprintf(res->error, sizeof(res->error), "timeout after %lld ms",
                 r->t->timeout_ms);
        if (r->pending > 0)
            end = now_us;
    } else {
        dns_verdict(r, res);
    }
    dns_printable(res->error);
    if (end < r->start_us)
        end = r->start_us;
    res->t.dns_us = (uint64_t)(end - r->start_us);
    res->t.total_us = res->t.dns_us;
}

/* ---- the loop's poll hooks ---- */

static size_t dns_poll_fds(struct curl_waitfd *fds, size_t max)
{
    size_t n = 0;

    dns_truncated = 0;
    for (struct dns_chan *c = dns_chans; c; c = c->next) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits;

        if (c->queries == 0)
            continue;
        bits = ares_getsock(c->ch, socks, ARES_GETSOCK_MAXNUM);
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = 0;

            if (ARES_GETSOCK_READABLE(bits, i))
                ev |= CURL_WAIT_POLLIN;
            if (ARES_GETSOCK_WRITABLE(bits, i))
                ev |= CURL_WAIT_POLLOUT;
            if (!ev)
                break;              /* c-ares fills the slots in order */
            if (n == max) {
                dns_truncated = 1;
                return n;
            }
            fds[n].fd = socks[i];
            fds[n].events = ev;
            fds[n].revents = 0;
            n++;
        }
    }
    return n;
}

static long dns_min_wait(long w, int64_t us)
{
    long ms = us <= 0 ? 0 : (long)((us + 999) / 1000);

    return w < 0 || ms < w ? ms : w;
}

static long dns_poll_timeout_ms(void)
{
    int64_t now = util_mono_us();
    long w = -1;

    for (struct dns_run *r = dns_runs; r; r = r->next) {
        if (r->pending == 0)
            return 0;               /* done, waiting to be delivered */
        w = dns_min_wait(w, r->deadline_us - now);
    }
    for (struct dns_chan *c = dns_chans; c; c = c->next) {
        struct timeval tv, *tp;

        if (c->queries == 0)
            continue;
        tp = ares_timeout(c->ch, NULL, &tv);
        if (tp)
            w = dns_min_wait(w, (int64_t)tp->tv_sec * 1000000 + tp->tv_usec);
    }
    if (dns_truncated && (w < 0 || w > DNS_TRUNC_WAIT_MS))
        w = DNS_TRUNC_WAIT_MS;
    return w;
}

/* Lets c-ares read, write and time out on every socket it waits on, not
 * only those poll() flagged: curl_multi_poll() passes on POLLIN, POLLOUT
 * and POLLPRI of extra fds but drops POLLERR, which is how a UDP "port
 * unreachable" shows, and the loop may have had no room for all our fds.
 * A try on a socket with nothing for it costs one syscall that says
 * EAGAIN, which c-ares takes as "not yet". Callbacks only mark runs. */
static void dns_chan_process(struct dns_chan *c)
{
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(c->ch, socks, ARES_GETSOCK_MAXNUM);
    int any = 0;

    for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
        ares_socket_t rd = ARES_GETSOCK_READABLE(bits, i) ? socks[i]
                                                          : ARES_SOCKET_BAD;
        ares_socket_t wr = ARES_GETSOCK_WRITABLE(bits, i) ? socks[i]
                                                          : ARES_SOCKET_BAD;

        if (rd == ARES_SOCKET_BAD && wr == ARES_SOCKET_BAD)
            break;
        ares_process_fd(c->ch, rd, wr);
        any = 1;
    }
    if (!any)
        ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

/* The first run that is done or past its deadline, or NULL. A rescan per
 * delivery, because @done may do anything but call back into us. */
static struct dns_run *dns_next_due(int64_t now_us)
{
    for (struct dns_run *r = dns_runs; r; r = r->next)
        if (r->pending == 0 || now_us >= r->deadline_us)
            return r;
    return NULL;
}

static void dns_poll_process(const struct curl_waitfd *fds, size_t n,
                             probe_complete_fn done, void *arg)
{
    struct dns_run *r;
    int64_t now;

    (void)fds;                      /* every socket is tried: see above */
    (void)n;
    for (struct dns_chan *c = dns_chans; c; c = c->next)
        if (c->queries > 0)
            dns_chan_process(c);
    now = util_mono_us();
    while ((r = dns_next_due(now)) != NULL) {
        struct probe_result res;

        dns_unlink(r);
        dns_complete(r, now, &res);
        done(&r->base, &res, arg);
        probe_result_clear(&res);   /* what @done did not take */
        dns_run_free(r);
    }
    dns_reap(now);
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
    .poll_fds = dns_poll_fds,
    .poll_timeout_ms = dns_poll_timeout_ms,
    .poll_process = dns_poll_process,
};
