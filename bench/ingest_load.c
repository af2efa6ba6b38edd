/* ingest_load.c -- load generator of the ingest benchmark: N simulated
 * agents (bench_events.h) post their batches to a collector's POST
 * /v1/ingest over HTTP/1.1 keep-alive, each on its own connection from
 * its own loopback address (127.2.X.Y), with at most one batch in flight
 * per agent, as a real agent ships. Every batch is built, packed and
 * deflated before the clock starts, so the generator's own work during
 * the run is HTTP only. One libcurl multi handle drives every agent; the
 * open-files soft limit is raised to the hard limit, one socket each.
 *
 * Closed loop (default): each agent sends its next batch as soon as the
 * previous one is acked. Open loop (--rate R): batch slots are spread
 * evenly at R batches per second over all agents (each agent every N/R
 * seconds); a batch goes out at its slot, or when its agent's previous
 * batch is acked if that is later, and its latency counts from the slot
 * (so a slow collector is not hidden by sending less: no coordinated
 * omission). A 503 is retried after its Retry-After (1 s when missing),
 * like an agent; other failures after 1 s. Latency is from the first
 * try (closed loop) or the slot (open loop) to the 200.
 *
 * Figures count the window after --warmup seconds, --duration seconds
 * long: events per second of the batches acked in it, and the exact
 * percentiles of every batch that started in it (all waited for). Each
 * Ack must carry the batch's last seq as the agent's watermark.
 *
 * usage: ingest_load --url URL --tokens T0,T1,T2 [--agents N]
 *            [--batch-events B] [--batches K] [--duration S] [--warmup S]
 *            [--rate R] [--seed S] [--step-ms MS] [--no-bind]
 *            [--first-agent K] [--latencies FILE]
 *   --tokens    bearer tokens of the clusters eu-west-1, us-east-1 and
 *               ap-southeast-1, in that order
 *   --first-agent  this process simulates agents K to K + N - 1 (their
 *               addresses, names and events): a load split over several
 *               processes (bench/scale_bench.sh), since one libcurl multi
 *               handle walks every transfer in flight on each wake-up
 *   --latencies write every latency of the window (ms, one a line) to
 *               FILE, for percentiles over several processes
 *   --batches   pre-encoded batches per agent (default 100): an agent that
 *               runs out stops, and the run is marked invalid if that
 *               happens before the window ends
 * Prints key=value lines; exit 0 when the run was valid (no agent ran
 * out, every batch acked with the right watermark within 60 s after the
 * window), 1 not, 2 bad usage. Past that drain the loader gives up and
 * says what was outstanding (gave_up=1): requests in flight, the age of
 * the oldest, and batches due in the window not sent yet. An open loop
 * above the collector's rate ends so, with one request in flight per
 * agent: a backlog, not lost requests (a request the collector never
 * answers fails after 60 s, as a transport error). Not part of the
 * product. */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_events.h"
#include "util.h"
#include "wire.h"

#define LOAD_MAX_AGENTS  60000u     /* 127.2.X.Y: 240 * 250 addresses */
#define LOAD_MAX_BATCH   WIRE_MAX_EVENTS
#define LOAD_MAX_REPLY   4096u
#define LOAD_RETRY_US    1000000    /* after a failure without Retry-After */
#define LOAD_DRAIN_US    60000000   /* waiting for the last batches */
#define LOAD_REQ_TIMEOUT_S 60L      /* one request: then a transport error */
#define LOAD_POLL_MS     100

struct load_opts {
    const char *url;
    const char *tokens[BENCH_CLUSTERS];
    unsigned agents, batch, batches;
    double duration, warmup, rate;  /* rate 0: closed loop */
    uint64_t seed;
    int64_t step_ms;
    int bind;
    unsigned first;                 /* --first-agent: this shard's first */
    const char *lat_out;            /* --latencies: every latency, in ms */
};

