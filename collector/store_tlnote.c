/* store_tlnote.c -- annotations (people's notes) as timeline rows: their
 * statement, with the columns of the events' (store_sql.c's
 * TIMELINE_SELECT) so that store_query.c renders and merges both alike,
 * and the newest annotation id a paging is bounded by. Does not merge or
 * page (store_query.c's store_timeline does). */
#include "store_priv.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>

#include "topology.h"

#define NOTE_UTC "strftime('%Y-%m-%dT%H:%M:%fZ', n.unix_ms / 1000.0," \
    " 'unixepoch')"
/* An annotation is no agent's: cluster, region, node, epoch, seq, target
 * and clock offset are null, its time is on the collector's clock (so
 * corrected_ms is the same), received_ms when it was stored. Its id is
 * negated: events and annotations share a cursor's (time, id) position,
 * with an annotation before the events of its millisecond. Then 12 NULLs
 * for the probe columns, and the table cells. ?1 ?2 the window, ?3 the
 * paging's newest annotation id, (?4, ?5) the position after which the
 * page starts, ?6 the limit. */
#define NOTE_SELECT \
    "SELECT json_object(" \
    "  'cluster', NULL, 'region', NULL, 'node', NULL, 'epoch', NULL," \
    "  'seq', NULL, 'kind', 'annotation', 'target', NULL," \
    "  'time_ms', n.unix_ms, 'time', " NOTE_UTC "," \
    "  'clock_offset_ms', NULL, 'corrected_ms', n.unix_ms," \
    "  'corrected_time', " NOTE_UTC ", 'received_ms', n.created_ms)," \
    " json_object('id', n.id, 'text', n.text, 'service', n.service," \
    "  'incident', n.incident_id)," \
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL," \
    " NULL, -n.id, n.unix_ms, " NOTE_UTC ", " NOTE_UTC "," \
    " '', '', '', 'annotation', ''" \
    " FROM annotations n" \
    " WHERE n.unix_ms >= ?1 AND n.unix_ms < ?2 AND n.id <= ?3" \
    "   AND (n.unix_ms, -n.id) > (?4, ?5)"
#define NOTE_ORDER " ORDER BY n.unix_ms, n.id DESC LIMIT ?6"

static const char note_sql_all[] = NOTE_SELECT NOTE_ORDER;
/* A service's: those naming it, or tied to one of its incidents. */
static const char note_sql_service[] =
    NOTE_SELECT
    " AND (n.service = ?7 OR n.incident_id IN"
    "   (SELECT id FROM incidents WHERE service = ?7))" NOTE_ORDER;
static const char note_sql_max[] = "SELECT max(id) FROM annotations";

int store_tl_note_max(struct store_reader *r, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = store_reader_stmt_sql(r, note_sql_max, &s);

    if (rc == 0 && sqlite3_step(s) == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);     /* NULL: 0 */
    else
        rc = -EIO;
    store_stmt_done(s);
    return rc;
}

/* Whether the kind filter @kind (NULL: every kind; else names joined by
 * commas) takes annotations. */
static int store_tl_note_kind(const char *kind)
{
    if (!kind)
        return 1;
    for (const char *k = kind; ; k++) {
        size_t n = strcspn(k, ",");

        if (n == 10 && memcmp(k, "annotation", 10) == 0)
            return 1;
        k += n;
        if (!*k)
            break;
    }
    return 0;
}

int store_tl_note_stmt(struct store_reader *r,
                       const struct store_timeline_query *q,
                       const int64_t page[4], sqlite3_stmt **out)
{
    int64_t from = q->cursor && page[1] > q->from_ms ? page[1] : q->from_ms;
    const struct topo_service *sv = q->target ? NULL : q->service;
    sqlite3_stmt *s = NULL;
    int rc;

    *out = NULL;
    if (q->cluster || q->region || q->target || !store_tl_note_kind(q->kind))
        return 0;                   /* no agent's filter takes a note */
    rc = store_reader_stmt_sql(r, sv ? note_sql_service : note_sql_all, &s);
    if (rc < 0)
        return rc;
    if (sqlite3_bind_int64(s, 1, from) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, q->to_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, page[3]) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, page[1]) != SQLITE_OK ||
        sqlite3_bind_int64(s, 5, page[2]) != SQLITE_OK ||
        sqlite3_bind_int64(s, 6, (int64_t)q->limit + 1) != SQLITE_OK ||
        (sv && sqlite3_bind_text(s, 7, sv->name, -1, SQLITE_STATIC) !=
                   SQLITE_OK)) {
        store_stmt_done(s);
        return -EIO;
    }
    *out = s;
    return 0;
}
