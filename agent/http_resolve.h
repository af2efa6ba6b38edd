/* http_resolve.h -- the HTTP probe's own name lookups, for targets with
 * "resolver: IP:PORT": the URL's host is resolved through that DNS server
 * with c-ares on the agent's loop (dns_chan.h), A and AAAA at once, on
 * every run (what a client honouring a short TTL sees; no cache), and the
 * probe connects to the first address of the answer. Keeps the lookups in
 * flight in one list so the HTTP probe's poll hooks can hand them back,
 * and reads the config key. Knows nothing of transfers or probe results.
 *
 * The channels' sockets and timers are served by the DNS probe type's poll
 * hooks (dns_chan_poll_fds lists every channel, whoever queried it), so
 * the loop waits on them even with no DNS target configured.
 *
 * Not thread-safe: everything belongs to the loop's one thread. */
#ifndef SEXTANT_AGENT_HTTP_RESOLVE_H
#define SEXTANT_AGENT_HTTP_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

struct yconf;

/* Room for an address as text, IPv6 in brackets: "[v6]" and a NUL. */
#define HTTP_RESOLVE_ADDR_LEN 48u

/* An HTTP target's resolver set-up, read at config load. */
struct http_resolve_opts {
    char *server;               /* "ip:port"; NULL: no resolver (curl's) */
    char *host;                 /* the URL's host: the name looked up */
    char *connect_host;         /* the request's host (sni's if given),
                                   which a run maps to the address */
    long port;                  /* the URL's port, or the scheme's */
};

/* Reads the HTTP target key "resolver" of mapping @m (path @ctx) into @o
 * (its strings the caller's to free, also on failure): the server as
 * dns_chan_parse_resolver takes it, and the hosts of @url (as written)
 * and @req_url (as requested: with sni's host). A URL whose host is an
 * address is refused: nothing to resolve. 0, > 0 without the key, or
 * -EINVAL with yconf's one-line error. */
int http_resolve_parse(struct yconf *yc, yaml_node_t *m, const char *ctx,
                       const char *url, const char *req_url,
                       struct http_resolve_opts *o);

struct http_resolve;                /* one lookup; ours until freed */

/* Starts looking @host up through @server ("ip:port" or "[v6]:port", as
 * dns_chan_parse_resolver writes it) within @timeout_ms, for @owner
 * (given back by http_resolve_owner). Both strings are borrowed for the
 * call. A server c-ares cannot set up is no error here: the lookup ends at
 * once and says why. 0 with *out listed, or -ENOMEM with nothing. */
int http_resolve_start(const char *server, const char *host,
                       long long timeout_ms, void *owner,
                       struct http_resolve **out);

/* How long the loop may sleep before a listed lookup ends: 0 when one has
 * (answered, failed or past its deadline), -1 when none is listed. */
long http_resolve_wait_ms(int64_t now_us);

/* The first listed lookup that ended, taken off the list (the caller
 * frees it), or NULL. */
struct http_resolve *http_resolve_next_done(int64_t now_us);

void *http_resolve_owner(const struct http_resolve *hr);

/* The outcome of an ended lookup: 0 with the address to connect to in
 * @addr (IPv6 bracketed, as curl's CONNECT_TO takes it; the first A record
 * of the answer, else the first AAAA), or -1 with "resolve HOST via
 * SERVER: WHY" in @err (WHY: NXDOMAIN, SERVFAIL, "timeout after N ms",
 * "no A or AAAA record", ...). *dns_us is how long it took, either way. */
int http_resolve_result(const struct http_resolve *hr, int64_t now_us,
                        char addr[HTTP_RESOLVE_ADDR_LEN], uint64_t *dns_us,
                        char *err, size_t err_len);

/* Takes @hr off the list if it is there, abandons its queries still in
 * flight (dns_chan.h) and frees it. NULL is a no-op. */
void http_resolve_free(struct http_resolve *hr);

#endif
