/* raw_ceiling.c -- the yardstick of the ingest and drain benchmarks: how
 * fast SQLite alone inserts event rows into the collector's schema, with
 * the collector's pragmas (WAL, synchronous=FULL) and its very insert
 * statement, in transactions of a given size. The database is made by the
 * collector's own store code (bench_db_create), so the schema cannot
 * drift. No HTTP, protobuf, validation, watermark, agent row update or
 * rollup: the collector does all of that on top. Not part of the product.
 *
 * --minimal: the yardstick of what any schema costs. One table of
 * integer columns (agent, seq, time, kind, target, ok, status, total) with
 * UNIQUE (agent, seq) and one time index, with the store's pragmas
 * (incremental auto-vacuum, WAL, synchronous=FULL, its cache size), the
 * same generated rows and transaction size: SQLite's speed for the least
 * an event store could keep. The collector's schema, measured against it,
 * shows what its extra columns and indexes cost.
 *
 * Two sources of rows:
 *   generated: the events of bench_events.h, --agents agents taking turns
 *     with --batch-events events each (as ingest_load sends them), the
 *     same seed giving the same rows;
 *   --from DB: every event of another collector database (with seq at most
 *     --max-seq, if given), in id order, with its agents and strings.
 * Each transaction's rows are made (or read) before its clock starts; the
 * figure is rows over the time spent in BEGIN ... COMMIT.
 *
 * usage: raw_ceiling NEW_DB [--events N] [--txn-events T] [--agents N]
 *            [--batch-events B] [--seed S] [--step-ms MS] [--minimal]
 *        raw_ceiling NEW_DB --from DB [--max-seq N] [--txn-events T]
 * Prints key=value lines: rows, txn_events (the rows of a transaction:
 * generated rows go in whole batches, so the first multiple of B at or
 * above T), txns, seconds, rows_per_s. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_db.h"
#include "bench_events.h"
#include "util.h"

#define CEIL_MAX_AGENTS 100000u
#define CEIL_MAX_TXN    1000000u

struct ceil_opts {
    const char *path, *from;
    uint64_t events, max_seq, seed;
    unsigned txn, agents, batch;
    int64_t step_ms;
    int minimal;                /* the minimal table, not the store's */
};

/* The rows of one transaction, made before it is timed. */
struct ceil_txn {
    struct bench_row *rows;
    size_t n, cap;
};

/* The minimal table: the columns every event store needs to answer "what
 * happened, where, when" and to store each event once. */
static const char ceil_minimal_schema[] =
    "CREATE TABLE events ("
    "  agent INTEGER NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL,"
    "  kind INTEGER NOT NULL, target INTEGER NOT NULL, ok INTEGER NOT NULL,"
    "  status INTEGER NOT NULL, total INTEGER NOT NULL,"
    "  UNIQUE (agent, seq));"
    "CREATE INDEX events_time ON events (time);";

/* Creates the minimal table in the new file @path with the store's
 * pragmas (see store_setup in collector/store.c), and its insert. */
static int ceil_minimal_create(const char *path, sqlite3 **out,
                               sqlite3_stmt **ins)
{
    static const char *const setup[] = {
        "PRAGMA auto_vacuum=INCREMENTAL",   /* before the first table */
        ceil_minimal_schema,
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA temp_store=MEMORY",
        "PRAGMA cache_size=-32768",
    };
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
                        SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE,
                        NULL) != SQLITE_OK) {
        fprintf(stderr, "raw_ceiling: open %s: %s\n", path,
                db ? sqlite3_errmsg(db) : "out of memory");
        goto err;
    }
    for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++)
        if (bench_db_exec(db, setup[i]) < 0)
            goto err;
    if (sqlite3_prepare_v3(db, "INSERT OR IGNORE INTO events VALUES"
                           " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1,
                           SQLITE_PREPARE_PERSISTENT, ins, NULL) !=
            SQLITE_OK) {
        fprintf(stderr, "raw_ceiling: prepare: %s\n", sqlite3_errmsg(db));
        goto err;
    }
    *out = db;
    return 0;
err:
    sqlite3_close(db);
    return -1;
}

