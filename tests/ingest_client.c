/* ingest_client.c -- a test client for POST /v1/ingest: builds a batch of
 * probe events with chosen seqs (or a deliberately bad body), with chosen
 * delivery fields (oldest_seq, drops, send time, previous RTT), sends it
 * with chosen headers, over HTTPS with chosen certificates if asked, and
 * prints one line: "STATUS ACKED_SEQ" for a 200 with an Ack, "STATUS BODY"
 * otherwise ("0 transport error: MESSAGE" if no response came). Exit 0
 * when a response came back, 1 if the request failed, 2 on bad usage. Not
 * part of the product. */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wire.h"

#define CLIENT_MAX_RANGES 16
#define CLIENT_MAX_REPLY  (1u << 20)

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
};

/* Builds the batch of probe events seq lo..hi for every range. */
static int client_batch(const char *cluster, const char *node,
                        uint64_t epoch, const uint64_t (*ranges)[2],
                        size_t n_ranges, int64_t t0, const char *target,
                        struct client_hdr *hdr, uint8_t **out,
                        size_t *out_len)
{
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Event *evs, **evp;
    Sextant__V1__ProbeResult *prs;
    Sextant__V1__Timings *tms;
    size_t n = 0, i = 0;
    int rc;

    for (size_t r = 0; r < n_ranges; r++)
        n += (size_t)(ranges[r][1] - ranges[r][0] + 1);
    evs = calloc(n ? n : 1, sizeof(*evs));
    evp = calloc(n ? n : 1, sizeof(*evp));
    prs = calloc(n ? n : 1, sizeof(*prs));
    tms = calloc(n ? n : 1, sizeof(*tms));
    if (!evs || !evp || !prs || !tms) {
        rc = -1;
        goto out;
    }
    for (size_t r = 0; r < n_ranges; r++) {
        for (uint64_t s = ranges[r][0]; s <= ranges[r][1]; s++, i++) {
            sextant__v1__event__init(&evs[i]);
            sextant__v1__probe_result__init(&prs[i]);
            sextant__v1__timings__init(&tms[i]);
            tms[i].total_us = 1000 + s;
            prs[i].target = (char *)target;
            prs[i].type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
            prs[i].ok = 1;
            prs[i].status = 200;
            prs[i].timings = &tms[i];
            evs[i].seq = s;
            evs[i].unix_ms = t0 + (int64_t)(s % 1000000); /* huge seqs */
            evs[i].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
            evs[i].probe = &prs[i];
            evp[i] = &evs[i];
        }
    }
    b.cluster = (char *)cluster;
    b.region = "test-region";
    b.node = (char *)node;
    b.agent_version = "test";
    b.epoch = epoch;
    b.first_seq = n ? evs[0].seq : 0;
    b.n_events = n;
    b.events = evp;
    b.sent_unix_ms = hdr->sent_ms;
    b.prev_rtt_us = hdr->rtt_us;
    b.oldest_seq = hdr->oldest_seq;
    if (hdr->drops.count > 0)
        b.drops = &hdr->drops;
    rc = wire_batch_encode(&b, out, out_len);
out:
    free(evs);
    free(evp);
    free(prs);
    free(tms);
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

static void client_usage(void)
{
    fprintf(stderr,
        "usage: ingest_client --url URL [--token T] [--cluster C] [--node N]\n"
        "  [--epoch N] [--seq LO-HI]... [--t0 MS] [--target NAME]\n"
        "  [--content-type T] [--encoding E] (\"-\" omits the header)\n"
        "  [--body random|zlib-random|truncated|bomb|corrupt] [--chunked]\n"
        "  (bomb: 64 MiB of zeros, deflated to some 64 KiB)\n"
        "  [--pad BYTES] (sends BYTES of zeros as an uncompressed body)\n"
        "  [--oldest-seq N] [--drops COUNT:FIRST-LAST[@FROM_MS-TO_MS]]\n"
        "  [--sent-ms MS] (absolute; +MS or -MS: relative to now; 0 omits;\n"
        "  default now) [--rtt-us N]\n"
        "  [--cacert PEM] [--cert PEM --key PEM] [--insecure]\n"
        "  [--dump FILE] (writes the body sent there too)\n");
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
        { NULL, 0, NULL, 0 },
    };
    const char *url = NULL, *token = NULL, *cluster = "test", *node = "n1";
    const char *ctype = "application/x-protobuf", *enc = "deflate";
    const char *bad = NULL, *target = "web";
    const char *cacert = NULL, *cert = NULL, *key = NULL, *dump = NULL;
    struct client_hdr bh = { .drops = SEXTANT__V1__DROPS__INIT };
    int insecure = 0, n_scan;
    char errbuf[CURL_ERROR_SIZE] = "";
    uint64_t ranges[CLIENT_MAX_RANGES][2];
    size_t n_ranges = 0, pad = 0;
    uint64_t epoch = 42;
    int64_t t0 = util_now_ms();
    int64_t now = t0;
    int chunked = 0, opt, rc = 1;
    struct curl_slist *hdrs = NULL;
    struct client_reply reply = { 0 };
    struct client_src src;
    char hdr[512];
    uint8_t *body = NULL;
    size_t len = 0;
    long status = 0;
    CURL *h;

    bh.sent_ms = now;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'k': token = optarg; break;
        case 'c': cluster = optarg; break;
        case 'n': node = optarg; break;
        case 'e': epoch = strtoull(optarg, NULL, 0); break;
        case 't': t0 = strtoll(optarg, NULL, 10); break;
        case 'g': target = optarg; break;
        case 'T': ctype = optarg; break;
        case 'E': enc = optarg; break;
        case 'b': bad = optarg; break;
        case 'C': chunked = 1; break;
        case 'p': pad = strtoull(optarg, NULL, 10); break;
        case 'o': bh.oldest_seq = strtoull(optarg, NULL, 10); break;
        case 'r': bh.rtt_us = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'A': cacert = optarg; break;
        case 'X': cert = optarg; break;
        case 'K': key = optarg; break;
        case 'I': insecure = 1; break;
        case 'D': dump = optarg; break;
        case 'S':
            bh.sent_ms = strtoll(optarg, NULL, 10);
            if (optarg[0] == '+' || optarg[0] == '-')
                bh.sent_ms += now;
            break;
        case 'd':
            n_scan = sscanf(optarg, "%" SCNu64 ":%" SCNu64 "-%" SCNu64
                            "@%" SCNd64 "-%" SCNd64, &bh.drops.count,
                            &bh.drops.first_seq, &bh.drops.last_seq,
                            &bh.drops.first_unix_ms, &bh.drops.last_unix_ms);
            if (n_scan != 3 && n_scan != 5) {
                client_usage();
                return 2;
            }
            break;
        case 's':
            if (n_ranges == CLIENT_MAX_RANGES ||
                sscanf(optarg, "%" SCNu64 "-%" SCNu64, &ranges[n_ranges][0],
                       &ranges[n_ranges][1]) != 2 ||
                ranges[n_ranges][0] == 0 ||
                ranges[n_ranges][1] < ranges[n_ranges][0]) {
                client_usage();
                return 2;
            }
            n_ranges++;
            break;
        default: client_usage(); return 2;
        }
    }
    if (!url) {
        client_usage();
        return 2;
    }
    if (pad) {
        body = calloc(1, pad);
        len = pad;
    } else if (client_batch(cluster, node, epoch,
                            (const uint64_t (*)[2])ranges, n_ranges, t0,
                            target, &bh, &body, &len) < 0 ||
               (bad && client_bad_body(bad, &body, &len) < 0)) {
        fprintf(stderr, "ingest_client: cannot build the body\n");
        goto out;
    }
    if (dump && client_dump(dump, body, len) < 0) {
        fprintf(stderr, "ingest_client: cannot write %s\n", dump);
        goto out;
    }
    h = curl_easy_init();
    if (!h)
        goto out;
    if (token) {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, hdr);
    }
    snprintf(hdr, sizeof(hdr), strcmp(ctype, "-") ? "Content-Type: %s"
                                                  : "Content-Type:", ctype);
    hdrs = curl_slist_append(hdrs, hdr);
    if (strcmp(enc, "-")) {
        snprintf(hdr, sizeof(hdr), "Content-Encoding: %s", enc);
        hdrs = curl_slist_append(hdrs, hdr);
    }
    /* A padded body stands for a big upload: ask first, as HTTP clients
     * do, so a 413 comes back before the body is sent (without it, the
     * server closing early can reset the upload before we read the 413). */
    hdrs = curl_slist_append(hdrs, pad ? "Expect: 100-continue" : "Expect:");
    if (chunked)
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (!chunked) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, (char *)body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        src.p = body;
        src.left = len;
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, client_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, client_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (cacert)
        curl_easy_setopt(h, CURLOPT_CAINFO, cacert);
    if (cert)
        curl_easy_setopt(h, CURLOPT_SSLCERT, cert);
    if (key)
        curl_easy_setopt(h, CURLOPT_SSLKEY, key);
    if (insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (curl_easy_perform(h) != CURLE_OK &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status == 0) {
        /* An early 413 may reset the upload: the status still counts. */
        printf("0 transport error: %s\n", errbuf);
        curl_easy_cleanup(h);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (status == 200) {
        Sextant__V1__Ack ack;
        if (wire_ack_decode((uint8_t *)reply.buf, reply.len, &ack) < 0) {
            printf("200 bad-ack\n");
            goto out;
        }
        printf("200 %llu\n", (unsigned long long)ack.acked_seq);
    } else {
        printf("%ld %s\n", status, reply.buf ? reply.buf : "");
    }
    rc = 0;
out:
    curl_slist_free_all(hdrs);
    free(body);
    free(reply.buf);
    return rc;
}
