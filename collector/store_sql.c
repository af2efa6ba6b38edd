/* store_sql.c -- the read side's SQL: every statement a query may run,
 * each variant written out as one constant string (the macros only join
 * constant fragments at compile time), so that a read connection prepares
 * each the first time it needs it and keeps it (store_query.c). Nothing
 * here runs SQL; tests/test_store_plan.c checks each one's query plan. */
#include "store_priv.h"

/* ---- timeline ---- */

/* An event's clock offset: the one recorded for its batch (agent_offsets:
 * the agent's latest row with from_seq <= seq), which never changes
 * afterwards, so neither does its corrected time (the incidents' clock
 * too) nor a cursor's position in the corrected order. NULL when there
 * is none (a collector-made event, or one from before its agent's first
 * offset): corrected as if 0. */
#define OFFSET_SQL \
    "(SELECT o.offset_ms FROM agent_offsets o" \
    "  WHERE o.agent_id = e.agent_id AND o.from_seq <= e.seq" \
    "  ORDER BY o.from_seq DESC LIMIT 1)"
#define CORRECTED_SQL "(e.unix_ms + coalesce(" OFFSET_SQL ", 0))"
#define UTC_SQL(ms) "strftime('%Y-%m-%dT%H:%M:%fZ', " ms " / 1000.0," \
    " 'unixepoch')"
/* Column 0 is the event's JSON object but its "fields"; store_query.c
 * renders those (store_timeline_row): column 1 for the kinds kept as JSON
 * (data IS NOT NULL, as schema 5 rendered them), or the typed probe
 * columns 2.. . The error text comes quoted by SQLite (json_quote), as
 * schema 5's json_set quoted it: jsonw escapes control characters
 * differently; NULL when the row has none (json_quote(NULL) is "null",
 * which is what json_set gave for a text_id without its text). Then the
 * id and the order's @key (a cursor's position), and the cells of a CSV
 * or Markdown row. format() is SQLite's own formatting function. */
#define TIMELINE_SELECT(key) \
    "SELECT json_object(" \
    "  'cluster', a.cluster, 'region', a.region, 'node', a.node," \
    "  'epoch', format('%016x', a.epoch), 'seq', e.seq," \
    "  'kind', k.name, 'target', tg.name," \
    "  'time_ms', e.unix_ms," \
    "  'time', " UTC_SQL("e.unix_ms") "," \
    "  'clock_offset_ms', " OFFSET_SQL "," \
    "  'corrected_ms', " CORRECTED_SQL "," \
    "  'corrected_time', " UTC_SQL(CORRECTED_SQL) "," \
    "  'received_ms', e.unix_ms + e.recv_delta_ms)," \
    " CASE WHEN e.data IS NULL THEN NULL" \
    "   WHEN e.text_id IS NULL THEN json(e.data)" \
    "   ELSE json_set(e.data, CASE k.name WHEN 'state' THEN '$.reason'" \
    "                         ELSE '$.error' END, x.text) END," \
    " e.probe_type, e.ok, e.status, e.dns_us, e.connect_us, e.tls_us," \
    " e.first_byte_us, e.total_us, r.name, c.not_after_ms," \
    " json(an.text)," \
    " CASE WHEN e.text_id IS NOT NULL THEN json_quote(x.text) END," \
    " e.id, " key "," \
    " " UTC_SQL("e.unix_ms") ", " UTC_SQL(CORRECTED_SQL) "," \
    " a.cluster, a.region, a.node, k.name, tg.name" \
    " FROM events e CROSS JOIN agents a ON a.id = e.agent_id" \
    " JOIN kinds k ON k.id = e.kind_id" \
    " LEFT JOIN targets tg ON tg.id = e.target_id" \
    " LEFT JOIN texts x ON x.id = e.text_id" \
    " LEFT JOIN regions r ON r.id = e.served_by_id" \
    " LEFT JOIN certs c ON c.id = e.cert_id" \
    " LEFT JOIN texts an ON an.id = e.answers_id"
/* A page: events stored before the first page (id <= ?7, the newest id
 * then) after the cursor's position (?8, ?9) in the order's (time, id).
 * The first page binds the lowest position; a later one also moves ?1 up
 * to its time, so the time index starts there. */
#define PAGE(key) " AND e.id <= ?7 AND (" key ", e.id) > (?8, ?9)"
/* events drives the join (CROSS JOIN keeps it outer): by time, or by
 * target or kind and time when those are given; a cluster filter is
 * checked row by row. Driven from agents instead, SQLite would fetch every
 * event of the cluster's agents in the window and sort them before the
 * LIMIT: ten times slower on 50 million events (bench/RESULTS.md). */
