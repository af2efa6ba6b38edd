/* dns_chan.c -- c-ares channels and queries on the agent's loop
 * (dns_chan.h). Channels are shared by every query with the same
 * nameserver and timeout and count the queries they hold, abandoned
 * ones included, so a channel outlives every callback into it. Also
 * reads a "resolver" config value and puts c-ares statuses into words,
 * for every type that queries. Does not read replies (dns_set.c) or know
 * who asked. */
#include "dns_chan.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <ares.h>

#include "util.h"
#include "yconf.h"

#define DNS_TRIES           2       /* rounds over the nameservers */
/* c-ares waits T for the first round and 2T for the second: T is a
 * third of the timeout (see dns_chan_new). */
#define DNS_TIMEOUT_SHARES  3
#define DNS_CHAN_IDLE_US    (60LL * 1000000)   /* an unused channel lives */
#define DNS_CHAN_MAX_AGE_US (300LL * 1000000)  /* then resolv.conf is read
                                                  again by a new channel */
#define DNS_TRUNC_WAIT_MS   10L     /* poll fds the loop had no room for */
#define DNS_MAX_SERVER      64u     /* "[v6]:port" */

/* One resolver set-up (nameservers, timeout). Sharing it across queries
 * spares each the file reads and allocations of ares_init. */
struct dns_chan {
    struct dns_chan *next;
    ares_channel ch;
    char *server;               /* as given; NULL: the system's */
    long long timeout_ms;       /* of the queries it serves */
    size_t queries;             /* in c-ares now, abandoned ones included */
    int64_t created_us;
    int64_t idle_us;            /* when queries last dropped to 0 */
};

struct dns_chan_query {
    struct dns_chan *chan;
    dns_chan_answer_fn cb;      /* NULL once abandoned */
    void *arg;
};

/* Module state: all of it belongs to the loop's thread. */
static struct dns_chan *dns_chans;
static int dns_truncated;           /* poll_fds ran out of room */
static int dns_lib_ready;           /* ares_library_init() done */

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
     * takes longer; the caller's own deadline ends it at the timeout. */
    ao.timeout = timeout_ms / DNS_TIMEOUT_SHARES > 0
                     ? (int)(timeout_ms / DNS_TIMEOUT_SHARES) : 1;
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

/* c-ares is done with one query: with a reply, an error, a timeout of its
 * own, or its channel's destruction. */
static void dns_chan_on_answer(void *arg, int status, int timeouts,
                               unsigned char *abuf, int alen)
{
    struct dns_chan_query *q = arg;

    (void)timeouts;
    if (--q->chan->queries == 0)
        q->chan->idle_us = util_mono_us();
    if (q->cb)
        q->cb(q->arg, status, abuf, alen);
    free(q);
}

int dns_chan_query(const char *server, long long timeout_ms,
                   const char *name, int qtype, dns_chan_answer_fn cb,
                   void *arg, struct dns_chan_query **out, char *err,
                   size_t err_len)
{
    int64_t now = util_mono_us();
    struct dns_chan_query *q;
    struct dns_chan *c = NULL;
    int rc;

    q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    dns_reap(now);
    rc = dns_chan_get(server, timeout_ms, now, &c, err, err_len);
    if (rc < 0) {
        free(q);
        return rc;
    }
    q->chan = c;
    q->cb = cb;
    q->arg = arg;
    c->queries++;
    *out = q;                       /* before the callback can run */
    ares_query(c->ch, name, ns_c_in, qtype, dns_chan_on_answer, q);
    return 0;
}

void dns_chan_abandon(struct dns_chan_query *q)
{
    if (q)
        q->cb = NULL;
}

size_t dns_chan_poll_fds(struct curl_waitfd *fds, size_t max)
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

long dns_chan_poll_timeout_ms(void)
{
    long w = -1;

    for (struct dns_chan *c = dns_chans; c; c = c->next) {
        struct timeval tv, *tp;
        long ms;

        if (c->queries == 0)
            continue;
        tp = ares_timeout(c->ch, NULL, &tv);
        if (!tp)
            continue;
        ms = (long)(((int64_t)tp->tv_sec * 1000000 + tp->tv_usec + 999) /
                    1000);
        if (w < 0 || ms < w)
            w = ms;
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
 * EAGAIN, which c-ares takes as "not yet". */
static void dns_chan_process_one(struct dns_chan *c)
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

void dns_chan_process(void)
{
    for (struct dns_chan *c = dns_chans; c; c = c->next)
        if (c->queries > 0)
            dns_chan_process_one(c);
    dns_reap(util_mono_us());
}

void dns_chan_shutdown(void)
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

/* "ip:port", "[v6]:port", or a bare IP for port 53, into the form
 * ares_set_servers_ports_csv() reads. A name is refused: resolving the
 * resolver would need a resolver. */
static int dns_chan_server_parse(const char *s, char **out)
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

int dns_chan_parse_resolver(struct yconf *yc, yaml_node_t *m,
                            const char *ctx, char **out)
{
    char *s = NULL;
    int rc = yconf_str(yc, m, ctx, "resolver", 0, &s);

    if (rc)
        return rc;
    rc = dns_chan_server_parse(s, out);
    if (rc == -ENOMEM)
        rc = yconf_fail(yc, m, ctx, "resolver", "out of memory");
    else if (rc < 0)
        rc = yconf_fail(yc, yconf_find(yc, m, "resolver"), ctx, "resolver",
                        "expected an IP address and port, as 127.0.0.1:53 "
                        "or [::1]:53, got \"%s\"", s);
    free(s);
    return rc;
}

const char *dns_chan_status_text(int status, int custom)
{
    switch (status) {
    case ARES_ENOTFOUND:    return "NXDOMAIN";
    case ARES_ENODATA:      return "no such record";
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