/* Binds @r's minimal columns to @s, steps and resets it. */
static int ceil_minimal_insert(sqlite3_stmt *s, const struct bench_row *r)
{
    int rc = -1;

    if (sqlite3_bind_int64(s, 1, r->e.agent_id) == SQLITE_OK &&
        sqlite3_bind_int64(s, 2, (int64_t)r->e.seq) == SQLITE_OK &&
        sqlite3_bind_int64(s, 3, r->e.unix_ms) == SQLITE_OK &&
        sqlite3_bind_int64(s, 4, r->ids.kind) == SQLITE_OK &&
        sqlite3_bind_int64(s, 5, r->ids.target) == SQLITE_OK &&
        sqlite3_bind_int(s, 6, r->probe.ok) == SQLITE_OK &&
        sqlite3_bind_int(s, 7, r->probe.status) == SQLITE_OK &&
        sqlite3_bind_int64(s, 8, (int64_t)r->timings.total_us) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_DONE)
        rc = 0;
    else
        fprintf(stderr, "raw_ceiling: insert: %s\n",
                sqlite3_errmsg(sqlite3_db_handle(s)));
    sqlite3_reset(s);
    return rc;
}

/* Inserts the rows of @t in one transaction; adds the time it took. */
static int ceil_commit(sqlite3 *db, sqlite3_stmt *ins, int minimal,
                       const struct ceil_txn *t, double *secs)
{
    double t0 = bench_now_s();

    if (bench_db_exec(db, "BEGIN IMMEDIATE") < 0)
        return -1;
    for (size_t i = 0; i < t->n; i++)
        if ((minimal ? ceil_minimal_insert : bench_db_insert)(
                ins, &t->rows[i]) < 0) {
            bench_db_exec(db, "ROLLBACK");
            return -1;
        }
    if (bench_db_exec(db, "COMMIT") < 0)
        return -1;
    *secs += bench_now_s() - t0;
    return 0;
}

/* Generated rows: agents take turns, one batch each, as ingest_load
 * sends them; a transaction ends after the batch that reaches o->txn. */
static int ceil_generated(sqlite3 *db, sqlite3_stmt *ins,
                          const struct ceil_opts *o, struct ceil_txn *t,
                          uint64_t *rows, unsigned *txns, double *secs)
{
    struct bench_agent *agents = calloc(o->agents, sizeof(*agents));
    int64_t *ids = calloc(o->agents, sizeof(*ids));
    int64_t t0 = util_now_ms();
    struct bench_ids dims;
    uint64_t done = 0;
    unsigned next = 0;
    int rc = -1;

    if (!agents || !ids)
        goto out;
    if (o->minimal) {               /* no dimension tables: plain numbers */
        for (unsigned i = 0; i < o->agents; i++) {
            bench_agent_init(&agents[i], i, o->seed, t0, o->step_ms);
            ids[i] = i + 1;
        }
        bench_db_ids_plain(&dims);
    } else {
        if (bench_db_exec(db, "BEGIN") < 0 || bench_db_dims(db, &dims) < 0)
            goto out;
        for (unsigned i = 0; i < o->agents; i++) {
            bench_agent_init(&agents[i], i, o->seed, t0, o->step_ms);
            if (bench_db_agent(db, &agents[i], &dims, t0, &ids[i]) < 0)
                goto out;
        }
        if (bench_db_exec(db, "COMMIT") < 0)
            goto out;
    }
    while (done < o->events) {
        int64_t recv = util_now_ms();

        t->n = 0;
        while (t->n < o->txn && done < o->events) {
            struct bench_agent *a = &agents[next];
            struct bench_event ev;

            for (unsigned k = 0; k < o->batch && done < o->events; k++) {
                bench_agent_next(a, &ev);
                bench_db_row(&t->rows[t->n++], &ev, ids[next], recv, &dims);
                done++;
            }
            next = (next + 1) % o->agents;
        }
        if (ceil_commit(db, ins, o->minimal, t, secs) < 0)
            goto out;
        (*txns)++;
    }
    *rows = done;
    rc = 0;
out:
    free(agents);
    free(ids);
    return rc;
}

/* Reads the row at @sel (ceil_copy's SELECT) into @r, as bench_db_row
 * makes one: 0, or -1 when its data does not fit. */
