/* scenario_feed.c -- feeds a scenario of events with known times to a
 * collector as real agents would: zlib-deflated protobuf batches POSTed
 * to /v1/ingest with each agent's bearer token, one (cluster, node,
 * region, epoch) per declared agent, seqs 1, 2, ... in time order, and a
 * send time and previous round trip on every batch so the collector
 * learns each agent's clock offset. Made for the incident scenarios
 * (tests/scenarios/, tests/collector_incidents.sh). Not part of the
 * product; it does not read replies beyond the Ack.
 *
 * usage: scenario_feed --url URL --scn FILE [--base MS] [--margin S]
 *                      [--before S | --from S] [--span S] [--url2 URL]
 *                      [--fresh] [--pause S]... [--no-sync]
 * Prints "base MS" first (the unix ms scenario time 0 stands for), then
 * "delivered N events in M batches" (and on stderr "clock synced S
 * times in P empty batches"). Exit 0, 1 on a failed delivery, 2
 * on bad usage or a bad scenario (one line "FILE:LINE: message").
 * A POST that gets no reply, or 502, 503 or 504 (a collector or its
 * database down), is sent again every 50 ms, as an agent's spool would
 * send it, until FEED_RETRY_MS (2 minutes) of failures in a row; stderr
 * says "NAME: POST failed (WHY); retrying" when such a run starts and
 * "NAME: delivered again after MS ms" when it ends. The collector stores
 * each seq once, so a repeat of a batch it had stored changes nothing.
 *
 * Scenario file: one statement a line; '#' starts a comment line; lines
 * starting with "expect" are the test's (ignored here). Times are
 * seconds (up to ms precision, negative allowed) from the base.
 *   agent NAME cluster=C node=N region=R token=T [skew=+MS] [epoch=N]
 *       skew: the agent's clock is MS ahead (negative: behind); its event
 *       and send times carry it, and the collector's corrected time must
 *       take it out again.
 *   at SEC AGENT EVENT
 *   every STEP AGENT EVENT from SEC to SEC   (at SEC, SEC+STEP, ... < to)
 *   skew AGENT MS        (after the agent line: changes its skew)
 *   include FILE         (relative to this file's folder: its lines here)
 *   hold AGENT from SEC
 *       a partition: AGENT's events at or after SEC are delivered after
 *       every other event (in seq order, as its spool would), not in turn.
 * EVENT is one of (values with spaces in double quotes):
 *   probe TARGET ok=0|1 [type=http|tcp|dns] [status=N] [error=S]
 *         [served_by=REGION] [answers=A,B] [ms=LATENCY]
 *   state TARGET healthy|unhealthy|unknown [from=HEALTH] [reason=S]
 *   dns NAME new=A,B [old=A,B] [target=T]
 *   metric NAME target=T value=V
 *   failover kind=K [from=REGION] [to=REGION] [service=S] [text=S]
 *
 * Delivery: the base defaults to now - the last event's time - margin
 * (10 s), so every event is in the past and every timer an engine
 * computes from event times has passed. Events go out in windows of
 * --span seconds (1) of scenario time: per window, one batch per agent in
 * declaration order; then the held events. --before S delivers only
 * events before S, --from S only those at or after S (with the same
 * --base, seqs and epochs: a collector restarted between the two runs
 * sees one agent go on).
 *
 * Clock: the collector's offset sample for a batch is its receive time
 * minus the batch's send time minus half the previous round trip, and of
 * its recent samples it keeps the one with the smallest round trip (see
 * collector/store_priv.h); a batch claiming a round trip over its cap
 * (10 s, as an agent whose last POST took that long) gives no sample.
 * Both ends share this machine's clock, so the true offset is exactly
 * -skew; to make the collector's estimate exactly that, not a
 * millisecond off because a POST crossed a millisecond boundary, before
 * an agent's first event batch it posts an empty "sync" batch claiming a
 * 2 ms round trip and a send time K - 1 ms late (its sample is then
 * receive - real send - K - skew, an integer), until the Ack shows it
 * landed K ms after the millisecond it was sent in. K is the lateness
 * most common among the last 32 syncs (0 at first): on an idle machine a
 * POST lands in the millisecond it was sent in, but through a proxy, to
 * a loaded collector (the ASan build, a busy machine), seldom, while it
 * lands at some few milliseconds' lateness more often. Event batches
 * claim a round trip over the cap, so they leave the collector's window
 * alone and the exact sample stays its newest best one: one sync per
 * agent and run, also when a batch is sent again. The window is kept
 * with the agent's row in the database, so with several collectors on
 * one database a sync through one of them holds for batches any of them
 * takes.
 *
 * --url2 URL: every second agent (the 2nd, 4th, ... declared) posts to
 * URL instead: two collectors sharing one database, each taking half of
 * the agents (tests/pg_incidents.sh).
 *
 * --fresh: a new connection for every POST, so that behind a round-robin
 * load balancer the collectors take the POSTs in turn
 * (tests/pg_collectors.sh).
 *
 * --pause S (up to 8, ascending): before the first event at or after S
 * goes out (in turn: held events go at the end), print "paused before S"
 * (S with 3 decimals) and wait for a line on stdin, or its end: a test
 * feeds the scenario in parts around what it does meanwhile, in one run
 * (one clock sync per agent: see "Clock" above).
 *
 * --no-sync: agents without a skew are not synced, and as no batch of
 * theirs gives a clock sample, the collector learns no offset for them
 * and corrects nothing, which for them is exact: no empty batch at all
 * for a scenario without skew. (Syncs take many POSTs on a loaded
 * machine, a transaction each: tests/pg_collectors.sh.) */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "wire.h"

