/* table.h -- rows of text cells as CSV (RFC 4180) or a Markdown table,
 * for the exports a postmortem pastes (GET /api/v1/timeline?format=,
 * incident exports, the read-only commands). Writes into a struct jsonw
 * used as a capped text buffer (jsonw_raw only). */
#ifndef SEXTANT_TABLE_H
#define SEXTANT_TABLE_H

#include <stddef.h>

#include "jsonw.h"

enum table_format {
    TABLE_CSV,
    TABLE_MD,
};

/* "csv" or "md": 0 and *out; -EINVAL otherwise. */
int table_format_parse(const char *s, enum table_format *out);
/* The Content-Type of @f's text. */
const char *table_content_type(enum table_format f);

/* The header row (Markdown: followed by its separator row). A NULL cell
 * is empty. */
void table_header(struct jsonw *w, enum table_format f,
                  const char *const *cells, size_t n);
/* One row. CSV quotes a cell holding a comma, quote, CR or LF (quotes
 * doubled); Markdown escapes '|' and '\' and turns CR and LF into spaces,
 * so a cell never breaks the table. */
void table_row(struct jsonw *w, enum table_format f,
               const char *const *cells, size_t n);

#endif
