/* ingest_client.c -- a test client for POST /v1/ingest: builds a batch of
 * probe events with chosen seqs (or a deliberately bad body, or events
 * with absurd fields), with chosen delivery fields (oldest_seq, drops,
 * send time, previous RTT, spool backlog), sends it with chosen headers,
 * over HTTPS with chosen certificates if asked, and prints one line:
 * "STATUS ACKED_SEQ" for a 200 with an Ack, "STATUS BODY" otherwise ("0
 * transport error: MESSAGE" if no response came). Exit 0 when a
 * response came back, 1 if the request failed, 2 on bad usage.
 *
 * With --batches N it posts N batches of --batch-size events one after
 * the other on one connection, as fast as the collector acks them, and
 * prints "sent LO-HI" before each and its "200 ACKED" after (line by
 * line, so a test can read what was acked so far); it retries a batch
 * answered 503 and stops at the first other reply, printed as above. Not
 * part of the product. */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "wire.h"

#define CLIENT_MAX_RANGES 16
#define CLIENT_MAX_REPLY  (1u << 20)
#define CLIENT_MAX_RETRIES 200      /* of a batch answered 503, loop mode */
#define CLIENT_RETRY_US   50000

struct client_reply {
    char *buf;
    size_t len;
};

static size_t client_write(char *p, size_t sz, size_t n, void *arg)
{
    struct client_reply *r = arg;
    size_t add = sz * n;
    char *nb;

    if (r->len + add > CLIENT_MAX_REPLY)
        return 0;
    nb = realloc(r->buf, r->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->len, p, add);
    r->buf = nb;
    r->len += add;
    r->buf[r->len] = '\0';
    return add;
}

/* Batch header fields beyond the events. */
struct client_hdr {
    uint64_t oldest_seq;
    Sextant__V1__Drops drops;       /* count 0: none */
    int64_t sent_ms;                /* 0: not sent */
    uint32_t rtt_us;
    const char *region;             /* the agent's region */
    uint64_t spool_events;          /* Batch.spool_events, spool_bytes */
    uint64_t spool_bytes;
};

/* What every event of a batch carries besides its seq. */
struct client_evopt {
    int64_t t0;                     /* unix_ms = t0 + seq % 1000000 ... */
    int fixed_ms;                   /* ... or exactly event_ms */
    int64_t event_ms;
    const char *target;             /* 0x01 stands for NUL, see nul_at */
    const char *error;              /* NULL: a success */
    size_t n_labels;                /* > 0: metric samples, not probes */
    int has_nul;                    /* target's 0x01 bytes are NULs */
};

/* protobuf-c packs a string up to its first NUL, so a target with NULs
 * goes out with 0x01 in their place and is patched in the packed bytes:
 * every "field 1, length, target" (ProbeResult.target) gets its NULs. */
static void client_patch_nul(uint8_t *raw, size_t raw_len,
                             const char *target)
{
    size_t n = strlen(target), k;
    uint8_t key[2] = { 0x0a, (uint8_t)n };
    uint8_t *p = raw, *end = raw + raw_len;

    while (p < end) {
        p = memmem(p, (size_t)(end - p), key, sizeof(key));
        if (!p || (size_t)(end - p) < sizeof(key) + n)
            return;
        if (memcmp(p + sizeof(key), target, n) == 0)
            for (k = 0; k < n; k++)
                if (target[k] == 0x01)
                    p[sizeof(key) + k] = 0;
        p += sizeof(key);
    }
}

/* Packs @b, patches NULs in if asked, and deflates. */
static int client_encode(const Sextant__V1__Batch *b,
                         const struct client_evopt *eo, uint8_t **out,
                         size_t *out_len)
{
    size_t n = sextant__v1__batch__get_packed_size(b);
    uint8_t *raw;
    int rc;

    if (!eo->has_nul)
        return wire_batch_encode(b, out, out_len);
    raw = malloc(n + 1);
    if (!raw)
        return -1;
    n = sextant__v1__batch__pack(b, raw);
    client_patch_nul(raw, n, eo->target);
    rc = wire_deflate(raw, n, out, out_len);
    free(raw);
    return rc;
}

