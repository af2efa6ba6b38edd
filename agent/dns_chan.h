/* dns_chan.h -- DNS queries through c-ares on the agent's loop: shared
 * resolver channels (one per nameserver set-up and timeout, kept while in
 * use and a minute after, renewed every five minutes so that
 * /etc/resolv.conf is read again), and the hooks that let the loop's
 * poll() wait on their sockets and timers. Knows nothing of probes: a
 * query is a name, a record type and a callback with the raw reply.
 *
 * Not thread-safe: every channel and query belongs to the loop's one
 * thread. c-ares has no per-query cancel, so a caller that no longer
 * wants an answer abandons its query: the query then lives on inside
 * c-ares until it ends, and its callback is not called. */
#ifndef SEXTANT_AGENT_DNS_CHAN_H
#define SEXTANT_AGENT_DNS_CHAN_H

#include <stddef.h>

#include <curl/curl.h>

#include <yaml.h>

struct yconf;

struct dns_chan_query;              /* one query in flight; ours */

/* A query ended: @status is an ARES_ status (ARES_SUCCESS with the reply
 * in @abuf, @alen bytes, borrowed for the call; ARES_EDESTRUCTION from
 * dns_chan_shutdown()). The query is freed when this returns. It runs
 * inside c-ares: it must not call dns_chan_* itself (mark, and act after
 * dns_chan_process() returns). */
typedef void (*dns_chan_answer_fn)(void *arg, int status,
                                   const unsigned char *abuf, int alen);

/* Sends a query for @name (as written: no search domains) of @qtype
 * (ns_t_a, ...) through the channel for @server ("ip:port" or
 * "[v6]:port" as ares_set_servers_ports_csv() reads it; NULL: the
 * system's nameservers) tuned to end within about @timeout_ms.
 *
 * *out is written before the query is sent, because @cb may run before
 * this returns (a send that fails at once): @cb is where the caller
 * forgets the handle. On success @cb is called exactly once, unless the
 * query is abandoned first. Fails (no query, @cb never called) with
 * -ENOMEM, or with -EIO / -EINVAL and a one-line reason in @err when no
 * channel can be set up for @server. */
int dns_chan_query(const char *server, long long timeout_ms,
                   const char *name, int qtype, dns_chan_answer_fn cb,
                   void *arg, struct dns_chan_query **out, char *err,
                   size_t err_len);
/* Its callback will not be called; the query ends inside c-ares in its
 * own time. NULL is a no-op. */
void dns_chan_abandon(struct dns_chan_query *q);

/* The loop's poll hooks (see probe.h): the sockets queries wait on, as
 * curl_waitfd entries, at most @max of them; how long poll() may sleep
 * for the channels' timers (-1: no query in flight; short when the loop
 * had no room for every socket); and processing after poll(), which
 * tries every socket of every busy channel, runs the callbacks of the
 * queries that ended, and closes channels idle long enough. */
size_t dns_chan_poll_fds(struct curl_waitfd *fds, size_t max);
long dns_chan_poll_timeout_ms(void);
void dns_chan_process(void);

/* Reads the config key "resolver" of mapping @m (path @ctx), if there, into
 * *out (caller frees): "ip:port", "[v6]:port" or a bare IP for port 53,
 * written as dns_chan_query() takes it. No name: resolving the resolver
 * would need a resolver. 0, > 0 when the key is absent (as yconf_str), or
 * -EINVAL with yconf's one-line error. */
int dns_chan_parse_resolver(struct yconf *yc, yaml_node_t *m,
                            const char *ctx, char **out);

/* A failed query's ARES_ @status in words ("NXDOMAIN", "timeout", ...;
 * static). @custom: the query went to a configured resolver, so
 * ECONNREFUSED can only be its port; with the system's nameservers it is
 * also c-ares's word for "every nameserver said SERVFAIL or REFUSED". */
const char *dns_chan_status_text(int status, int custom);

/* Destroys every channel, calling back the queries still in flight with
 * ARES_EDESTRUCTION, and cleans c-ares up. For tests and a clean exit; a
 * query sent later makes a new channel. */
void dns_chan_shutdown(void);

#endif