#define FEED_MAX_AGENTS   32
#define FEED_MAX_TOKENS   16
#define FEED_MAX_LINE     1024
#define FEED_MAX_BATCH    500         /* events per batch */
#define FEED_SYNC_TRIES   500         /* empty batches to get one exact */
#define FEED_RETRY_MS     120000      /* failed POSTs in a row: give up */
#define FEED_BUSY_US      50000       /* between failed POSTs */
#define FEED_LATE_RING    32          /* syncs' latenesses kept */
#define FEED_LATE_MAX     64          /* ms: later ones are not kept */
/* Over the collector's STORE_RTT_MAX_US (collector/store_priv.h): no
 * clock sample. */
#define FEED_NO_SAMPLE_RTT_US 10000001u
#define FEED_MAX_PAUSES   8

struct feed_agent {
    char *name, *cluster, *node, *region, *token;
    int64_t skew_ms;
    uint64_t epoch;
    int64_t hold_from;              /* INT64_MAX: never partitioned */
    uint64_t seqs;                  /* events it has (seqs 1..seqs) */
    int synced;
};

enum feed_kind { FEED_PROBE, FEED_STATE, FEED_DNS, FEED_METRIC,
                 FEED_FAILOVER };

/* One event of the scenario; its strings are owned by the token table of
 * the line it came from (struct feed_line), shared by `every` copies. */
struct feed_event {
    int64_t t_ms;                   /* scenario time */
    size_t agent;
    size_t order;                   /* file order, for equal times */
    uint64_t seq;
    const struct feed_line *line;
};

/* A parsed statement: the event's name (target, DNS or metric name) and
 * its key=value pairs. */
struct feed_line {
    enum feed_kind kind;
    char *name;
    char *word;                     /* state: the health word */
    char *keys[FEED_MAX_TOKENS];
    char *vals[FEED_MAX_TOKENS];
    size_t n_kv;
};

struct feed {
    const char *path;
    struct feed_agent agents[FEED_MAX_AGENTS];
    size_t n_agents;
    struct feed_line **lines;
    size_t n_lines;
    char **texts;                   /* every file read; words point in */
    size_t n_texts;
    struct feed_event *evs;
    size_t n_evs, cap_evs;
    CURL *h;
    const char *url;
    const char *url2;               /* NULL: every agent posts to url */
    char ingest[2][512];            /* their /v1/ingest */
    int64_t base_ms;
    size_t sent_events, sent_batches;
    int64_t failing_since;          /* the first failed POST's ms; 0: ok */
    int no_sync;                    /* --no-sync */
    int64_t pauses[FEED_MAX_PAUSES];  /* --pause times, ascending */
    size_t n_pauses;
    uint8_t late[FEED_LATE_RING];   /* recent syncs: receive - send ms */
    size_t n_late;                  /* syncs that came back, ever */
    size_t syncs, sync_posts;       /* exact samples; empty batches sent */
};

static const char *feed_kv(const struct feed_line *l, const char *key)
{
    for (size_t i = 0; i < l->n_kv; i++)
        if (strcmp(l->keys[i], key) == 0)
            return l->vals[i];
    return NULL;
}

/* The value of @key, or @dflt when the line does not give one. */
static const char *feed_opt(const struct feed_line *l, const char *key,
                            const char *dflt)
{
    const char *v = feed_kv(l, key);

    return v ? v : dflt;
}

/* Seconds ("-1.5", "2.460") to ms; -1 when not a number. */
static int feed_secs(const char *s, int64_t *ms)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || fabs(v) > 1e9)
        return -1;
    *ms = llround(v * 1000.0);
    return 0;
}

/* Splits @s in place into words; "key=\"a b\"" keeps its spaces (the
 * quotes go). Returns the count, or -1 on more than @max or an open
 * quote. */
static int feed_split(char *s, char **w, int max)
{
    int n = 0;

    for (;;) {
        char *o;

        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            return n;
        if (n == max)
            return -1;
        w[n++] = o = s;
        while (*s && *s != ' ' && *s != '\t') {
            if (*s == '"') {
                char *q = strchr(s + 1, '"');

                if (!q)
                    return -1;
                memmove(o, s + 1, (size_t)(q - s - 1));
                o += q - s - 1;
                s = q + 1;
            } else {
                *o++ = *s++;
            }
        }
        if (*s)
            s++;
        *o = '\0';
    }
}