/* Builds the batch of events seq lo..hi for every range. */
static int client_batch(const char *cluster, const char *node,
                        uint64_t epoch, const uint64_t (*ranges)[2],
                        size_t n_ranges, const struct client_evopt *eo,
                        struct client_hdr *hdr, uint8_t **out,
                        size_t *out_len)
{
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Event *evs, **evp;
    Sextant__V1__ProbeResult *prs;
    Sextant__V1__Timings *tms;
    Sextant__V1__MetricSample *mss;
    Sextant__V1__Label *lbs = NULL, **lbp = NULL;
    char (*lnames)[24] = NULL;      /* "l" and a size_t */
    size_t n = 0, i = 0;
    int rc;

    for (size_t r = 0; r < n_ranges; r++)
        n += (size_t)(ranges[r][1] - ranges[r][0] + 1);
    evs = calloc(n ? n : 1, sizeof(*evs));
    evp = calloc(n ? n : 1, sizeof(*evp));
    prs = calloc(n ? n : 1, sizeof(*prs));
    tms = calloc(n ? n : 1, sizeof(*tms));
    mss = calloc(n ? n : 1, sizeof(*mss));
    if (eo->n_labels) {                 /* one label set, shared */
        lbs = calloc(eo->n_labels, sizeof(*lbs));
        lbp = calloc(eo->n_labels, sizeof(*lbp));
        lnames = calloc(eo->n_labels, sizeof(*lnames));
    }
    if (!evs || !evp || !prs || !tms || !mss ||
        (eo->n_labels && (!lbs || !lbp || !lnames))) {
        rc = -1;
        goto out;
    }
    for (size_t k = 0; k < eo->n_labels; k++) {
        sextant__v1__label__init(&lbs[k]);
        snprintf(lnames[k], sizeof(lnames[k]), "l%zu", k);
        lbs[k].name = lnames[k];
        lbs[k].value = "v";
        lbp[k] = &lbs[k];
    }
    for (size_t r = 0; r < n_ranges; r++) {
        for (uint64_t s = ranges[r][0]; s <= ranges[r][1]; s++, i++) {
            sextant__v1__event__init(&evs[i]);
            evs[i].seq = s;
            evs[i].unix_ms = eo->fixed_ms ? eo->event_ms
                           : eo->t0 + (int64_t)(s % 1000000); /* huge seqs */
            if (eo->n_labels) {
                sextant__v1__metric_sample__init(&mss[i]);
                mss[i].name = "test_metric";
                mss[i].target = (char *)eo->target;
                mss[i].value = (double)s;
                mss[i].n_labels = eo->n_labels;
                mss[i].labels = lbp;
                evs[i].kind_case = SEXTANT__V1__EVENT__KIND_METRIC;
                evs[i].metric = &mss[i];
            } else {
                sextant__v1__probe_result__init(&prs[i]);
                sextant__v1__timings__init(&tms[i]);
                tms[i].total_us = 1000 + s;
                prs[i].target = (char *)eo->target;
                prs[i].type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
                prs[i].ok = eo->error == NULL;
                prs[i].status = eo->error ? 0 : 200;
                prs[i].error = (char *)eo->error;
                prs[i].timings = &tms[i];
                evs[i].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
                evs[i].probe = &prs[i];
            }
            evp[i] = &evs[i];
        }
    }
    b.cluster = (char *)cluster;
    b.region = (char *)hdr->region;
    b.node = (char *)node;
    b.agent_version = "test";
    b.epoch = epoch;
    b.first_seq = n ? evs[0].seq : 0;
    b.n_events = n;
    b.events = evp;
    b.sent_unix_ms = hdr->sent_ms;
    b.prev_rtt_us = hdr->rtt_us;
    b.oldest_seq = hdr->oldest_seq;
    b.spool_events = hdr->spool_events;
    b.spool_bytes = hdr->spool_bytes;
    if (hdr->drops.count > 0)
        b.drops = &hdr->drops;
    rc = client_encode(&b, eo, out, out_len);
out:
    free(evs);
    free(evp);
    free(prs);
    free(tms);
    free(mss);
    free(lbs);
    free(lbp);
    free(lnames);
    return rc;
}

/* A string of @n copies of @c; caller frees. */
static char *client_fill(size_t n, char c)
{
    char *s = malloc(n + 1);

    if (s) {
        memset(s, c, n);
        s[n] = '\0';
    }
    return s;
}