static int ceil_read_row(sqlite3_stmt *sel, struct bench_row *r)
{
    int len = sqlite3_column_bytes(sel, 18);

    memset(r, 0, sizeof(*r));
    r->e.agent_id = sqlite3_column_int64(sel, 0);
    r->e.seq = (uint64_t)sqlite3_column_int64(sel, 1);
    r->e.unix_ms = sqlite3_column_int64(sel, 2);
    r->e.recv_ms = r->e.unix_ms + sqlite3_column_int64(sel, 3);
    r->ids.kind = sqlite3_column_int64(sel, 4);
    r->ids.target = sqlite3_column_int64(sel, 5);
    r->ids.text = sqlite3_column_int64(sel, 6);
    if (sqlite3_column_type(sel, 18) != SQLITE_NULL) {
        if (len >= (int)sizeof(r->data)) {
            fprintf(stderr, "raw_ceiling: a row's data is over %zu bytes\n",
                    sizeof(r->data));
            return -1;
        }
        memcpy(r->data, sqlite3_column_text(sel, 18), (size_t)len);
        r->e.data = r->data;
        return 0;
    }
    sextant__v1__probe_result__init(&r->probe);
    sextant__v1__timings__init(&r->timings);
    r->probe.type = sqlite3_column_int(sel, 7);
    r->probe.ok = sqlite3_column_int(sel, 8);
    r->probe.status = sqlite3_column_int(sel, 9);
    r->timings.dns_us = (uint64_t)sqlite3_column_int64(sel, 10);
    r->timings.connect_us = (uint64_t)sqlite3_column_int64(sel, 11);
    r->timings.tls_us = (uint64_t)sqlite3_column_int64(sel, 12);
    r->timings.first_byte_us = (uint64_t)sqlite3_column_int64(sel, 13);
    r->timings.total_us = (uint64_t)sqlite3_column_int64(sel, 14);
    r->probe.timings = &r->timings;
    r->ids.region = sqlite3_column_int64(sel, 15);
    r->ids.cert = sqlite3_column_int64(sel, 16);
    r->ids.answers = sqlite3_column_int64(sel, 17);
    r->e.probe = &r->probe;
    return 0;
}

/* Rows of another collector database: its strings and agents first (not
 * timed), then its events, o->txn per transaction. */
static int ceil_copy(sqlite3 *db, sqlite3_stmt *ins,
                     const struct ceil_opts *o, struct ceil_txn *t,
                     uint64_t *rows, unsigned *txns, double *secs)
{
    static const char *const copy[] = {
        "INSERT INTO clusters SELECT * FROM src.clusters",
        "INSERT INTO kinds SELECT * FROM src.kinds",
        "INSERT INTO targets SELECT * FROM src.targets",
        "INSERT INTO texts SELECT * FROM src.texts",
        "INSERT INTO regions SELECT * FROM src.regions",
        "INSERT INTO certs SELECT * FROM src.certs",
        "INSERT INTO agents SELECT * FROM src.agents",
    };
    sqlite3_stmt *sel = NULL, *att = NULL;
    uint64_t done = 0;
    int rc = -1, step = SQLITE_ROW;

    if (sqlite3_prepare_v2(db, "ATTACH ?1 AS src", -1, &att, NULL) !=
            SQLITE_OK ||
        sqlite3_bind_text(att, 1, o->from, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(att) != SQLITE_DONE) {
        fprintf(stderr, "raw_ceiling: attach %s: %s\n", o->from,
                sqlite3_errmsg(db));
        goto out;
    }
    if (bench_db_exec(db, "BEGIN") < 0)
        goto out;
    for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++)
        if (bench_db_exec(db, copy[i]) < 0)
            goto out;
    if (bench_db_exec(db, "COMMIT") < 0)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT agent_id, seq, unix_ms, recv_delta_ms,"
                           " kind_id, target_id, text_id, probe_type, ok,"
                           " status, dns_us, connect_us, tls_us,"
                           " first_byte_us, total_us, served_by_id, cert_id,"
                           " answers_id, data FROM src.events"
                           " WHERE ?1 = 0 OR seq <= ?1 ORDER BY id", -1,
                           &sel, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(sel, 1, (int64_t)o->max_seq) != SQLITE_OK) {
        fprintf(stderr, "raw_ceiling: %s\n", sqlite3_errmsg(db));
        goto out;
    }
    while (step == SQLITE_ROW) {
        t->n = 0;
        while (t->n < o->txn && (step = sqlite3_step(sel)) == SQLITE_ROW)
            if (ceil_read_row(sel, &t->rows[t->n++]) < 0)
                goto out;
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            fprintf(stderr, "raw_ceiling: read: %s\n", sqlite3_errmsg(db));
            goto out;
        }
        if (t->n == 0)
            break;
        if (ceil_commit(db, ins, 0, t, secs) < 0)
            goto out;
        done += t->n;
        (*txns)++;
    }
    *rows = done;
    rc = 0;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(att);
    return rc;
}