struct load_body {
    uint8_t *p;
    size_t len;
    uint64_t last_seq;
    unsigned events;
};

/* One agent: its pre-encoded batches and its connection. */
struct load_agent {
    unsigned index;
    CURL *h;
    struct curl_slist *hdrs;
    char addr[20];                  /* its source address */
    struct load_body *bodies;
    unsigned n_bodies, next;        /* next: the batch to send or in flight */
    int busy;                       /* a request in flight */
    int64_t base_us;                /* the batch's slot or first try */
    int64_t sent_us;                /* when the request in flight went */
    int64_t due_us;                 /* when to send it (again) */
    char reply[LOAD_MAX_REPLY];
    size_t reply_len;
};

/* What was measured. */
struct load_result {
    double *lat_ms;                 /* batches that started in the window */
    size_t n_lat, cap_lat;
    uint64_t events_window, batches_window;
    uint64_t status_200, status_503, status_other, transport_errors;
    uint64_t ack_mismatch;
    unsigned exhausted;             /* agents out of batches */
    int exhausted_early;            /* before the window ended */
    /* At the drain deadline (gave_up): requests in flight, how long the
     * oldest of them had been, and batches due in the window not sent
     * yet. Under an offered rate above the collector's, the backlog of
     * due batches outlasts the drain and every agent has one in flight:
     * a loader giving up, not requests the collector lost (those end as
     * transport errors after CURLOPT_TIMEOUT, LOAD_REQ_TIMEOUT_S). */
    int gave_up;
    unsigned in_flight;
    double oldest_in_flight_ms;
    uint64_t unsent;
};

static int load_lat_add(struct load_result *r, double ms)
{
    if (r->n_lat == r->cap_lat) {
        size_t cap = r->cap_lat ? r->cap_lat * 2 : 65536;
        double *n = realloc(r->lat_ms, cap * sizeof(*n));

        if (!n)
            return -1;
        r->lat_ms = n;
        r->cap_lat = cap;
    }
    r->lat_ms[r->n_lat++] = ms;
    return 0;
}

/* Builds, packs and deflates batch @k of agent @a (@b events). */
static int load_encode(struct bench_agent *ba, unsigned b,
                       struct load_body *out)
{
    Sextant__V1__Batch batch = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Event *evs = calloc(b, sizeof(*evs));
    Sextant__V1__Event **evp = calloc(b, sizeof(*evp));
    Sextant__V1__ProbeResult *prs = calloc(b, sizeof(*prs));
    Sextant__V1__Timings *tms = calloc(b, sizeof(*tms));
    Sextant__V1__StateChange *scs = calloc(b, sizeof(*scs));
    int rc = -1;

    if (!evs || !evp || !prs || !tms || !scs)
        goto out;
    for (unsigned i = 0; i < b; i++) {
        struct bench_event ev;
        char *text;

        bench_agent_next(ba, &ev);
        text = ev.text >= 0 ? (char *)bench_texts[ev.text] : "";
        sextant__v1__event__init(&evs[i]);
        evs[i].seq = ev.seq;
        evs[i].unix_ms = ev.unix_ms;
        if (ev.kind == BENCH_STATE) {
            sextant__v1__state_change__init(&scs[i]);
            scs[i].target = (char *)bench_targets[ev.target];
            scs[i].from = (Sextant__V1__Health)ev.from;
            scs[i].to = (Sextant__V1__Health)ev.to;
            scs[i].reason = text;
            evs[i].kind_case = SEXTANT__V1__EVENT__KIND_STATE;
            evs[i].state = &scs[i];
        } else {
            sextant__v1__probe_result__init(&prs[i]);
            sextant__v1__timings__init(&tms[i]);
            tms[i].dns_us = ev.dns_us;
            tms[i].connect_us = ev.connect_us;
            tms[i].tls_us = ev.tls_us;
            tms[i].first_byte_us = ev.first_byte_us;
            tms[i].total_us = ev.total_us;
            prs[i].target = (char *)bench_targets[ev.target];
            prs[i].type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
            prs[i].ok = ev.ok;
            prs[i].status = ev.status;
            prs[i].error = text;
            prs[i].timings = &tms[i];
            prs[i].cert_not_after_unix_ms = ev.cert_not_after_ms;
            evs[i].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
            evs[i].probe = &prs[i];
        }
        evp[i] = &evs[i];
    }
    batch.cluster = (char *)bench_clusters[ba->cluster];
    batch.region = batch.cluster;
    batch.node = ba->node;
    batch.agent_version = "bench";
    batch.epoch = ba->epoch;
    batch.first_seq = evs[0].seq;
    batch.n_events = b;
    batch.events = evp;
    /* Sent when its last event was recorded, on the agent's clock; one
     * batch in flight, so the oldest unacked seq is its first. */
    batch.sent_unix_ms = evs[b - 1].unix_ms;
    batch.oldest_seq = evs[0].seq;
    if (wire_batch_encode(&batch, &out->p, &out->len) < 0)
        goto out;
    out->last_seq = evs[b - 1].seq;
    out->events = b;
    rc = 0;
out:
    free(evs);
    free(evp);
    free(prs);
    free(tms);
    free(scs);
    return rc;
}

