/* spool_fill.c -- fills an agent spool with N probe events through the
 * spool API, the way the agent appends them, for the drain benchmark
 * (bench/drain_bench.sh). The events look like HTTP probe results of
 * 100 targets "t000".."t099", each with its own timings, and get the
 * spool's seqs 1..N in a new spool. The spool's byte bound is lifted
 * (the agent sets its own from spool.max_bytes when it starts), and a fill
 * that dropped anything fails. Not part of the product.
 *
 * usage: spool_fill SPOOL N [CHUNK]
 *   CHUNK events per transaction (default 5000; one fsync each)
 * Prints "filled N events, seq A..B, EPOCH_HEX" on success. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "util.h"
#include "wire.h"

#define FILL_MAX_CHUNK 100000u
#define FILL_TARGETS   100u
#define FILL_MAX_BYTES (1ull << 40)     /* no drops while filling */

int main(int argc, char **argv)
{
    Sextant__V1__Event *evs = NULL, **evp = NULL;
    Sextant__V1__ProbeResult *prs = NULL;
    Sextant__V1__Timings *tms = NULL;
    char names[FILL_TARGETS][8], err[SPOOL_ERR_LEN];
    unsigned long long n, chunk = 5000, done = 0, first = 0, last = 0;
    struct spool_stats stats;
    struct spool *sp = NULL;
    int status = 1, rc;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: spool_fill SPOOL N [CHUNK]\n");
        return 2;
    }
    n = strtoull(argv[2], NULL, 10);
    if (argc == 4)
        chunk = strtoull(argv[3], NULL, 10);
    if (n == 0 || chunk == 0 || chunk > FILL_MAX_CHUNK) {
        fprintf(stderr, "spool_fill: N >= 1 and 1 <= CHUNK <= %u\n",
                FILL_MAX_CHUNK);
        return 2;
    }
    for (unsigned i = 0; i < FILL_TARGETS; i++)
        snprintf(names[i], sizeof(names[i]), "t%03u", i);
    evs = calloc(chunk, sizeof(*evs));
    evp = calloc(chunk, sizeof(*evp));
    prs = calloc(chunk, sizeof(*prs));
    tms = calloc(chunk, sizeof(*tms));
    if (!evs || !evp || !prs || !tms) {
        fprintf(stderr, "spool_fill: out of memory\n");
        goto out;
    }
    rc = spool_open(argv[1], &sp, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "spool_fill: %s: %s\n", argv[1], err);
        goto out;
    }
    rc = spool_set_max_bytes(sp, FILL_MAX_BYTES);
    if (rc < 0) {
        fprintf(stderr, "spool_fill: cannot lift the bound: %s\n",
                strerror(-rc));
        goto out;
    }
    while (done < n) {
        size_t k = n - done < chunk ? (size_t)(n - done) : (size_t)chunk;
        int64_t now = util_now_ms();

        for (size_t i = 0; i < k; i++) {
            unsigned long long j = done + i;

            sextant__v1__event__init(&evs[i]);
            sextant__v1__probe_result__init(&prs[i]);
            sextant__v1__timings__init(&tms[i]);
            tms[i].dns_us = 20 + j % 7;
            tms[i].connect_us = 80 + j % 31;
            tms[i].first_byte_us = 300 + j % 97;
            tms[i].total_us = 350 + j % 101;
            prs[i].target = names[j % FILL_TARGETS];
            prs[i].type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
            prs[i].ok = 1;
            prs[i].status = 200;
            prs[i].timings = &tms[i];
            evs[i].unix_ms = now;
            evs[i].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
            evs[i].probe = &prs[i];
            evp[i] = &evs[i];
        }
        rc = spool_append_many(sp, evp, k);
        if (rc < 0) {
            fprintf(stderr, "spool_fill: append: %s (%s)\n", strerror(-rc),
                    spool_errmsg(sp));
            goto out;
        }
        if (!first)
            first = evs[0].seq;
        last = evs[k - 1].seq;
        done += k;
    }
    rc = spool_stats(sp, &stats);
    if (rc < 0) {
        fprintf(stderr, "spool_fill: stats: %s\n", strerror(-rc));
        goto out;
    }
    if (stats.dropped > 0 || stats.events < n) {
        fprintf(stderr, "spool_fill: the spool holds %llu events and "
                "dropped %llu\n", (unsigned long long)stats.events,
                (unsigned long long)stats.dropped);
        goto out;
    }
    printf("filled %llu events, seq %llu..%llu, epoch %016" PRIx64 "\n",
           done, first, last, spool_epoch(sp));
    status = 0;
out:
    spool_close(sp);
    free(evs);
    free(evp);
    free(prs);
    free(tms);
    return status;
}
