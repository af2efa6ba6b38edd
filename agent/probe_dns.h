/* probe_dns.h -- the DNS answer watch: resolves one name (the global name a
 * traffic manager steers) through c-ares, against the system resolver or a
 * configured "host:port", and adds a DNS-change event to the result when
 * the answer set differs from the one before. Its public face is its ops,
 * driven by the loop through the poll hooks of probe.h, plus two helpers
 * for tests and logs. Not thread-safe: everything it keeps belongs to the
 * loop's one thread.
 *
 * Config keys (besides the common ones):
 *   query     required; the name, resolved as written (no search domains)
 *   record    A (default), AAAA, CNAME, or ANY: an A and an AAAA query
 *             whose answers are merged (not a DNS "ANY" query, RFC 8482)
 *   resolver  "ip:port", "[v6]:port" or a bare IP (port 53); default: the
 *             nameservers of /etc/resolv.conf
 *   expect    an answer or a list of answers (addresses or CNAME targets);
 *             if given, a run is ok only if its answer set holds one
 *
 * Verdict: ok when the answer set holds at least one record of the asked
 * type (A or AAAA for ANY) and, with expect, meets it. NXDOMAIN, NODATA,
 * SERVFAIL, REFUSED, an unreachable resolver and the target's timeout are
 * failures with that error text.
 *
 * Answer changes: the answer set of a successful run (a reply with
 * records, whether or not it meets expect) is compared with the one kept
 * in the target's state, ignoring TTL and order. The first answer set only
 * sets the baseline; a failed run neither changes nor clears it, so
 * A -> NXDOMAIN -> B reports one change, A to B, on the run that sees B. */
#ifndef SEXTANT_AGENT_PROBE_DNS_H
#define SEXTANT_AGENT_PROBE_DNS_H

#include <stddef.h>

#include "dns_set.h"
#include "probe.h"

#define PROBE_DNS_MAX_EXPECT  64u   /* entries of one expect list */
/* Records kept per answer set, after sorting: what one DnsChange may hold. */
#define PROBE_DNS_MAX_ANSWERS DNS_SET_MAX_ANSWERS
/* Answer records read from one run's replies before the rest are ignored
 * (dns_set.h says why). */
#define PROBE_DNS_MAX_RECORDS DNS_SET_MAX_RECORDS

extern const struct probe_ops probe_dns_ops;

/* Writes the answer set kept in @state (a probe_dns_ops state slot) as
 * "A 127.0.1.1 ttl 30, A 127.0.3.1 ttl 30" into @buf, sorted canonically;
 * "" before the first answer, "..." at the end if @len was too short.
 * Returns the number of answers. @state is only read. */
size_t probe_dns_state_text(const void *state, char *buf, size_t len);

/* Destroys every resolver channel (dns_chan_shutdown(); each is kept
 * while in use, and a minute after). For tests and a clean exit: cancel
 * or finish every run first. The loop never needs it; a run started
 * later makes a new one. */
void probe_dns_shutdown(void);

#endif