static void ceil_usage(void)
{
    fprintf(stderr,
        "usage: raw_ceiling NEW_DB [--events N] [--txn-events T]\n"
        "           [--agents N] [--batch-events B] [--seed S] "
        "[--step-ms MS] [--minimal]\n"
        "       raw_ceiling NEW_DB --from DB [--max-seq N] "
        "[--txn-events T]\n");
}

static int ceil_parse(int argc, char **argv, struct ceil_opts *o)
{
    static const struct option lopts[] = {
        { "events", required_argument, NULL, 'n' },
        { "txn-events", required_argument, NULL, 't' },
        { "agents", required_argument, NULL, 'a' },
        { "batch-events", required_argument, NULL, 'b' },
        { "seed", required_argument, NULL, 's' },
        { "step-ms", required_argument, NULL, 'm' },
        { "from", required_argument, NULL, 'f' },
        { "max-seq", required_argument, NULL, 'q' },
        { "minimal", no_argument, NULL, 'M' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    *o = (struct ceil_opts){ .events = 1000000, .seed = 1, .txn = 10000,
                             .agents = 200, .batch = 100, .step_ms = 10 };
    while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (opt) {
        case 'n': o->events = strtoull(optarg, NULL, 10); break;
        case 't': o->txn = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'a': o->agents = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'b': o->batch = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': o->seed = strtoull(optarg, NULL, 10); break;
        case 'm': o->step_ms = strtoll(optarg, NULL, 10); break;
        case 'f': o->from = optarg; break;
        case 'q': o->max_seq = strtoull(optarg, NULL, 10); break;
        case 'M': o->minimal = 1; break;
        default: return -1;
        }
    }
    if (optind != argc - 1 || o->events == 0 || o->txn == 0 ||
        o->txn > CEIL_MAX_TXN || o->agents == 0 ||
        o->agents > CEIL_MAX_AGENTS || o->batch == 0 ||
        o->batch > CEIL_MAX_TXN || o->step_ms <= 0 ||
        (o->minimal && o->from))
        return -1;
    o->path = argv[optind];
    if (!o->from && o->txn % o->batch)      /* whole batches */
        o->txn += o->batch - o->txn % o->batch;
    return 0;
}

int main(int argc, char **argv)
{
    struct ceil_opts o;
    struct ceil_txn t = { 0 };
    sqlite3_stmt *ins = NULL;
    sqlite3 *db = NULL;
    uint64_t rows = 0;
    unsigned txns = 0;
    double secs = 0;
    int status = 1;

    if (ceil_parse(argc, argv, &o) < 0) {
        ceil_usage();
        return 2;
    }
    t.cap = o.txn;
    t.rows = malloc(t.cap * sizeof(*t.rows));
    if (!t.rows) {
        fprintf(stderr, "raw_ceiling: out of memory\n");
        return 1;
    }
    /* The collector's process-wide SQLite settings, so that both tables
     * are measured as the store runs: before the first connection. */
    store_sqlite_setup();
    if (o.minimal ? ceil_minimal_create(o.path, &db, &ins) < 0
                  : (bench_db_create(o.path, &db) < 0 ||
                     bench_db_prepare_event(db, &ins) < 0))
        goto out;
    if ((o.from ? ceil_copy : ceil_generated)(db, ins, &o, &t, &rows, &txns,
                                             &secs) < 0)
        goto out;
    printf("rows=%" PRIu64 "\ntxn_events=%u\ntxns=%u\nseconds=%.3f\n"
           "rows_per_s=%.0f\n", rows, o.txn, txns, secs,
           secs > 0 ? (double)rows / secs : 0.0);
    status = 0;
out:
    sqlite3_finalize(ins);
    if (db && sqlite3_close(db) != SQLITE_OK)
        status = 1;
    free(t.rows);
    return status;
}