#define AGENT_WHERE \
    TIMELINE_SELECT("e.unix_ms") \
    " WHERE e.unix_ms >= ?1 AND e.unix_ms < ?2" PAGE("e.unix_ms")
#define AGENT_ORDER " ORDER BY e.unix_ms, e.id LIMIT ?4"
/* from/to are on the corrected clock too. The time index still narrows
 * the scan: no event is corrected by more than the largest offset ever
 * recorded (one scalar subquery, run once; agent_offsets has a row per
 * agent and offset change, read whole). ?15 stops the scan earlier, at
 * an agent-clock time store_query.c picks so that the page is likely
 * within it (store_timeline_span): the sort is of the page and its
 * margin, not of the rest of the window. */
#define MAX_OFFSET_SQL \
    "SELECT coalesce(max(abs(offset_ms)), 0) AS ms FROM agent_offsets"
#define CORRECTED_WHERE \
    "WITH m AS (" MAX_OFFSET_SQL ")" \
    TIMELINE_SELECT(CORRECTED_SQL) \
    " WHERE e.unix_ms >= ?1 - (SELECT ms FROM m)" \
    "   AND e.unix_ms < min(?2 + (SELECT ms FROM m), ?15)" \
    "   AND " CORRECTED_SQL " >= ?1" \
    "   AND " CORRECTED_SQL " < ?2" PAGE(CORRECTED_SQL)
#define CORRECTED_ORDER " ORDER BY " CORRECTED_SQL ", e.id LIMIT ?4"
/* Filters on cluster, region, target and kind, in the text only when
 * asked for (an "?5 IS NULL OR ..." would keep SQLite off the target and
 * kind indexes). The name is bound; the id is looked up once. */
#define F_CLUSTER " AND a.cluster = ?3"
#define F_REGION " AND a.region = ?14"
#define F_TARGET " AND e.target_id = (SELECT id FROM targets WHERE name = ?5)"
/* A service (topology.h): its targets (?10, a JSON array of names), DNS
 * changes of its global name (?11; names compare as DNS does: case and a
 * trailing dot aside), failover events and markers naming it (?12) or,
 * naming no service, one of its regions (?13, a JSON array; a marker
 * naming nothing is everyone's). Checked row by row on the time index:
 * the targets alone would not find the rest. */
#define SVC_FIELD(f) \
    "coalesce(CASE WHEN json_valid(e.data) THEN" \
    " json_extract(e.data, '$." f "') END, '')"
#define SVC_REGION(f) SVC_FIELD(f) " IN (SELECT value FROM json_each(?13))"
#define F_SERVICE \
    " AND (e.target_id IN (SELECT id FROM targets WHERE name IN" \
    "   (SELECT value FROM json_each(?10)))" \
    "  OR (e.data IS NOT NULL AND CASE k.name" \
    "   WHEN 'dns' THEN lower(rtrim(" SVC_FIELD("name") ", '.')) =" \
    "     lower(rtrim(?11, '.'))" \
    "   WHEN 'failover' THEN " SVC_FIELD("service") " = ?12" \
    "     OR (" SVC_FIELD("service") " = '' AND (" SVC_REGION("from") \
    "       OR " SVC_REGION("to") "))" \
    "   WHEN 'marker' THEN " SVC_FIELD("service") " IN (?12, '')" \
    "   ELSE 0 END))"
#define F_KIND " AND e.kind_id = (SELECT id FROM kinds WHERE name = ?6)"
/* Several kinds (a comma-separated list): the (kind, time) index then
 * gives no one order, so only a list pays for the sort. */
#define F_KINDS \
    " AND e.kind_id IN (SELECT id FROM kinds" \
    "   WHERE instr(',' || ?6 || ',', ',' || name || ',') > 0)"
/* Kinds but probe are the only rows with data (schema 6): saying so lets
 * SQLite use the partial (kind_id, unix_ms) index, which holds only them.
 * Probes are 95% and more of all rows: the time index serves them. */
#define F_RARE " AND e.data IS NOT NULL"

/* One timeline statement: the (where, order) pair of an order, and the
 * filters, in parentheses (clang's -Wstring-concatenation would take
 * joined literals in an array for a missing comma). The nesting below
 * spells out every combination, in the order of store_sql_timeline()'s
 * index. */
