/* probe_http.h -- the HTTP(S) probe: one GET per run on a fresh connection,
 * through the loop's curl multi handle. Its only public face is its ops;
 * everything else goes through probe.h. */
#ifndef SEXTANT_AGENT_PROBE_HTTP_H
#define SEXTANT_AGENT_PROBE_HTTP_H

#include "probe.h"

/* Response bytes a probe reads before it stops the transfer on purpose:
 * the status and timings are known by then, and an endless body must not
 * cost bandwidth until the timeout. Room for a body match later. */
#define PROBE_HTTP_MAX_BODY (64u << 10)

extern const struct probe_ops probe_http_ops;

#endif
