/* export.h -- an incident as a postmortem pastes it (GET
 * /api/v1/incidents/{id}/export, sextant-collector incidents): pure
 * functions from the store's incident JSON (store.h, store_incident and
 * store_incidents) to Markdown, CSV or JSON text. No store, no clock. */
#ifndef SEXTANT_EXPORT_H
#define SEXTANT_EXPORT_H

#include <stddef.h>
#include <stdint.h>

enum export_format {
    EXPORT_MD,
    EXPORT_CSV,
    EXPORT_JSON,
};

/* "md", "csv" or "json": 0 and *out; -EINVAL otherwise. */
int export_format_parse(const char *s, enum export_format *out);
/* The Content-Type of @f's text, and its file name extension ("md"). */
const char *export_content_type(enum export_format f);
const char *export_extension(enum export_format f);

/* Renders one incident (@json, @len bytes: store_incident's reply) as
 * @f. Markdown: a title, the summary table (service, region, pattern,
 * to region, the times in UTC with ms, the durations, RTO and RPO as
 * "2.170 s") and the timeline table (time UTC, corrected, cluster, node,
 * kind, target, what) with the annotations merged in by time. CSV: the
 * summary as "field,value" rows under that header, one empty line, then
 * the timeline with its header. JSON: the incident as given. 0 and *out
 * (caller frees, NUL-terminated); -EINVAL: @json is not an incident;
 * -ENOMEM, -EMSGSIZE. */
int export_incident(const char *json, size_t len, enum export_format f,
                    char **out, size_t *out_len);

/* Renders a list (store_incidents' reply) as one table, a row per
 * incident (id, service, region, to region, open, first failure,
 * detected, restored, closed, time to detect, time to fail over, RTO,
 * RPO); JSON: as given. Same returns as export_incident. */
int export_incident_list(const char *json, size_t len,
                         enum export_format f, char **out,
                         size_t *out_len);

/* @ms as "2026-12-04T21:00:00.123Z" into @buf (>= 32 bytes). */
void export_utc(int64_t ms, char *buf, size_t size);
/* A duration of @ms as "2.170 s" (negative: "-0.250 s") into @buf. */
void export_duration(int64_t ms, char *buf, size_t size);

#endif