/* Hex to bytes, NUL written as 0x01 (see client_patch_nul); caller frees.
 * NULL on bad hex, a 0x01 byte, or (with NULs) over 127 bytes: the patch
 * assumes a one-byte length. */
static char *client_unhex(const char *hex, int *has_nul)
{
    size_t n = strlen(hex) / 2, i;
    unsigned v;
    char *s;

    if (strlen(hex) % 2 != 0)
        return NULL;
    s = malloc(n + 1);
    if (!s)
        return NULL;
    *has_nul = 0;
    for (i = 0; i < n; i++) {
        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || v == 0x01) {
            free(s);
            return NULL;
        }
        if (v == 0)
            *has_nul = 1;
        s[i] = v ? (char)v : 0x01;
    }
    s[n] = '\0';
    if (*has_nul && n > 127) {
        free(s);
        return NULL;
    }
    return s;
}

/* Writes the body as sent, for tests that count bytes. */
static int client_dump(const char *path, const uint8_t *body, size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (!f)
        return -1;
    if (len && fwrite(body, 1, len, f) != len)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* Replaces the encoded batch with a bad body of the named kind. */
static int client_bad_body(const char *kind, uint8_t **body, size_t *len)
{
    uint8_t *raw = NULL;
    size_t n;
    int rc = 0;

    if (strcmp(kind, "random") == 0 || strcmp(kind, "zlib-random") == 0) {
        n = 4096;
        raw = malloc(n);
        if (!raw)
            return -1;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = 0;
            util_random_u64(&v);
            memcpy(raw + i, &v, 8);
        }
        raw[0] = 0xff;      /* never a valid zlib header nor a proto tag */
        free(*body);
        *body = NULL;
        if (kind[0] == 'r') {
            *body = raw;
            *len = n;
            return 0;
        }
        rc = wire_deflate(raw, n, body, len);
    } else if (strcmp(kind, "truncated") == 0) {
        *len /= 2;
    } else if (strcmp(kind, "bomb") == 0) {     /* 64 MiB of zeros: 64 KiB */
        n = 64u << 20;
        raw = calloc(1, n);
        if (!raw)
            return -1;
        free(*body);
        *body = NULL;
        rc = wire_deflate(raw, n, body, len);
    } else if (strcmp(kind, "corrupt") == 0) {
        for (size_t i = *len / 3; i < *len / 3 + 8 && i < *len; i++)
            (*body)[i] ^= 0x5a;
    } else {
        rc = -1;
    }
    free(raw);
    return rc;
}

struct client_src {
    const uint8_t *p;
    size_t left;
};

/* Feeds a chunked upload a piece at a time. */
static size_t client_read(char *buf, size_t sz, size_t n, void *arg)
{
    struct client_src *src = arg;
    size_t k = sz * n < src->left ? sz * n : src->left;

    memcpy(buf, src->p, k);
    src->p += k;
    src->left -= k;
    return k;
}

static void client_usage(void)
{
    fprintf(stderr,
        "usage: ingest_client --url URL [--token T] [--cluster C] [--node N]\n"
        "  [--epoch N] [--seq LO-HI]... [--t0 MS] [--target NAME]\n"
        "  [--region R] (the agent's; default test-region)\n"
        "  [--content-type T] [--encoding E] (\"-\" omits the header)\n"
        "  [--body random|zlib-random|truncated|bomb|corrupt] [--chunked]\n"
        "  (bomb: 64 MiB of zeros, deflated to some 64 KiB)\n"
        "  [--pad BYTES] (sends BYTES of zeros as an uncompressed body)\n"
        "  [--oldest-seq N] [--drops COUNT:FIRST-LAST[@FROM_MS-TO_MS]]\n"
        "  [--sent-ms MS] (absolute; +MS or -MS: relative to now; 0 omits;\n"
        "  default now) [--rtt-us N] [--spool EVENTS:BYTES]\n"
        "  [--cacert PEM] [--cert PEM --key PEM] [--insecure]\n"
        "  [--dump FILE] (writes the body sent there too)\n"
        "  absurd events: [--target-len N] (N x 'x') [--target-hex HEX]\n"
        "  (raw bytes, 00 allowed) [--error-len N] (a failed probe with N\n"
        "  bytes of error) [--labels N] (metric samples with N labels)\n"
        "  [--event-ms MS] (every event's unix_ms)\n"
        "  loop: [--batches N [--batch-size M]] (N batches of M events, 10\n"
        "  by default, from the --seq LO or 1; prints \"sent LO-HI\" and\n"
        "  \"200 ACKED\" per batch, retries a 503 every 50 ms up to 200\n"
        "  times, stops at the first other reply)\n");
}

