/* probe_http.h -- the HTTP(S) probe: one request per run on a fresh
 * connection, through the loop's curl multi handle. Its only public face
 * is its ops; everything else goes through probe.h.
 *
 * Config (type: http, the default):
 *   url               required, http:// or https://
 *   expect_status     list of codes that count as ok; default any 2xx/3xx
 *   method            GET (default), HEAD, POST, PUT, PATCH, DELETE or
 *                     OPTIONS; upper case, as sent
 *   headers           mapping name -> value, sent with every request; at
 *                     most PROBE_HTTP_MAX_HEADERS, each "name: value" at
 *                     most PROBE_HTTP_MAX_HEADER_LINE bytes; no Host here
 *                     (use host)
 *   body              request body, for POST, PUT, PATCH, DELETE, OPTIONS
 *                     (at most PROBE_HTTP_MAX_REQ_BODY bytes); POST, PUT
 *                     and PATCH send "Content-Length: 0" without one. Set
 *                     Content-Type in headers: libcurl's default is
 *                     application/x-www-form-urlencoded
 *   body_match        substring the response body must contain
 *   body_regex        POSIX extended regex the body must match, like
 *                     grep -E: ^ and $ also match at line breaks
 *   follow_redirects  false (default): a 301/302 is the result, as an SRE
 *                     wants to see it; true: follow up to
 *                     PROBE_HTTP_MAX_REDIRS, to http(s) only
 *   tls_verify        true (default): peer certificate and name checked
 *   ca_file           PEM CA bundle to verify with, instead of the system
 *                     one; must be readable when the config loads
 *   sni               https only: the name used for TLS (SNI, and the
 *                     certificate name check) and for the Host header,
 *                     while the connection still goes to the URL's host
 *                     and port (resolved as usual, so DNS time is real).
 *                     For probing one region's address as if it were the
 *                     global name. Done by rewriting the URL's host to
 *                     @sni and CURLOPT_CONNECT_TO "sni:port:urlhost:port"
 *                     (a redirect to sni:port goes to that address too)
 *   host              Host header value (overrides the URL's and sni's);
 *                     changes nothing in TLS
 *   served_by_header  response header (case-insensitive) whose value is
 *                     recorded as served-by, e.g. X-Served-By; kept to
 *                     PROBE_SERVED_BY_LEN - 1 bytes of printable ASCII
 *   resolver          IP:PORT or [IPv6]:PORT (a bare IP: port 53) of the
 *                     DNS server the URL's host is looked up through, as
 *                     a client of the traffic manager does: on every run
 *                     (a client honouring a short TTL; no cache), A and
 *                     AAAA with c-ares on the loop (http_resolve.h); the
 *                     request goes to the answer's first address (the
 *                     first A, else the first AAAA) by CURLOPT_CONNECT_TO,
 *                     so TLS (SNI, certificate name) and Host keep the
 *                     name. The lookup's time is timings.dns_us and the
 *                     others count from the run's start; a failed lookup
 *                     is a failed probe ("resolve NAME via IP:PORT:
 *                     NXDOMAIN", "... timeout after N ms"). The URL's host
 *                     must be a name. A redirect to another host is
 *                     resolved by libcurl as usual
 *
 * Verdict, first failure wins: the transfer (libcurl's error text), the
 * status ("status N not expected"), then the body ("body does not match
 * body_match \"...\""). The body match sees the first PROBE_HTTP_MAX_BODY
 * bytes as sent (no Content-Encoding is asked for). Served-by is recorded
 * whatever the verdict, from the last response when redirects are
 * followed. For https the leaf certificate's not-after is recorded
 * whenever the handshake completed (with tls_verify: false, also for a
 * certificate that would not verify), from the last connection. */
#ifndef SEXTANT_AGENT_PROBE_HTTP_H
#define SEXTANT_AGENT_PROBE_HTTP_H

#include "probe.h"

/* Response bytes a probe reads before it stops the transfer on purpose:
 * the status and timings are known by then, and an endless body must not
 * cost bandwidth until the timeout. A body match runs on these bytes. */
#define PROBE_HTTP_MAX_BODY (64u << 10)

#define PROBE_HTTP_MAX_REQ_BODY     (64u << 10) /* config "body" */
#define PROBE_HTTP_MAX_HEADERS      32u         /* config "headers" */
#define PROBE_HTTP_MAX_HEADER_LINE  1024u       /* "name: value" */
#define PROBE_HTTP_MAX_PATTERN      1024u       /* body_match, body_regex */
#define PROBE_HTTP_MAX_HOST         253u        /* sni, host: a DNS name */
#define PROBE_HTTP_MAX_REDIRS       5L

extern const struct probe_ops probe_http_ops;

#endif
