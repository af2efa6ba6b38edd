/* promtext.h -- a parser of the Prometheus text exposition format (0.0.4)
 * that hands each sample to a callback. Works on a (data, len) buffer that
 * need not be NUL-terminated; allocates one bounded scratch per call and
 * nothing per line. Knows nothing of HTTP, probes or events.
 *
 * Each line is judged on its own: a line that breaks the format (a bad
 * name, an unterminated label value, a value that is not a float, a label
 * or a string over the caps below, bytes that are not UTF-8 in a label
 * value) is counted as malformed and skipped, and parsing goes on with the
 * next line. Rules that span lines (TYPE before its samples, samples of a
 * family kept together, no duplicate series) are not checked: a probe
 * picks values out of a scrape, it does not lint the exporter.
 *
 * Accepted beyond the letter of 0.0.4, because exporters write it and it
 * is unambiguous: CRLF line ends (the '\r' is dropped), blanks and tabs
 * between the tokens inside {...}, and a comma before the '}'. */
#ifndef SEXTANT_AGENT_PROMTEXT_H
#define SEXTANT_AGENT_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* The caps follow the wire contract, so every sample that parses can be
 * shipped as it is: a longer name or value, or more labels, would be
 * refused by the collector anyway. */
#define PROMTEXT_MAX_LABELS WIRE_MAX_LABELS   /* labels per sample */
#define PROMTEXT_MAX_STR    WIRE_MAX_STR      /* bytes of a name or value */
#define PROMTEXT_MAX_NUM    128u              /* bytes of a value token */

struct promtext_label {
    const char *name;           /* NUL-terminated, no NUL inside */
    const char *value;          /* unescaped; valid UTF-8, may be "" */
};

/* One sample as the callback sees it. Every pointer is borrowed and valid
 * only during the callback: the next line reuses the buffers. */
struct promtext_sample {
    const char *name;
    const struct promtext_label *labels;    /* in the order written */
    size_t n_labels;
    double value;               /* NaN, +Inf and -Inf included */
    int has_timestamp;
    int64_t timestamp_ms;       /* as written; 0 unless has_timestamp */
    size_t line;                /* 1-based line number in the buffer */
};

/* Called for every well-formed sample, in order. Returning 0 goes on; a
 * negative errno stops the parse, and promtext_parse() returns it. */
typedef int (*promtext_sample_fn)(const struct promtext_sample *s,
                                  void *arg);

struct promtext_stats {
    size_t lines;               /* lines seen, blank and comment included */
    size_t samples;             /* handed to the callback */
    size_t malformed;           /* lines counted as bad and skipped */
    size_t first_bad_line;      /* 1-based; 0 when none was malformed */
    const char *first_bad_why;  /* static text; NULL when none */
};

/* Parses @len bytes at @data (borrowed; NUL bytes in it are data, and make
 * the line they are on malformed). Calls @fn(sample, @arg) for each good
 * sample. Returns 0 and writes *out (may be NULL) when the whole buffer
 * was read, whatever the number of malformed lines; -ENOMEM if the scratch
 * cannot be allocated; or what @fn returned to stop (*out untouched). */
int promtext_parse(const char *data, size_t len, promtext_sample_fn fn,
                   void *arg, struct promtext_stats *out);

#endif
