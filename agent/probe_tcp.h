/* probe_tcp.h -- the TCP connect probe: opens one connection to host:port
 * through the loop's curl multi handle (CURLOPT_CONNECT_ONLY) and closes
 * it at once. Sends and reads nothing: it answers "does something accept
 * connections there, and how fast", for databases, queues and anything
 * that does not speak HTTP. Its only public face is its ops.
 *
 * Config (type: tcp):
 *   address   required, "host:port": host is a name, an IPv4 address or
 *             an IPv6 address in brackets ("[::1]:5432"); port 1..65535
 *
 * Verdict: ok once the connection is established; a refusal, a DNS
 * failure or the target's timeout fail with libcurl's error text. Records
 * DNS and connect time (from the start of the run) and total time;
 * status, TLS and first-byte times are 0. */
#ifndef SEXTANT_AGENT_PROBE_TCP_H
#define SEXTANT_AGENT_PROBE_TCP_H

#include "probe.h"

#define PROBE_TCP_MAX_HOST 253u     /* longest DNS name */

extern const struct probe_ops probe_tcp_ops;

#endif