static size_t load_write(char *p, size_t sz, size_t n, void *arg)
{
    struct load_agent *a = arg;
    size_t add = sz * n;

    if (a->reply_len + add > sizeof(a->reply))
        return 0;
    memcpy(a->reply + a->reply_len, p, add);
    a->reply_len += add;
    return add;
}

static int load_agent_setup(struct load_agent *a, const struct load_opts *o,
                            unsigned cluster)
{
    char auth[256];

    a->h = curl_easy_init();
    if (!a->h)
        return -1;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
             o->tokens[cluster]);
    a->hdrs = curl_slist_append(a->hdrs, auth);
    a->hdrs = curl_slist_append(a->hdrs,
                                "Content-Type: application/x-protobuf");
    a->hdrs = curl_slist_append(a->hdrs, "Content-Encoding: deflate");
    a->hdrs = curl_slist_append(a->hdrs, "Expect:");    /* no 100-continue */
    if (!a->hdrs)
        return -1;
    curl_easy_setopt(a->h, CURLOPT_URL, o->url);
    curl_easy_setopt(a->h, CURLOPT_HTTPHEADER, a->hdrs);
    curl_easy_setopt(a->h, CURLOPT_WRITEFUNCTION, load_write);
    curl_easy_setopt(a->h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(a->h, CURLOPT_PRIVATE, a);
    curl_easy_setopt(a->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(a->h, CURLOPT_TIMEOUT, LOAD_REQ_TIMEOUT_S);
    curl_easy_setopt(a->h, CURLOPT_TCP_NODELAY, 1L);
    if (o->bind) {
        /* One node, one address: the collector's per-address connection
         * limit sees 200 nodes, not one. */
        unsigned g = o->first + a->index;

        snprintf(a->addr, sizeof(a->addr), "127.2.%u.%u", g / 250 + 1,
                 g % 250 + 1);
        curl_easy_setopt(a->h, CURLOPT_INTERFACE, a->addr);
    }
    return 0;
}

/* Starts @a's current batch. */
static int load_send(CURLM *m, struct load_agent *a)
{
    const struct load_body *b = &a->bodies[a->next];

    a->reply_len = 0;
    curl_easy_setopt(a->h, CURLOPT_POSTFIELDS, (const char *)b->p);
    curl_easy_setopt(a->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
    if (curl_multi_add_handle(m, a->h) != CURLM_OK)
        return -1;
    a->busy = 1;
    a->sent_us = util_mono_us();
    return 0;
}

/* When batch @k of agent @i is due in open loop: slot k * N + i. */
static int64_t load_slot_us(const struct load_opts *o, int64_t start_us,
                            unsigned i, unsigned k)
{
    double slot = (double)k * o->agents + i;

    return start_us + (int64_t)(slot / o->rate * 1e6);
}

/* A request of @a ended: counts it, and sets what @a does next. */
static void load_done(const struct load_opts *o, struct load_agent *a,
                      CURLcode cc, int64_t now, int64_t start_us,
                      int64_t warm_us, int64_t end_us, struct load_result *r)
{
    const struct load_body *b = &a->bodies[a->next];
    Sextant__V1__Ack ack;
    curl_off_t retry = -1;
    long status = 0;

    a->busy = 0;
    if (cc != CURLE_OK) {
        r->transport_errors++;
        a->due_us = now + LOAD_RETRY_US;
        return;
    }
    curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        if (status == 503) {
            r->status_503++;
            curl_easy_getinfo(a->h, CURLINFO_RETRY_AFTER, &retry);
        } else {
            r->status_other++;
        }
        a->due_us = now + (retry > 0 ? (int64_t)retry * 1000000
                                     : LOAD_RETRY_US);
        return;
    }
    r->status_200++;
    if (wire_ack_decode((const uint8_t *)a->reply, a->reply_len, &ack) < 0 ||
        ack.acked_seq != b->last_seq)
        r->ack_mismatch++;
    if (now >= warm_us && now < end_us) {
        r->events_window += b->events;
        r->batches_window++;
    }
    if (a->base_us >= warm_us && a->base_us < end_us)
        load_lat_add(r, (double)(now - a->base_us) / 1000.0);
    a->next++;
    if (a->next >= a->n_bodies) {
        r->exhausted++;
        if (now < end_us)
            r->exhausted_early = 1;
        a->due_us = INT64_MAX;
        return;
    }
    a->base_us = o->rate > 0 ? load_slot_us(o, start_us, a->index, a->next)
                             : now;
    a->due_us = a->base_us;
}

/* The drain deadline passed at @now: records what was still outstanding
 * (struct load_result says why this is no lost request) and says so. */
static void load_give_up(const struct load_opts *o,
                         const struct load_agent *agents, int64_t start_us,
                         int64_t end_us, int64_t now, struct load_result *r)
{
    int64_t oldest = now;

    r->gave_up = 1;
    for (unsigned i = 0; i < o->agents; i++) {
        const struct load_agent *a = &agents[i];
        unsigned k = a->next + (a->busy ? 1 : 0);

        if (a->busy) {
            r->in_flight++;
            if (a->sent_us < oldest)
                oldest = a->sent_us;
        }
        /* Open loop: later batches whose slot was before the end. */
        for (; o->rate > 0 && k < a->n_bodies &&
               load_slot_us(o, start_us, a->index, k) < end_us; k++)
            r->unsent++;
    }
    r->oldest_in_flight_ms = (double)(now - oldest) / 1000.0;
    fprintf(stderr, "ingest_load: gave up %d s after the window, the "
            "collector behind the offered rate: %u batches in flight (the "
            "oldest sent %.0f ms ago), %" PRIu64 " due in the window not "
            "sent yet\n", LOAD_DRAIN_US / 1000000, r->in_flight,
            r->oldest_in_flight_ms, r->unsent);
}

/* Runs the load until the window ends and every batch started in it is
 * answered, or LOAD_DRAIN_US later (r->gave_up). */
static int load_run(const struct load_opts *o, struct load_agent *agents,
                    struct load_result *r)
{
    CURLM *m = curl_multi_init();
    int64_t start = util_mono_us();
    int64_t warm = start + (int64_t)(o->warmup * 1e6);
    int64_t end = warm + (int64_t)(o->duration * 1e6);
    int running = 0, rc = -1;

    if (!m)
        return -1;
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)o->agents + 16);
    for (unsigned i = 0; i < o->agents; i++) {
        agents[i].base_us = o->rate > 0 ? load_slot_us(o, start, i, 0)
                                        : start;
        agents[i].due_us = agents[i].base_us;
    }
    for (;;) {
        int64_t now = util_mono_us(), next_due = INT64_MAX;
        unsigned busy = 0;
        CURLMsg *msg;
        int left;

        for (unsigned i = 0; i < o->agents; i++) {
            struct load_agent *a = &agents[i];

            /* A new batch only before the end; a retry always. */
            if (!a->busy && a->due_us <= now &&
                (a->base_us < end || a->due_us != a->base_us)) {
                if (load_send(m, a) < 0)
                    goto out;
            }
            if (a->busy)
                busy++;
            else if (a->due_us < next_due &&
                     (a->base_us < end || a->due_us != a->base_us))
                next_due = a->due_us;
        }
        if (busy == 0 && next_due == INT64_MAX)
            break;                      /* all answered, nothing due */
        if (now >= end + LOAD_DRAIN_US) {
            load_give_up(o, agents, start, end, now, r);
            break;
        }
        if (curl_multi_perform(m, &running) != CURLM_OK)
            goto out;
        while ((msg = curl_multi_info_read(m, &left))) {
            struct load_agent *a;
            char *priv = NULL;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            a = (struct load_agent *)(void *)priv;
            curl_multi_remove_handle(m, a->h);
            load_done(o, a, msg->data.result, util_mono_us(), start, warm,
                      end, r);
            if (a->due_us < next_due)   /* closed loop: at once */
                next_due = a->due_us;
        }
        now = util_mono_us();
        {
            int64_t wait_ms = LOAD_POLL_MS;

            if (next_due != INT64_MAX)
                wait_ms = next_due <= now ? 0 : (next_due - now + 999) / 1000;
            if (wait_ms > LOAD_POLL_MS)
                wait_ms = LOAD_POLL_MS;
            if (curl_multi_poll(m, NULL, 0, (int)wait_ms, NULL) != CURLM_OK)
                goto out;
        }
    }
    rc = 0;