/* One connection's worth of settings, and the request in flight. */
struct client_conn {
    CURL *h;
    struct curl_slist *hdrs;
    int chunked;
    struct client_src src;
    struct client_reply reply;
    char errbuf[CURL_ERROR_SIZE];
};

/* Posts @body and prints the one line. 0: a 200 with an Ack (*acked), the
 * status of another reply (printed), -1: no response or no Ack
 * (printed). */
static int client_post(struct client_conn *c, const uint8_t *body,
                       size_t len, uint64_t *acked)
{
    Sextant__V1__Ack ack;
    long status = 0;

    free(c->reply.buf);
    c->reply.buf = NULL;
    c->reply.len = 0;
    c->errbuf[0] = '\0';
    if (!c->chunked) {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, (const char *)body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        c->src.p = body;
        c->src.left = len;
    }
    if (curl_easy_perform(c->h) != CURLE_OK &&
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status) ==
            CURLE_OK &&
        status == 0) {
        /* An early 413 may reset the upload: the status still counts. */
        printf("0 transport error: %s\n", c->errbuf);
        return -1;
    }
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        printf("%ld %s\n", status, c->reply.buf ? c->reply.buf : "");
        return status > 0 ? (int)status : -1;
    }
    if (wire_ack_decode((uint8_t *)c->reply.buf, c->reply.len, &ack) < 0) {
        printf("200 bad-ack\n");
        return -1;
    }
    printf("200 %llu\n", (unsigned long long)ack.acked_seq);
    *acked = ack.acked_seq;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "token", required_argument, NULL, 'k' },
        { "cluster", required_argument, NULL, 'c' },
        { "node", required_argument, NULL, 'n' },
        { "epoch", required_argument, NULL, 'e' },
        { "seq", required_argument, NULL, 's' },
        { "t0", required_argument, NULL, 't' },
        { "target", required_argument, NULL, 'g' },
        { "content-type", required_argument, NULL, 'T' },
        { "encoding", required_argument, NULL, 'E' },
        { "body", required_argument, NULL, 'b' },
        { "chunked", no_argument, NULL, 'C' },
        { "pad", required_argument, NULL, 'p' },
        { "oldest-seq", required_argument, NULL, 'o' },
        { "drops", required_argument, NULL, 'd' },
        { "sent-ms", required_argument, NULL, 'S' },
        { "rtt-us", required_argument, NULL, 'r' },
        { "cacert", required_argument, NULL, 'A' },
        { "cert", required_argument, NULL, 'X' },
        { "key", required_argument, NULL, 'K' },
        { "insecure", no_argument, NULL, 'I' },
        { "dump", required_argument, NULL, 'D' },
        { "target-len", required_argument, NULL, 'L' },
        { "target-hex", required_argument, NULL, 'H' },
        { "error-len", required_argument, NULL, 'R' },
        { "labels", required_argument, NULL, 'B' },
        { "event-ms", required_argument, NULL, 'M' },
        { "batches", required_argument, NULL, 'N' },
        { "batch-size", required_argument, NULL, 'Z' },
        { "region", required_argument, NULL, 'G' },
        { "spool", required_argument, NULL, 'P' },
        { NULL, 0, NULL, 0 },
    };
    const char *url = NULL, *token = NULL, *cluster = "test", *node = "n1";
    const char *ctype = "application/x-protobuf", *enc = "deflate";
    const char *bad = NULL;
    const char *cacert = NULL, *cert = NULL, *key = NULL, *dump = NULL;
    struct client_hdr bh = { .drops = SEXTANT__V1__DROPS__INIT,
                             .region = "test-region" };
    struct client_evopt eo = { .target = "web" };
    struct client_conn conn = { 0 };
    char *target_buf = NULL, *error_buf = NULL;
    int insecure = 0, n_scan;
    uint64_t ranges[CLIENT_MAX_RANGES][2];
    size_t n_ranges = 0, pad = 0, batches = 0, batch_size = 10;
    uint64_t epoch = 42, acked = 0;
    int64_t now = util_now_ms();
    int opt, rc = 1;
    char hdr[512];
    uint8_t *body = NULL;
    size_t len = 0;

    eo.t0 = now;
    bh.sent_ms = now;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'k': token = optarg; break;
        case 'G': bh.region = optarg; break;
        case 'c': cluster = optarg; break;
        case 'n': node = optarg; break;
        case 'e': epoch = strtoull(optarg, NULL, 0); break;
        case 't': eo.t0 = strtoll(optarg, NULL, 10); break;
        case 'g': eo.target = optarg; break;
        case 'T': ctype = optarg; break;
        case 'E': enc = optarg; break;
        case 'b': bad = optarg; break;
        case 'C': conn.chunked = 1; break;
        case 'p': pad = strtoull(optarg, NULL, 10); break;
        case 'o': bh.oldest_seq = strtoull(optarg, NULL, 10); break;
        case 'r': bh.rtt_us = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'A': cacert = optarg; break;
        case 'X': cert = optarg; break;
        case 'K': key = optarg; break;
        case 'I': insecure = 1; break;
        case 'D': dump = optarg; break;
        case 'B': eo.n_labels = strtoull(optarg, NULL, 10); break;
        case 'N': batches = strtoull(optarg, NULL, 10); break;
        case 'Z': batch_size = strtoull(optarg, NULL, 10); break;
        case 'M':
            eo.fixed_ms = 1;
            eo.event_ms = strtoll(optarg, NULL, 10);
            break;
        case 'L':
            free(target_buf);
            target_buf = client_fill(strtoull(optarg, NULL, 10), 'x');
            eo.target = target_buf;
            eo.has_nul = 0;
            break;
        case 'H':
            free(target_buf);
            target_buf = client_unhex(optarg, &eo.has_nul);
            if (!target_buf) {
                client_usage();
                rc = 2;
                goto out;
            }
            eo.target = target_buf;
            break;
        case 'R':
            free(error_buf);
            error_buf = client_fill(strtoull(optarg, NULL, 10), 'e');
            eo.error = error_buf;
            break;
        case 'S':
            bh.sent_ms = strtoll(optarg, NULL, 10);
            if (optarg[0] == '+' || optarg[0] == '-')
                bh.sent_ms += now;
            break;
        case 'P':
            if (sscanf(optarg, "%" SCNu64 ":%" SCNu64, &bh.spool_events,
                       &bh.spool_bytes) != 2) {
                client_usage();
                rc = 2;
                goto out;
            }
            break;
        case 'd':
            n_scan = sscanf(optarg, "%" SCNu64 ":%" SCNu64 "-%" SCNu64
                            "@%" SCNd64 "-%" SCNd64, &bh.drops.count,
                            &bh.drops.first_seq, &bh.drops.last_seq,
                            &bh.drops.first_unix_ms, &bh.drops.last_unix_ms);
            if (n_scan != 3 && n_scan != 5) {
                client_usage();
                rc = 2;
                goto out;
            }
            break;
        case 's':
            if (n_ranges == CLIENT_MAX_RANGES ||
                sscanf(optarg, "%" SCNu64 "-%" SCNu64, &ranges[n_ranges][0],
                       &ranges[n_ranges][1]) != 2 ||
                ranges[n_ranges][0] == 0 ||
                ranges[n_ranges][1] < ranges[n_ranges][0]) {
                client_usage();
                rc = 2;
                goto out;
            }
            n_ranges++;
            break;
        default:
            client_usage();
            rc = 2;
            goto out;
        }
    }
    if (!url || !eo.target ||
        (batches && (batch_size == 0 || n_ranges > 1 || pad || bad ||
                     conn.chunked))) {
        client_usage();
        rc = 2;
        goto out;
    }
    conn.h = curl_easy_init();
    if (!conn.h)
        goto out;
    if (token) {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
        conn.hdrs = curl_slist_append(conn.hdrs, hdr);
    }
    snprintf(hdr, sizeof(hdr), strcmp(ctype, "-") ? "Content-Type: %s"
                                                  : "Content-Type:", ctype);
    conn.hdrs = curl_slist_append(conn.hdrs, hdr);
    if (strcmp(enc, "-")) {
        snprintf(hdr, sizeof(hdr), "Content-Encoding: %s", enc);
        conn.hdrs = curl_slist_append(conn.hdrs, hdr);
    }
    /* A padded body stands for a big upload: ask first, as HTTP clients
     * do, so a 413 comes back before the body is sent (without it, the
     * server closing early can reset the upload before we read the 413). */
    conn.hdrs = curl_slist_append(conn.hdrs, pad ? "Expect: 100-continue"
                                                 : "Expect:");
    if (conn.chunked)
        conn.hdrs = curl_slist_append(conn.hdrs,
                                      "Transfer-Encoding: chunked");
    curl_easy_setopt(conn.h, CURLOPT_URL, url);
    curl_easy_setopt(conn.h, CURLOPT_HTTPHEADER, conn.hdrs);
    if (conn.chunked) {
        curl_easy_setopt(conn.h, CURLOPT_POST, 1L);
        curl_easy_setopt(conn.h, CURLOPT_READFUNCTION, client_read);
        curl_easy_setopt(conn.h, CURLOPT_READDATA, &conn.src);
    }
    curl_easy_setopt(conn.h, CURLOPT_WRITEFUNCTION, client_write);
    curl_easy_setopt(conn.h, CURLOPT_WRITEDATA, &conn.reply);
    curl_easy_setopt(conn.h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(conn.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(conn.h, CURLOPT_ERRORBUFFER, conn.errbuf);
    if (cacert)
        curl_easy_setopt(conn.h, CURLOPT_CAINFO, cacert);
    if (cert)
        curl_easy_setopt(conn.h, CURLOPT_SSLCERT, cert);
    if (key)
        curl_easy_setopt(conn.h, CURLOPT_SSLKEY, key);
    if (insecure) {
        curl_easy_setopt(conn.h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(conn.h, CURLOPT_SSL_VERIFYHOST, 0L);
    }

    if (batches) {
        uint64_t lo = n_ranges ? ranges[0][0] : 1;

        /* Line by line: a test reads what was acked while we run. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (size_t i = 0; i < batches; i++, lo += batch_size) {
            uint64_t r[1][2] = { { lo, lo + batch_size - 1 } };

            free(body);
            body = NULL;
            bh.sent_ms = util_now_ms();
            if (client_batch(cluster, node, epoch,
                             (const uint64_t (*)[2])r, 1, &eo, &bh, &body,
                             &len) < 0) {
                fprintf(stderr, "ingest_client: cannot build the body\n");
                goto out;
            }
            printf("sent %llu-%llu\n", (unsigned long long)r[0][0],
                   (unsigned long long)r[0][1]);
            /* 503 stored nothing and asks to retry, as an agent would
             * (say while the collector's store is not ready yet). */
            for (int t = 0; t < CLIENT_MAX_RETRIES; t++) {
                rc = client_post(&conn, body, len, &acked);
                if (rc != 503)
                    break;
                usleep(CLIENT_RETRY_US);
            }
            if (rc != 0) {
                rc = rc < 0;        /* 1 only if no response came */
                goto out;
            }
        }
        rc = 0;
        goto out;
    }

    if (pad) {
        body = calloc(1, pad);
        len = pad;
    } else if (client_batch(cluster, node, epoch,
                            (const uint64_t (*)[2])ranges, n_ranges, &eo,
                            &bh, &body, &len) < 0 ||
               (bad && client_bad_body(bad, &body, &len) < 0)) {
        fprintf(stderr, "ingest_client: cannot build the body\n");
        goto out;
    }
    if (dump && client_dump(dump, body, len) < 0) {
        fprintf(stderr, "ingest_client: cannot write %s\n", dump);
        goto out;
    }
    rc = client_post(&conn, body, len, &acked) < 0;
out:
    if (conn.h)
        curl_easy_cleanup(conn.h);
    curl_slist_free_all(conn.hdrs);
    free(conn.reply.buf);
    free(body);
    free(target_buf);
    free(error_buf);
    return rc;
}