#define TL(w, o, c, g, t, k) (w c g t k o)
#define TL_KINDS(w, o, c, g, t) \
    TL(w, o, c, g, t, ""), TL(w, o, c, g, t, F_KIND), \
    TL(w, o, c, g, t, F_KIND F_RARE), TL(w, o, c, g, t, F_KINDS), \
    TL(w, o, c, g, t, F_KINDS F_RARE)
#define TL_TARGETS(w, o, c, g) \
    TL_KINDS(w, o, c, g, ""), TL_KINDS(w, o, c, g, F_TARGET), \
    TL_KINDS(w, o, c, g, F_SERVICE)
#define TL_REGIONS(w, o, c) \
    TL_TARGETS(w, o, c, ""), TL_TARGETS(w, o, c, F_REGION)
#define TL_CLUSTERS(w, o) TL_REGIONS(w, o, ""), TL_REGIONS(w, o, F_CLUSTER)

/* ---- latency ---- */

/* [hour][cluster given][a list of targets]: one cluster walks the
 * primary key's range; every cluster, the (target_id, t) index. A list
 * (?1, a JSON array of names: a service's or region's targets) reads one
 * range per target and sorts the rows by time, so that one step's rows
 * are together and merge into one point. */
#define LATENCY(table, cluster, target) \
    ("SELECT t, count, failures, hist FROM " table \
     " WHERE target_id " target cluster " AND t >= ?3 AND t < ?4" \
     " ORDER BY t")
#define LATENCY_CLUSTER \
    " AND cluster_id = (SELECT id FROM clusters WHERE name = ?2)"
#define LAT_ONE "= (SELECT id FROM targets WHERE name = ?1)"
#define LAT_LIST \
    "IN (SELECT id FROM targets WHERE name IN" \
    " (SELECT value FROM json_each(?1)))"

const char *const store_sql[STORE_SQL_COUNT] = {
    TL_CLUSTERS(AGENT_WHERE, AGENT_ORDER),
    TL_CLUSTERS(CORRECTED_WHERE, CORRECTED_ORDER),
    [STORE_SQL_LATENCY] = LATENCY("rollup_minute", "", LAT_ONE),
    LATENCY("rollup_minute", "", LAT_LIST),
    LATENCY("rollup_minute", LATENCY_CLUSTER, LAT_ONE),
    LATENCY("rollup_minute", LATENCY_CLUSTER, LAT_LIST),
    LATENCY("rollup_hour", "", LAT_ONE),
    LATENCY("rollup_hour", "", LAT_LIST),
    LATENCY("rollup_hour", LATENCY_CLUSTER, LAT_ONE),
    LATENCY("rollup_hour", LATENCY_CLUSTER, LAT_LIST),
    /* Is the name there, and (for suggestions) every name. */
    [STORE_SQL_NAME_KNOWN + STORE_NAMES_CLUSTER] =
        "SELECT 1 FROM clusters WHERE name = ?1",
    [STORE_SQL_NAME_KNOWN + STORE_NAMES_TARGET] =
        "SELECT 1 FROM targets WHERE name = ?1",
    [STORE_SQL_NAME_KNOWN + STORE_NAMES_KIND] =
        "SELECT 1 FROM kinds WHERE name = ?1",
    [STORE_SQL_NAME_LIST + STORE_NAMES_CLUSTER] =
        "SELECT name FROM clusters ORDER BY name",
    [STORE_SQL_NAME_LIST + STORE_NAMES_TARGET] =
        "SELECT name FROM targets ORDER BY name",
    [STORE_SQL_NAME_LIST + STORE_NAMES_KIND] =
        "SELECT name FROM kinds ORDER BY name",
    [STORE_SQL_CLUSTERS] =
        ("SELECT cluster, max(last_seen_ms) FROM agents"
         " GROUP BY cluster ORDER BY cluster"),
    /* The newest event: a first page's bound (see PAGE). */
    [STORE_SQL_MAX_ID] = "SELECT max(id) FROM events",
    /* The largest clock offset: how far the corrected order reaches. */
    [STORE_SQL_MAX_OFFSET] = MAX_OFFSET_SQL,
};

int store_sql_timeline(int corrected, int cluster, int region,
                       enum store_tl_targets targets,
                       enum store_kind_filter kind)
{
    return STORE_SQL_TIMELINE +
           (((!!corrected * 2 + !!cluster) * 2 + !!region) *
                STORE_TL_TARGETS + (int)targets) *
               STORE_KIND_FILTERS + (int)kind;
}

int store_sql_latency(int hour, int cluster, int list)
{
    return STORE_SQL_LATENCY + (!!hour * 2 + !!cluster) * 2 + !!list;
}