out:
    for (unsigned i = 0; i < o->agents; i++)
        if (agents[i].busy)
            curl_multi_remove_handle(m, agents[i].h);
    curl_multi_cleanup(m);
    return rc;
}

static int load_cmp(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;

    return a < b ? -1 : a > b;
}

/* Exact percentile by nearest rank of the sorted @v. */
static double load_pct(const double *v, size_t n, double q)
{
    size_t k = (size_t)ceil(q * (double)n);

    if (n == 0)
        return NAN;
    return v[k > 0 ? k - 1 : 0];
}

static void load_usage(void)
{
    fprintf(stderr,
        "usage: ingest_load --url URL --tokens T0,T1,T2 [--agents N]\n"
        "  [--batch-events B] [--batches K] [--duration S] [--warmup S]\n"
        "  [--rate R] [--seed S] [--step-ms MS] [--no-bind]\n"
        "  [--first-agent K] [--latencies FILE]\n");
}

/* Splits "T0,T1,T2" in place. */
static int load_tokens(char *s, struct load_opts *o)
{
    for (unsigned i = 0; i < BENCH_CLUSTERS; i++) {
        char *comma = strchr(s, ',');

        if ((comma != NULL) != (i + 1 < BENCH_CLUSTERS) || !s[0])
            return -1;
        if (comma)
            *comma = '\0';
        o->tokens[i] = s;
        s = comma ? comma + 1 : s;
    }
    return 0;
}

