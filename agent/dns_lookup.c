/* dns_lookup.c -- a few queries for one name at once, through dns_chan.c,
 * their replies read by dns_set.c (dns_lookup.h). Judges nothing: the
 * verdict and its words are the caller's. */
#include "dns_lookup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <ares.h>

#include "util.h"

/* One query ended (dns_chan_answer_fn): its records join the lookup's. */
static void dns_lookup_on_answer(void *arg, int status,
                                 const unsigned char *abuf, int alen)
{
    struct dns_lookup_slot *s = arg;
    struct dns_lookup *l = s->l;
    struct dns_set *into = &l->got[l->merge ? 0 : s->idx];

    l->q[s->idx] = NULL;            /* gone when we return */
    if (status == ARES_SUCCESS)
        status = dns_set_read_reply(into, l->qtype[s->idx], abuf, alen);
    l->status[s->idx] = status;
    if (--l->pending == 0)
        l->end_us = util_mono_us();
}

int dns_lookup_send(struct dns_lookup *l, const char *server,
                    long long timeout_ms, const char *name,
                    const int *qtypes, size_t n, int merge)
{
    int rc = 0;

    if (n > DNS_LOOKUP_MAX)
        n = DNS_LOOKUP_MAX;
    l->n = n;
    l->merge = merge;
    l->start_us = util_mono_us();
    l->deadline_us = l->start_us + timeout_ms * 1000;
    /* pending first: a query may be called back before dns_chan_query()
     * returns (a send that fails at once), and the callback only marks
     * the lookup, so its user never sees an answer before this returns. */
    l->pending = n;
    for (size_t i = 0; i < n && rc == 0; i++) {
        l->qtype[i] = qtypes[i];
        l->slot[i].l = l;
        l->slot[i].idx = (unsigned)i;
        rc = dns_chan_query(server, timeout_ms, name, qtypes[i],
                            dns_lookup_on_answer, &l->slot[i], &l->q[i],
                            l->setup_err, sizeof(l->setup_err));
    }
    if (rc == 0)
        return 0;
    /* None or only some went out: the lookup ends here, without them. */
    for (size_t i = 0; i < DNS_LOOKUP_MAX; i++) {
        dns_chan_abandon(l->q[i]);
        l->q[i] = NULL;
    }
    l->pending = 0;
    l->end_us = l->start_us;
    if (rc == -ENOMEM)
        return rc;
    if (!l->setup_err[0])
        snprintf(l->setup_err, sizeof(l->setup_err), "resolver set-up: %s",
                 strerror(-rc));
    return 0;
}

void dns_lookup_release(struct dns_lookup *l)
{
    for (size_t i = 0; i < DNS_LOOKUP_MAX; i++) {
        dns_chan_abandon(l->q[i]);
        l->q[i] = NULL;
        dns_set_free(&l->got[i]);
    }
}

int dns_lookup_ended(const struct dns_lookup *l, int64_t now_us)
{
    return l->pending == 0 || now_us >= l->deadline_us;
}

long dns_lookup_wait_ms(const struct dns_lookup *l, int64_t now_us)
{
    int64_t us = l->deadline_us - now_us;

    if (l->pending == 0 || us <= 0)
        return 0;
    return (long)((us + 999) / 1000);
}

int dns_lookup_late(const struct dns_lookup *l)
{
    return l->pending > 0 || l->end_us > l->deadline_us;
}

uint64_t dns_lookup_us(const struct dns_lookup *l, int64_t now_us)
{
    int64_t end = l->pending > 0 ? now_us : l->end_us;

    return end > l->start_us ? (uint64_t)(end - l->start_us) : 0;
}

size_t dns_lookup_failed(const struct dns_lookup *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->status[i] != ARES_SUCCESS && l->status[i] != ARES_ENODATA)
            return i;
    return l->n;
}