static int feed_agent_index(const struct feed *f, const char *name)
{
    for (size_t i = 0; i < f->n_agents; i++)
        if (strcmp(f->agents[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* "agent NAME k=v...": -1 with @why set on a bad line. */
static int feed_parse_agent(struct feed *f, char **w, int n,
                            const char **why)
{
    struct feed_agent *a = &f->agents[f->n_agents];

    if (n < 2 || f->n_agents == FEED_MAX_AGENTS ||
        feed_agent_index(f, w[1]) >= 0) {
        *why = "agent: a new NAME (at most 32 agents)";
        return -1;
    }
    memset(a, 0, sizeof(*a));
    a->name = w[1];
    a->hold_from = INT64_MAX;
    a->epoch = 1000 + f->n_agents;      /* fixed: a second run goes on */
    for (int i = 2; i < n; i++) {
        char *eq = strchr(w[i], '=');

        if (!eq) {
            *why = "agent: KEY=VALUE expected";
            return -1;
        }
        *eq++ = '\0';
        if (strcmp(w[i], "cluster") == 0)
            a->cluster = eq;
        else if (strcmp(w[i], "node") == 0)
            a->node = eq;
        else if (strcmp(w[i], "region") == 0)
            a->region = eq;
        else if (strcmp(w[i], "token") == 0)
            a->token = eq;
        else if (strcmp(w[i], "skew") == 0)
            a->skew_ms = strtoll(eq, NULL, 10);
        else if (strcmp(w[i], "epoch") == 0)
            a->epoch = strtoull(eq, NULL, 10);
        else {
            *why = "agent: unknown key";
            return -1;
        }
    }
    if (!a->cluster || !a->node || !a->region || !a->token) {
        *why = "agent: cluster, node, region and token are required";
        return -1;
    }
    f->n_agents++;
    return 0;
}

/* The EVENT part of an `at` or `every` line (words @w[0..n)). */
static struct feed_line *feed_parse_event(char **w, int n, const char **why)
{
    static const char *const kinds[] = { "probe", "state", "dns", "metric",
                                         "failover" };
    struct feed_line *l = calloc(1, sizeof(*l));
    int i = 1, k;

    if (!l) {
        *why = "out of memory";
        return NULL;
    }
    for (k = 0; k < 5 && (n < 1 || strcmp(w[0], kinds[k]) != 0); k++)
        ;
    if (n < 1 || k == 5) {
        *why = "event: probe, state, dns, metric or failover expected";
        goto bad;
    }
    l->kind = (enum feed_kind)k;
    if (l->kind != FEED_FAILOVER) {
        if (n < 2 || strchr(w[1], '=')) {
            *why = "event: a name (target, DNS or metric name) expected";
            goto bad;
        }
        l->name = w[i++];
    }
    if (l->kind == FEED_STATE) {
        if (n < 3 || (strcmp(w[2], "healthy") && strcmp(w[2], "unhealthy") &&
                      strcmp(w[2], "unknown"))) {
            *why = "state: healthy, unhealthy or unknown expected";
            goto bad;
        }
        l->word = w[i++];
    }
    for (; i < n; i++) {
        char *eq = strchr(w[i], '=');

        if (!eq || l->n_kv == FEED_MAX_TOKENS) {
            *why = "event: KEY=VALUE expected";
            goto bad;
        }
        *eq = '\0';
        l->keys[l->n_kv] = w[i];
        l->vals[l->n_kv++] = eq + 1;
    }
    return l;
bad:
    free(l);
    return NULL;
}

static int feed_add_event(struct feed *f, int64_t t_ms, size_t agent,
                          const struct feed_line *l)
{
    if (f->n_evs == f->cap_evs) {
        size_t cap = f->cap_evs ? 2 * f->cap_evs : 256;
        struct feed_event *n = realloc(f->evs, cap * sizeof(*n));

        if (!n)
            return -1;
        f->evs = n;
        f->cap_evs = cap;
    }
    f->evs[f->n_evs] = (struct feed_event){ .t_ms = t_ms, .agent = agent,
                                            .order = f->n_evs, .line = l };
    f->n_evs++;
    return 0;
}

static int feed_keep_line(struct feed *f, struct feed_line *l)
{
    struct feed_line **n = realloc(f->lines,
                                   (f->n_lines + 1) * sizeof(*n));

    if (!n)
        return -1;
    f->lines = n;
    f->lines[f->n_lines++] = l;
    return 0;
}

/* "at SEC AGENT EVENT" and "every STEP AGENT EVENT from SEC to SEC". */
static int feed_parse_timed(struct feed *f, char **w, int n,
                            const char **why)
{
    int every = w[0][0] == 'e', a, n_ev = n - 3;
    int64_t t, step = 0, to;
    struct feed_line *l;

    if (n < 4 || feed_secs(w[1], &t) < 0) {
        *why = "a time in seconds expected";
        return -1;
    }
    a = feed_agent_index(f, w[2]);
    if (a < 0) {
        *why = "unknown agent (declare it first)";
        return -1;
    }
    if (every) {
        step = t;
        if (n < 8 || strcmp(w[n - 4], "from") || strcmp(w[n - 2], "to") ||
            feed_secs(w[n - 3], &t) < 0 || feed_secs(w[n - 1], &to) < 0 ||
            step <= 0) {
            *why = "every: STEP > 0 ... from SEC to SEC expected";
            return -1;
        }
        n_ev -= 4;
    } else {
        to = t + 1;
        step = 1;
    }
    l = feed_parse_event(w + 3, n_ev, why);
    if (!l)
        return -1;
    if (feed_keep_line(f, l) < 0) {
        free(l);
        *why = "out of memory";
        return -1;
    }
    for (; t < to; t += step)
        if (feed_add_event(f, t, (size_t)a, l) < 0) {
            *why = "out of memory";
            return -1;
        }
    return 0;
}

static int feed_parse_line(struct feed *f, char *s, const char **why)
{
    char *w[FEED_MAX_TOKENS + 12];
    int n = feed_split(s, w, (int)(sizeof(w) / sizeof(w[0]))), a;

    if (n < 0) {
        *why = "too many words or an open quote";
        return -1;
    }
    if (n == 0 || strcmp(w[0], "expect") == 0)
        return 0;
    if (strcmp(w[0], "agent") == 0)
        return feed_parse_agent(f, w, n, why);
    if (strcmp(w[0], "at") == 0 || strcmp(w[0], "every") == 0)
        return feed_parse_timed(f, w, n, why);
    if (strcmp(w[0], "skew") == 0) {
        a = n == 3 ? feed_agent_index(f, w[1]) : -1;
        if (a < 0) {
            *why = "skew: AGENT MS expected";
            return -1;
        }
        f->agents[a].skew_ms = strtoll(w[2], NULL, 10);
        return 0;
    }
    if (strcmp(w[0], "hold") == 0) {
        a = n == 4 ? feed_agent_index(f, w[1]) : -1;
        if (a < 0 || strcmp(w[2], "from") ||
            feed_secs(w[3], &f->agents[a].hold_from) < 0) {
            *why = "hold: AGENT from SEC expected";
            return -1;
        }
        return 0;
    }
    *why = "agent, at, every, skew, hold, include or expect expected";
    return -1;
}

/* Reads @path (an include: relative to @dir when not absolute); its text
 * stays allocated for the run (the words point into it). -1 after
 * printing "FILE:LINE: why". */
static int feed_load(struct feed *f, const char *dir, const char *path,
                     int depth)
{
    size_t len, line = 0;
    char *s, *nl, *text, full[4096];
    const char *why = NULL;
    char **texts;

    snprintf(full, sizeof(full), "%s%s%s", path[0] == '/' ? "" : dir,
             path[0] == '/' || !dir[0] ? "" : "/", path);
    texts = realloc(f->texts, (f->n_texts + 1) * sizeof(*texts));
    if (!texts)
        return -1;
    f->texts = texts;
    if (depth > 4 || util_read_file(full, 16u << 20, &text, &len) < 0) {
        fprintf(stderr, "%s: cannot read (or includes nest too deep)\n",
                full);
        return -1;
    }
    f->texts[f->n_texts++] = text;
    for (s = text; s && *s; s = nl) {
        char *w[2];

        nl = strchr(s, '\n');
        if (nl)
            *nl++ = '\0';
        line++;
        if (strncmp(s, "include ", 8) == 0 && feed_split(s, w, 2) == 2) {
            char sub[4096], *slash;

            snprintf(sub, sizeof(sub), "%s", full);
            slash = strrchr(sub, '/');
            if (slash)
                *slash = '\0';
            else
                snprintf(sub, sizeof(sub), ".");
            if (feed_load(f, sub, w[1], depth + 1) < 0)
                return -1;
            continue;
        }
        if (strlen(s) >= FEED_MAX_LINE || feed_parse_line(f, s, &why) < 0) {
            fprintf(stderr, "%s:%zu: %s\n", full, line,
                    why ? why : "line too long");
            return -1;
        }
    }
    return 0;
}

static int feed_cmp(const void *pa, const void *pb)
{
    const struct feed_event *a = pa, *b = pb;

    if (a->t_ms != b->t_ms)
        return a->t_ms < b->t_ms ? -1 : 1;
    if (a->agent != b->agent)
        return a->agent < b->agent ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* "a,b" -> DnsAnswer messages (A, AAAA or CNAME by the look of it); NULL
 * (none) for a NULL @list. */
static Sextant__V1__DnsAnswer **feed_answers(const char *list, char **buf,
                                             size_t *n_out)
{
    size_t n = 1, i = 0;
    Sextant__V1__DnsAnswer **pp, *a;
    char *tok, *save = NULL;

    *n_out = 0;
    if (!list)
        return NULL;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    *buf = strdup(list);
    pp = calloc(n, sizeof(*pp) + sizeof(*a));
    if (!*buf || !pp) {
        free(pp);
        return NULL;
    }
    a = (Sextant__V1__DnsAnswer *)(pp + n);
    for (tok = strtok_r(*buf, ",", &save); tok && i < n;
         tok = strtok_r(NULL, ",", &save), i++) {
        sextant__v1__dns_answer__init(&a[i]);
        a[i].type = strchr(tok, ':') ? "AAAA"
                    : strspn(tok, "0123456789.") == strlen(tok) ? "A"
                    : "CNAME";
        a[i].value = tok;
        a[i].ttl = 1;
        pp[i] = &a[i];
    }
    *n_out = i;
    return pp;
}

static Sextant__V1__Health feed_health(const char *w)
{
    if (!w || strcmp(w, "unknown") == 0)
        return SEXTANT__V1__HEALTH__HEALTH_UNKNOWN;
    return strcmp(w, "healthy") == 0 ? SEXTANT__V1__HEALTH__HEALTH_HEALTHY
                                     : SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY;
}

static Sextant__V1__ProbeType feed_probe_type(const char *t)
{
    if (t && strcmp(t, "dns") == 0)
        return SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS;
    if (t && strcmp(t, "tcp") == 0)
        return SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_TCP;
    return SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
}

/* Everything one packed event needs while it is packed. */
struct feed_msg {
    Sextant__V1__Event ev;
    Sextant__V1__ProbeResult pr;
    Sextant__V1__Timings tm;
    Sextant__V1__StateChange st;
    Sextant__V1__DnsChange dc;
    Sextant__V1__MetricSample ms;
    Sextant__V1__Failover fo;
    char *bufs[2];
    Sextant__V1__DnsAnswer **ans[2];
};

static void feed_msg_probe(struct feed_msg *m, const struct feed_line *l)
{
    const char *v;

    sextant__v1__probe_result__init(&m->pr);
    sextant__v1__timings__init(&m->tm);
    m->pr.target = l->name;
    m->pr.type = feed_probe_type(feed_kv(l, "type"));
    v = feed_kv(l, "ok");
    m->pr.ok = v && strcmp(v, "1") == 0;
    v = feed_kv(l, "status");
    m->pr.status = v ? atoi(v) : m->pr.ok && m->pr.type ==
                   SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP ? 200 : 0;
    v = feed_kv(l, "error");
    m->pr.error = (char *)(v ? v : m->pr.ok ? "" : "probe failed");
    m->pr.served_by = (char *)feed_opt(l, "served_by", "");
    v = feed_kv(l, "ms");
    m->tm.total_us = (uint64_t)(v ? atof(v) * 1000.0 : 12000.0);
    m->pr.timings = &m->tm;
    m->pr.answers = m->ans[0] = feed_answers(feed_kv(l, "answers"),
                                             &m->bufs[0], &m->pr.n_answers);
    m->ev.kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    m->ev.probe = &m->pr;
}

/* Fills @m for @e of agent @a at its agent-clock time. */
static void feed_msg_fill(struct feed_msg *m, const struct feed *f,
                          const struct feed_event *e)
{
    const struct feed_line *l = e->line;
    const char *v;

    memset(m, 0, sizeof(*m));
    sextant__v1__event__init(&m->ev);
    m->ev.seq = e->seq;
    m->ev.unix_ms = f->base_ms + e->t_ms + f->agents[e->agent].skew_ms;
    switch (l->kind) {
    case FEED_PROBE:
        feed_msg_probe(m, l);
        break;
    case FEED_STATE:
        sextant__v1__state_change__init(&m->st);
        m->st.target = l->name;
        m->st.to = feed_health(l->word);
        v = feed_kv(l, "from");
        m->st.from = v ? feed_health(v)
                       : m->st.to == SEXTANT__V1__HEALTH__HEALTH_HEALTHY
                       ? SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY
                       : SEXTANT__V1__HEALTH__HEALTH_HEALTHY;
        m->st.reason = (char *)feed_opt(l, "reason", "scenario");
        m->ev.kind_case = SEXTANT__V1__EVENT__KIND_STATE;
        m->ev.state = &m->st;
        break;
    case FEED_DNS:
        sextant__v1__dns_change__init(&m->dc);
        m->dc.name = l->name;
        m->dc.target = (char *)feed_opt(l, "target", "");
        m->dc.new_answers = m->ans[0] = feed_answers(
            feed_kv(l, "new"), &m->bufs[0], &m->dc.n_new_answers);
        m->dc.old_answers = m->ans[1] = feed_answers(
            feed_kv(l, "old"), &m->bufs[1], &m->dc.n_old_answers);
        m->ev.kind_case = SEXTANT__V1__EVENT__KIND_DNS;
        m->ev.dns = &m->dc;
        break;
    case FEED_METRIC:
        sextant__v1__metric_sample__init(&m->ms);
        m->ms.name = l->name;
        m->ms.target = (char *)feed_opt(l, "target", "");
        m->ms.value = atof(feed_opt(l, "value", "0"));
        m->ev.kind_case = SEXTANT__V1__EVENT__KIND_METRIC;
        m->ev.metric = &m->ms;
        break;
    case FEED_FAILOVER:
        sextant__v1__failover__init(&m->fo);
        m->fo.kind = (char *)feed_opt(l, "kind", "failover");
        m->fo.from_region = (char *)feed_opt(l, "from", "");
        m->fo.to_region = (char *)feed_opt(l, "to", "");
        m->fo.text = (char *)feed_opt(l, "text", "");
        m->fo.service = (char *)feed_opt(l, "service", "");
        m->ev.kind_case = SEXTANT__V1__EVENT__KIND_FAILOVER;
        m->ev.failover = &m->fo;
        break;
    }
}

static void feed_msg_free(struct feed_msg *m)
{
    for (int i = 0; i < 2; i++) {
        free(m->bufs[i]);
        free(m->ans[i]);
    }
}

/* Posts one batch of @a (a header and packed events) with a send time
 * of @rel_ms plus the agent's clock at sending. 0 with the real send time
 * (this machine's ms) in *sent_ms and the collector's receive time in
 * *recv_ms; -EAGAIN when no reply came or it was 502, 503 or 504 (a
 * collector or its database down: the batch may or may not be stored,
 * and is to be sent again, as an agent's spool would); -EPROTO on any
 * other reply (printed). A first failure after a success is printed
 * ("retrying"), and so is the success that ends such a run. */
static int feed_post(struct feed *f, const struct feed_agent *a,
                     Sextant__V1__Batch *hdr, int64_t rel_ms,
                     const struct wire_buf *evs, size_t n, int64_t *sent_ms,
                     int64_t *recv_ms)
{
    struct curl_slist *hl = NULL;
    char auth[512], *reply = NULL;
    uint8_t *body = NULL;
    size_t len, reply_len = 0;
    long status = 0;
    Sextant__V1__Ack ack;
    FILE *out = NULL;
    CURLcode cc = CURLE_FAILED_INIT;
    int64_t t0;
    int rc = -EPROTO;

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", a->token);
    hl = curl_slist_append(hl, auth);
    hl = curl_slist_append(hl, "Content-Type: application/x-protobuf");
    hl = curl_slist_append(hl, "Content-Encoding: deflate");
    /* curl's own write function appends the reply to this stream. */
    out = open_memstream(&reply, &reply_len);
    /* Sent at the start of a millisecond: the collector's receive time
     * falls as few milliseconds later as the POST takes. */
    for (t0 = util_now_ms(); util_now_ms() == t0;)
        ;
    t0 = util_now_ms();
    hdr->sent_unix_ms = t0 + a->skew_ms + rel_ms;
    if (!hl || !out || wire_batch_encode_packed(hdr, evs, n, &body, &len) < 0)
        goto out;
    curl_easy_setopt(f->h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(f->h, CURLOPT_URL,
                     f->ingest[f->url2 && (a - f->agents) % 2 == 1]);
    curl_easy_setopt(f->h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(f->h, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(f->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    cc = curl_easy_perform(f->h);
    if (cc == CURLE_OK)
        curl_easy_getinfo(f->h, CURLINFO_RESPONSE_CODE, &status);
out:
    curl_slist_free_all(hl);
    free(body);
    if (out)
        fclose(out);            /* sets reply and reply_len */
    if (status == 200 && reply &&
        wire_ack_decode((uint8_t *)reply, reply_len, &ack) == 0) {
        *sent_ms = t0;
        *recv_ms = ack.received_unix_ms;
        rc = 0;
    } else if (cc != CURLE_OK && cc != CURLE_FAILED_INIT) {
        rc = -EAGAIN;
    } else if (status == 502 || status == 503 || status == 504) {
        rc = -EAGAIN;
    }
    if (rc == -EAGAIN && f->failing_since == 0) {
        f->failing_since = util_now_ms();
        fprintf(stderr, "%s: POST failed (%s); retrying\n", a->name,
                cc != CURLE_OK ? curl_easy_strerror(cc) : "busy");
    } else if (rc == 0 && f->failing_since != 0) {
        fprintf(stderr, "%s: delivered again after %" PRId64 " ms\n",
                a->name, util_now_ms() - f->failing_since);
        f->failing_since = 0;
    } else if (rc == -EPROTO) {
        fprintf(stderr, "%s: POST answered %ld: %.*s\n", a->name, status,
                (int)(reply_len > 300 ? 300 : reply_len),
                reply ? reply : "");
    }
    free(reply);
    return rc;
}

/* After a POST failed with -EAGAIN: waits a little before the next one,
 * or gives up (-1, printed) once POSTs have failed for FEED_RETRY_MS. */
static int feed_backoff(const struct feed *f, const struct feed_agent *a)
{
    if (util_now_ms() - f->failing_since > FEED_RETRY_MS) {
        fprintf(stderr, "%s: no delivery for %d s; giving up\n", a->name,
                FEED_RETRY_MS / 1000);
        return -1;
    }
    usleep(FEED_BUSY_US);
    return 0;
}

static void feed_hdr(const struct feed_agent *a, Sextant__V1__Batch *b)
{
    sextant__v1__batch__init(b);
    b->cluster = a->cluster;
    b->region = a->region;
    b->node = a->node;
    b->agent_version = "scenario-feed";
    b->epoch = a->epoch;
}

/* The lateness (receive ms - send ms) to aim a sync at: the most common
 * of the last FEED_LATE_RING syncs' (the smallest on a tie; 0 before any
 * came back). */
static int64_t feed_late_mode(const struct feed *f)
{
    unsigned count[FEED_LATE_MAX] = { 0 }, best = 0;
    int64_t mode = 0;

    for (size_t i = 0; i < f->n_late && i < FEED_LATE_RING; i++)
        count[f->late[i]]++;
    for (int64_t d = 0; d < FEED_LATE_MAX; d++)
        if (count[d] > best) {
            best = count[d];
            mode = d;
        }
    return mode;
}

/* Empty batches until one's offset sample is exactly -skew (see the top
 * of the file): aimed at a lateness K (the most common lately), sent
 * K - 1 ms late by the agent's clock with a claimed 2 ms round trip, its
 * sample is receive - real send - K - skew, exact when the collector
 * received it K ms after the millisecond it was sent in. */
static int feed_sync(struct feed *f, struct feed_agent *a)
{
    Sextant__V1__Batch b;
    int64_t recv_ms, sent_ms, k, late;
    int rc;

    for (int i = 0; i < FEED_SYNC_TRIES;) {
        k = feed_late_mode(f);
        feed_hdr(a, &b);
        b.prev_rtt_us = 2000;
        rc = feed_post(f, a, &b, k - 1, NULL, 0, &sent_ms, &recv_ms);
        if (rc == -EAGAIN) {
            if (feed_backoff(f, a) < 0)
                return -1;
            continue;
        }
        if (rc < 0)
            return -1;
        i++;
        f->sync_posts++;
        late = recv_ms - sent_ms;
        if (late >= 0 && late < FEED_LATE_MAX)
            f->late[f->n_late++ % FEED_LATE_RING] = (uint8_t)late;
        if (late == k) {
            f->syncs++;
            a->synced = 1;
            return 0;
        }
    }
    fprintf(stderr, "%s: no exact clock sample in %d tries\n", a->name,
            FEED_SYNC_TRIES);
    return -1;
}

/* Posts event batch @b of @a (its @n packed events @bufs), synced
 * first if it is not yet, until it is stored: a failed POST may have
 * been stored or not, and is sent again (the collector stores each seq
 * once). */
static int feed_post_events(struct feed *f, struct feed_agent *a,
                            Sextant__V1__Batch *b,
                            const struct wire_buf *bufs, size_t n)
{
    int64_t recv_ms, sent_ms;
    int rc;

    if (!a->synced && (a->skew_ms != 0 || !f->no_sync) &&
        feed_sync(f, a) < 0)
        return -1;
    b->prev_rtt_us = FEED_NO_SAMPLE_RTT_US;
    for (;;) {
        rc = feed_post(f, a, b, 0, bufs, n, &sent_ms, &recv_ms);
        if (rc != -EAGAIN)
            return rc < 0 ? -1 : 0;
        if (feed_backoff(f, a) < 0)
            return -1;
    }
}

/* Posts the @n events f->evs[idx[..]] of agent @ai, in seq order, in
 * batches of at most FEED_MAX_BATCH. */
static int feed_send(struct feed *f, size_t ai, const size_t *idx, size_t n)
{
    struct feed_agent *a = &f->agents[ai];
    struct wire_buf bufs[FEED_MAX_BATCH];
    uint8_t *packed[FEED_MAX_BATCH];
    Sextant__V1__Batch b;
    int rc = 0;

    for (size_t done = 0; done < n && rc == 0;) {
        size_t k = n - done > FEED_MAX_BATCH ? FEED_MAX_BATCH : n - done;
        size_t packed_n = 0;

        for (size_t i = 0; i < k && rc == 0; i++, packed_n++) {
            struct feed_msg m;

            feed_msg_fill(&m, f, &f->evs[idx[done + i]]);
            rc = wire_event_pack(&m.ev, &packed[i], &bufs[i].len);
            bufs[i].data = packed[i];
            feed_msg_free(&m);
            if (rc < 0)
                packed[i] = NULL;
        }
        if (rc == 0) {
            feed_hdr(a, &b);
            b.first_seq = f->evs[idx[done]].seq;
            rc = feed_post_events(f, a, &b, bufs, k);
        }
        for (size_t i = 0; i < packed_n; i++)
            free(packed[i]);
        f->sent_events += k;
        f->sent_batches++;
        done += k;
    }
    return rc < 0 ? -1 : 0;
}

/* Whether event @e goes out in this run and in turn (not held back). */
static int feed_in_run(const struct feed_event *e, int64_t from_ms,
                       int64_t before_ms)
{
    return e->t_ms >= from_ms && e->t_ms < before_ms;
}

static int feed_held(const struct feed *f, const struct feed_event *e)
{
    return e->t_ms >= f->agents[e->agent].hold_from;
}

/* Collects into @idx the events in f->evs[lo..hi) of agent @a that go out
 * in this run, held back (@held 1) or in turn (0); returns how many. */
static size_t feed_pick(const struct feed *f, size_t a, size_t lo,
                        size_t hi, int held, const int64_t run[2],
                        size_t *idx)
{
    size_t n = 0;

    for (size_t i = lo; i < hi; i++)
        if (f->evs[i].agent == a && feed_held(f, &f->evs[i]) == held &&
            feed_in_run(&f->evs[i], run[0], run[1]))
            idx[n++] = i;
    return n;
}

/* Says "paused before S" on stdout and waits for a line on stdin (or its
 * end, after which no pause waits). */
static void feed_pause(int64_t t_ms)
{
    static int eof;
    char line[64];

    printf("paused before %.3f\n", (double)t_ms / 1000.0);
    fflush(stdout);
    if (!eof && !fgets(line, sizeof(line), stdin))
        eof = 1;
}

/* Windows of @span_ms, one batch per agent each (a --pause time ends one
 * too, and is waited at); then the held events.
 * @run: [from, before) of scenario time. */
static int feed_deliver(struct feed *f, int64_t span_ms, const int64_t run[2])
{
    size_t *idx = malloc((f->n_evs ? f->n_evs : 1) * sizeof(*idx));
    size_t lo = 0, n, next = 0;
    int rc = -1;

    if (!idx)
        return -1;
    while (lo < f->n_evs) {
        size_t hi = lo;
        int64_t end = f->evs[lo].t_ms + span_ms;

        for (; next < f->n_pauses && f->pauses[next] <= f->evs[lo].t_ms;
             next++)
            feed_pause(f->pauses[next]);
        if (next < f->n_pauses && f->pauses[next] < end)
            end = f->pauses[next];      /* a window ends at a pause */
        while (hi < f->n_evs && f->evs[hi].t_ms < end)
            hi++;
        for (size_t a = 0; a < f->n_agents; a++) {
            n = feed_pick(f, a, lo, hi, 0, run, idx);
            if (n && feed_send(f, a, idx, n) < 0)
                goto out;
        }
        lo = hi;
    }
    for (size_t a = 0; a < f->n_agents; a++) {
        n = feed_pick(f, a, 0, f->n_evs, 1, run, idx);
        if (n && feed_send(f, a, idx, n) < 0)
            goto out;
    }
    rc = 0;
out:
    free(idx);
    return rc;
}

static void feed_usage(void)
{
    fprintf(stderr,
        "usage: scenario_feed --url URL --scn FILE [--base MS] [--margin S]\n"
        "  [--before S | --from S] [--span S] [--url2 URL] [--fresh]\n"
        "  [--pause S]... [--no-sync]\n");
}

static void feed_free(struct feed *f)
{
    for (size_t i = 0; i < f->n_lines; i++)
        free(f->lines[i]);
    for (size_t i = 0; i < f->n_texts; i++)
        free(f->texts[i]);
    free(f->texts);
    free(f->lines);
    free(f->evs);
    if (f->h)
        curl_easy_cleanup(f->h);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "scn", required_argument, NULL, 's' },
        { "base", required_argument, NULL, 'b' },
        { "margin", required_argument, NULL, 'm' },
        { "before", required_argument, NULL, 'B' },
        { "from", required_argument, NULL, 'F' },
        { "span", required_argument, NULL, 'S' },
        { "url2", required_argument, NULL, 'U' },
        { "fresh", no_argument, NULL, 'f' },
        { "no-sync", no_argument, NULL, 'n' },
        { "pause", required_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 },
    };
    struct feed f = { 0 };
    int64_t margin = 10000, run[2] = { INT64_MIN, INT64_MAX };
    int64_t span = 1000, base = 0;
    uint64_t *seqs;
    int opt, rc = 2, bad = 0, fresh = 0;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': f.url = optarg; break;
        case 's': f.path = optarg; break;
        case 'b': base = strtoll(optarg, NULL, 10); break;
        case 'm': bad |= feed_secs(optarg, &margin); break;
        case 'B': bad |= feed_secs(optarg, &run[1]); break;
        case 'F': bad |= feed_secs(optarg, &run[0]); break;
        case 'S': bad |= feed_secs(optarg, &span); break;
        case 'U': f.url2 = optarg; break;
        case 'f': fresh = 1; break;
        case 'n': f.no_sync = 1; break;
        case 'p':
            bad |= f.n_pauses >= FEED_MAX_PAUSES ||
                   feed_secs(optarg, &f.pauses[f.n_pauses]) < 0 ||
                   (f.n_pauses > 0 &&
                    f.pauses[f.n_pauses] <= f.pauses[f.n_pauses - 1]);
            f.n_pauses += f.n_pauses < FEED_MAX_PAUSES;
            break;
        default: bad = 1;
        }
    }
    if (bad || !f.url || !f.path || span <= 0 || optind != argc) {
        feed_usage();
        return 2;
    }
    if (feed_load(&f, "", f.path, 0) < 0)
        goto out;
    if (f.n_evs == 0) {
        fprintf(stderr, "%s: no events\n", f.path);
        goto out;
    }
    qsort(f.evs, f.n_evs, sizeof(f.evs[0]), feed_cmp);
    seqs = calloc(f.n_agents, sizeof(*seqs));
    if (!seqs)
        goto out;
    for (size_t i = 0; i < f.n_evs; i++)
        f.evs[i].seq = ++seqs[f.evs[i].agent];
    free(seqs);
    f.base_ms = base ? base
                     : util_now_ms() - f.evs[f.n_evs - 1].t_ms - margin;
    printf("base %" PRId64 "\n", f.base_ms);
    fflush(stdout);
    rc = 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto out;
    f.h = curl_easy_init();
    if (!f.h)
        goto out;
    snprintf(f.ingest[0], sizeof(f.ingest[0]), "%s/v1/ingest", f.url);
    snprintf(f.ingest[1], sizeof(f.ingest[1]), "%s/v1/ingest",
             f.url2 ? f.url2 : f.url);
    curl_easy_setopt(f.h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(f.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(f.h, CURLOPT_FORBID_REUSE, fresh ? 1L : 0L);
    if (feed_deliver(&f, span, run) == 0) {
        printf("delivered %zu events in %zu batches\n", f.sent_events,
               f.sent_batches);
        /* The log's: how hard exact clock samples came. */
        fprintf(stderr, "clock synced %zu times in %zu empty batches\n",
                f.syncs, f.sync_posts);
        rc = 0;
    }
out:
    feed_free(&f);
    curl_global_cleanup();
    return rc;
}