static int load_parse(int argc, char **argv, struct load_opts *o)
{
    static const struct option lopts[] = {
        { "url", required_argument, NULL, 'u' },
        { "tokens", required_argument, NULL, 'T' },
        { "agents", required_argument, NULL, 'a' },
        { "batch-events", required_argument, NULL, 'b' },
        { "batches", required_argument, NULL, 'k' },
        { "duration", required_argument, NULL, 'd' },
        { "warmup", required_argument, NULL, 'w' },
        { "rate", required_argument, NULL, 'r' },
        { "seed", required_argument, NULL, 's' },
        { "step-ms", required_argument, NULL, 'm' },
        { "no-bind", no_argument, NULL, 'n' },
        { "first-agent", required_argument, NULL, 'f' },
        { "latencies", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    int opt, have_tokens = 0;

    *o = (struct load_opts){ .agents = 200, .batch = 100, .batches = 100,
                             .duration = 30, .warmup = 5, .seed = 1,
                             .step_ms = 10, .bind = 1 };
    while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (opt) {
        case 'u': o->url = optarg; break;
        case 'T':
            if (load_tokens(optarg, o) < 0)
                return -1;
            have_tokens = 1;
            break;
        case 'a': o->agents = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'b': o->batch = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'k': o->batches = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': o->duration = strtod(optarg, NULL); break;
        case 'w': o->warmup = strtod(optarg, NULL); break;
        case 'r': o->rate = strtod(optarg, NULL); break;
        case 's': o->seed = strtoull(optarg, NULL, 10); break;
        case 'm': o->step_ms = strtoll(optarg, NULL, 10); break;
        case 'n': o->bind = 0; break;
        case 'f': o->first = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'l': o->lat_out = optarg; break;
        default: return -1;
        }
    }
    if (optind != argc || !o->url || !have_tokens || o->agents == 0 ||
        o->agents > LOAD_MAX_AGENTS ||
        o->first > LOAD_MAX_AGENTS - o->agents || o->batch == 0 ||
        o->batch > LOAD_MAX_BATCH || o->batches == 0 ||
        !(o->duration > 0) || !(o->warmup >= 0) || !(o->rate >= 0) ||
        o->step_ms <= 0)
        return -1;
    return 0;
}

/* Every batch of every agent, before the clock starts. */
static int load_prepare(const struct load_opts *o, struct load_agent *agents,
                        uint64_t *bytes)
{
    int64_t t0 = util_now_ms();

    *bytes = 0;
    for (unsigned i = 0; i < o->agents; i++) {
        struct load_agent *a = &agents[i];
        struct bench_agent ba;

        a->index = i;
        bench_agent_init(&ba, o->first + i, o->seed, t0, o->step_ms);
        a->bodies = calloc(o->batches, sizeof(*a->bodies));
        if (!a->bodies || load_agent_setup(a, o, ba.cluster) < 0)
            return -1;
        for (unsigned k = 0; k < o->batches; k++) {
            if (load_encode(&ba, o->batch, &a->bodies[k]) < 0)
                return -1;
            *bytes += a->bodies[k].len;
            a->n_bodies++;
        }
    }
    return 0;
}

/* One socket per agent: raises the open-files soft limit to the hard
 * limit (5000 agents need more than the usual 1024). The limit it got,
 * printed as nofile_limit; the run fails at connect when it is short. */
static unsigned long long load_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (unsigned long long)rl.rlim_cur;
}

