/* dns_lookup.h -- one name asked of one nameserver set-up as a few
 * queries at once (A and AAAA, say) through dns_chan.h, with the replies
 * read into answer sets (dns_set.h), each query's status, and a deadline.
 * The mechanics the DNS probe (probe_dns.c) and the HTTP probe's own
 * resolution (http_resolve.c) share; each judges the outcome itself.
 *
 * A lookup is embedded in its user's run and must not move while queries
 * are in flight (their callbacks point into it). Callbacks only mark it;
 * the user polls dns_lookup_ended(). c-ares has no per-query cancel:
 * dns_lookup_release() abandons what is still in flight.
 *
 * Not thread-safe: the loop's thread only. */
#ifndef SEXTANT_AGENT_DNS_LOOKUP_H
#define SEXTANT_AGENT_DNS_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "dns_chan.h"
#include "dns_set.h"

#define DNS_LOOKUP_MAX 2u           /* queries: A and AAAA for "ANY" */
#define DNS_LOOKUP_ERR 96u          /* why no query could be sent */

struct dns_lookup;

/* What a query's callback gets: its lookup and which query it is. */
struct dns_lookup_slot {
    struct dns_lookup *l;
    unsigned idx;
};

/* Zeroed before dns_lookup_send(); then read, never written, by its user
 * (but for taking a set's records out of got, leaving it empty). */
struct dns_lookup {
    struct dns_chan_query *q[DNS_LOOKUP_MAX];   /* NULL once called back */
    struct dns_lookup_slot slot[DNS_LOOKUP_MAX];
    int qtype[DNS_LOOKUP_MAX];
    int status[DNS_LOOKUP_MAX];     /* ARES_ status of each answered one */
    /* Records of the replies: each query's own set, or with @merge all in
     * got[0]. */
    struct dns_set got[DNS_LOOKUP_MAX];
    int merge;
    size_t n;                       /* queries */
    size_t pending;                 /* not called back yet */
    int64_t start_us, deadline_us;  /* monotonic */
    int64_t end_us;                 /* last reply; 0 while pending */
    char setup_err[DNS_LOOKUP_ERR]; /* no query could be sent: why */
};

/* Sends @n (at most DNS_LOOKUP_MAX) queries of types @qtypes for @name
 * through @server (as dns_chan_query() takes it, NULL: the system's),
 * due within @timeout_ms from now. A server that cannot be set up is no
 * error here: the lookup ends at once with setup_err saying why. 0, or
 * -ENOMEM (nothing in flight; release it all the same). */
int dns_lookup_send(struct dns_lookup *l, const char *server,
                    long long timeout_ms, const char *name,
                    const int *qtypes, size_t n, int merge);

/* Abandons the queries still in flight and frees the answer sets. */
void dns_lookup_release(struct dns_lookup *l);

/* Every query came back, or the deadline passed. */
int dns_lookup_ended(const struct dns_lookup *l, int64_t now_us);
/* ms until it ends at the latest (0: it has). */
long dns_lookup_wait_ms(const struct dns_lookup *l, int64_t now_us);
/* An ended lookup that did not end in time: still pending at the
 * deadline, or its last reply came after it. */
int dns_lookup_late(const struct dns_lookup *l);
/* How long it took: to its last reply, or to @now_us while pending. */
uint64_t dns_lookup_us(const struct dns_lookup *l, int64_t now_us);
/* The first query that failed other than with NODATA, or l->n if none. */
size_t dns_lookup_failed(const struct dns_lookup *l);

#endif
