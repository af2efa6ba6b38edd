/* table.c -- CSV and Markdown rows (see table.h). */
#include "table.h"

#include <errno.h>
#include <string.h>

int table_format_parse(const char *s, enum table_format *out)
{
    if (strcmp(s, "csv") == 0)
        *out = TABLE_CSV;
    else if (strcmp(s, "md") == 0)
        *out = TABLE_MD;
    else
        return -EINVAL;
    return 0;
}

const char *table_content_type(enum table_format f)
{
    return f == TABLE_CSV ? "text/csv; charset=utf-8"
                          : "text/markdown; charset=utf-8";
}

static void table_csv_cell(struct jsonw *w, const char *s)
{
    if (s[strcspn(s, ",\"\r\n")] == '\0') {
        jsonw_raw(w, s, strlen(s));
        return;
    }
    jsonw_raw(w, "\"", 1);
    for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1) {
        jsonw_raw(w, s, (size_t)(q - s));
        jsonw_raw(w, "\"\"", 2);
    }
    jsonw_raw(w, s, strlen(s));
    jsonw_raw(w, "\"", 1);
}

static void table_md_cell(struct jsonw *w, const char *s)
{
    size_t run;

    jsonw_raw(w, " ", 1);
    while (*s) {
        run = strcspn(s, "|\\\r\n");
        jsonw_raw(w, s, run);
        s += run;
        if (*s == '|' || *s == '\\') {
            jsonw_raw(w, "\\", 1);
            jsonw_raw(w, s, 1);
            s++;
        } else if (*s) {
            jsonw_raw(w, " ", 1);
            s++;
        }
    }
    jsonw_raw(w, " |", 2);
}

void table_row(struct jsonw *w, enum table_format f,
               const char *const *cells, size_t n)
{
    if (f == TABLE_MD)
        jsonw_raw(w, "|", 1);
    for (size_t i = 0; i < n; i++) {
        const char *s = cells[i] ? cells[i] : "";

        if (f == TABLE_MD) {
            table_md_cell(w, s);
        } else {
            if (i > 0)
                jsonw_raw(w, ",", 1);
            table_csv_cell(w, s);
        }
    }
    /* RFC 4180 ends records with CRLF; Markdown with a newline. */
    if (f == TABLE_CSV)
        jsonw_raw(w, "\r\n", 2);
    else
        jsonw_raw(w, "\n", 1);
}

void table_header(struct jsonw *w, enum table_format f,
                  const char *const *cells, size_t n)
{
    table_row(w, f, cells, n);
    if (f != TABLE_MD)
        return;
    jsonw_raw(w, "|", 1);
    for (size_t i = 0; i < n; i++)
        jsonw_raw(w, " --- |", 6);
    jsonw_raw(w, "\n", 1);
}
