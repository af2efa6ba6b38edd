/* probe_metric.h -- the metric scrape probe: GETs a Prometheus text
 * endpoint through the loop's curl multi handle, picks the configured
 * series and adds one MetricSample event per matching sample (replication
 * lag, queue depth: numbers an RPO estimate needs). Its only public face is
 * its ops; everything else goes through probe.h.
 *
 * Config (type: metric):
 *   url            required, http(s)
 *   series         required list, each {name: METRIC, labels: {k: v}}:
 *                  a sample matches if its name is METRIC and it has every
 *                  label pair listed (a pair with value "" also matches a
 *                  sample without that label, as in PromQL)
 *   expect_status  optional list of codes; default any 2xx
 *
 * Verdict: ok when the transfer worked, the status is expected, the body
 * fits PROBE_METRIC_MAX_BODY and it is an exposition: malformed lines are
 * counted and logged at debug, never fatal, unless no line at all was a
 * sample (an HTML error page served with 200 is not a scrape). A series
 * that matches nothing is not a failure (the metric may appear later). */
#ifndef SEXTANT_AGENT_PROBE_METRIC_H
#define SEXTANT_AGENT_PROBE_METRIC_H

#include "probe.h"

/* Decoded body bytes read before the run fails: a scrape bigger than this
 * is not what a health probe should pull every interval. The cap counts
 * after Content-Encoding, so a gzip bomb stops here too. */
#define PROBE_METRIC_MAX_BODY    (4u << 20)
/* MetricSample events one run adds; the rest are counted and logged. */
#define PROBE_METRIC_MAX_SAMPLES 100u
/* Entries of "series" per target, and label pairs per entry. */
#define PROBE_METRIC_MAX_SERIES  64u

extern const struct probe_ops probe_metric_ops;

#endif