static int load_lat_write(const char *path, const struct load_result *r)
{
    FILE *f = fopen(path, "w");
    int bad;

    if (!f)
        return -1;
    for (size_t i = 0; i < r->n_lat; i++)
        fprintf(f, "%.2f\n", r->lat_ms[i]);
    bad = ferror(f);
    return fclose(f) != 0 || bad ? -1 : 0;
}

static double load_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    struct load_opts o;
    struct load_agent *agents = NULL;
    struct load_result r = { 0 };
    uint64_t bytes = 0;
    unsigned long long nofile;
    double t0, cpu0, prep_s;
    int status = 1, valid;

    if (load_parse(argc, argv, &o) < 0) {
        load_usage();
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    nofile = load_nofile();
    if (nofile < (unsigned long long)o.agents + 64)
        fprintf(stderr, "ingest_load: open files limit %llu is short of "
                "%u agents' sockets: raise ulimit -Hn\n", nofile, o.agents);
    agents = calloc(o.agents, sizeof(*agents));
    if (!agents)
        goto out;
    t0 = (double)util_mono_us() / 1e6;
    if (load_prepare(&o, agents, &bytes) < 0) {
        fprintf(stderr, "ingest_load: pre-encoding failed (out of "
                "memory?)\n");
        goto out;
    }
    prep_s = (double)util_mono_us() / 1e6 - t0;
    cpu0 = load_cpu_s();
    t0 = (double)util_mono_us() / 1e6;
    if (load_run(&o, agents, &r) < 0)
        goto out;
    if (r.n_lat > 0)                    /* qsort must not get NULL */
        qsort(r.lat_ms, r.n_lat, sizeof(*r.lat_ms), load_cmp);
    if (o.lat_out && load_lat_write(o.lat_out, &r) < 0) {
        fprintf(stderr, "ingest_load: cannot write %s\n", o.lat_out);
        goto out;
    }
    valid = !r.exhausted_early && r.ack_mismatch == 0 && r.n_lat > 0 &&
            !r.gave_up;
    printf("mode=%s\nagents=%u\nbatch_events=%u\nrate_batches_per_s=%.1f\n"
           "preencoded_batches=%" PRIu64 "\npreencoded_bytes=%" PRIu64 "\n"
           "preencode_s=%.1f\nwarmup_s=%.1f\nwindow_s=%.1f\n"
           "batches_window=%" PRIu64 "\nevents_window=%" PRIu64 "\n"
           "events_per_s=%.0f\nbatches_per_s=%.1f\n",
           o.rate > 0 ? "open" : "closed", o.agents, o.batch, o.rate,
           (uint64_t)o.agents * o.batches, bytes, prep_s, o.warmup,
           o.duration, r.batches_window, r.events_window,
           (double)r.events_window / o.duration,
           (double)r.batches_window / o.duration);
    printf("status_200=%" PRIu64 "\nstatus_503=%" PRIu64 "\nstatus_other=%"
           PRIu64 "\ntransport_errors=%" PRIu64 "\nack_mismatch=%" PRIu64
           "\nexhausted_agents=%u\nexhausted_early=%d\n",
           r.status_200, r.status_503, r.status_other, r.transport_errors,
           r.ack_mismatch, r.exhausted, r.exhausted_early);
    printf("gave_up=%d\nin_flight_at_give_up=%u\noldest_in_flight_ms=%.0f\n"
           "unsent_at_give_up=%" PRIu64 "\n", r.gave_up, r.in_flight,
           r.oldest_in_flight_ms, r.unsent);
    printf("latency_n=%zu\nlatency_p50_ms=%.2f\nlatency_p95_ms=%.2f\n"
           "latency_p99_ms=%.2f\nlatency_p999_ms=%.2f\nlatency_max_ms=%.2f\n",
           r.n_lat, load_pct(r.lat_ms, r.n_lat, 0.50),
           load_pct(r.lat_ms, r.n_lat, 0.95),
           load_pct(r.lat_ms, r.n_lat, 0.99),
           load_pct(r.lat_ms, r.n_lat, 0.999),
           r.n_lat ? r.lat_ms[r.n_lat - 1] : NAN);
    printf("run_s=%.1f\nloader_cpu_s=%.1f\nnofile_limit=%llu\nvalid=%d\n",
           (double)util_mono_us() / 1e6 - t0, load_cpu_s() - cpu0, nofile,
           valid);
    status = valid ? 0 : 1;
out:
    for (unsigned i = 0; agents && i < o.agents; i++) {
        for (unsigned k = 0; k < agents[i].n_bodies; k++)
            free(agents[i].bodies[k].p);
        free(agents[i].bodies);
        curl_easy_cleanup(agents[i].h);
        curl_slist_free_all(agents[i].hdrs);
    }
    free(agents);
    free(r.lat_ms);
    curl_global_cleanup();
    return status;
}
