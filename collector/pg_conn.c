/* pg_conn.c -- connections to the PostgreSQL store, text parameters,
 * result columns and what an error means. */
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_priv.h"

/* Connection parameters this collector always sets, after the
 * operator's conninfo (which libpq reads as "dbname": a connection
 * string is expanded in place). */
#define PG_CONNECT_TIMEOUT_S "10"
/* A peer that vanishes without closing (its host powered off, a cut
 * network) is noticed in seconds, not in the kernel's two hours: on our
 * side by TCP keepalives and a bound on unacknowledged data (a query to a
 * dead server fails instead of hanging), on the server's by the same
 * keepalives set for the session, so that a leader whose host vanished
 * loses its session, and with it PG_LOCK_LEADER, within some 15 s. The
 * operator's conninfo may set other client values: it comes after. */
#define PG_KEEPALIVE_SQL \
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;" \
    " SET tcp_keepalives_count = 3"

/* One line of libpq's message, without its trailing newline. */
static void pg_one_line(const char *msg, char *buf, size_t len)
{
    size_t n;

    snprintf(buf, len, "%s", msg && msg[0] ? msg : "unknown error");
    n = strcspn(buf, "\n");
    buf[n] = '\0';
}

/* The server's notices ("relation ... already exists, skipping") go to
 * the log at debug level, not to stderr as libpq's default does. */
static void pg_notice(void *arg, const char *msg)
{
    char line[256];

    (void)arg;
    pg_one_line(msg, line, sizeof(line));
    log_msg(LOGL_DEBUG, "store", "postgres: %s", line);
}

PGconn *pg_connect(struct store *st, int64_t timeout_ms, char *err,
                   size_t err_len)
{
    struct store_pg *pg = st->pg;
    const char *keys[16], *vals[16];
    char app[128];
    char opts[64];
    int n = 0;
    PGconn *c;

    snprintf(app, sizeof(app), "sextant-collector (%s)", pg->instance);
    keys[n] = "keepalives_idle";
    vals[n++] = "5";
    keys[n] = "keepalives_interval";
    vals[n++] = "2";
    keys[n] = "keepalives_count";
    vals[n++] = "3";
    keys[n] = "tcp_user_timeout";
    vals[n++] = "15000";
    keys[n] = "dbname";
    vals[n++] = pg->conninfo;
    keys[n] = "application_name";
    vals[n++] = app;
    keys[n] = "connect_timeout";
    vals[n++] = PG_CONNECT_TIMEOUT_S;
    if (pg->password) {
        keys[n] = "password";
        vals[n++] = pg->password;
    }
    if (timeout_ms > 0) {
        snprintf(opts, sizeof(opts), "-c statement_timeout=%lld",
                 (long long)timeout_ms);
        keys[n] = "options";
        vals[n++] = opts;
    }
    keys[n] = NULL;
    vals[n] = NULL;
    /* expand_dbname 1: the conninfo's own keys apply, and those after it
     * (ours) override its application_name and timeouts only. */
    c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        pg_one_line(PQerrorMessage(c), err, err_len);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, pg_notice, NULL);
    if (pg_exec(c, PG_KEEPALIVE_SQL) < 0) {
        pg_one_line(PQerrorMessage(c), err, err_len);
        PQfinish(c);
        return NULL;
    }
    return c;
}

int pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int rc = pg_ok(r) ? 0 : -EIO;

    if (rc < 0) {
        char why[256];

        pg_err_text(c, r, why, sizeof(why));
        log_msg(LOGL_ERROR, "store", "postgres: %.80s...: %s", sql, why);
    }
    PQclear(r);
    return rc;
}

void pg_params_reset(struct pg_params *p)
{
    p->n = 0;
}

/* A slot for the next parameter; the last one again when full (the
 * statement then fails on its parameter count, never overflows). */
static int pg_param_slot(struct pg_params *p)
{
    if (p->n < PG_PARAMS_MAX)
        return p->n++;
    log_msg(LOGL_ERROR, "store", "more than %d parameters", PG_PARAMS_MAX);
    return PG_PARAMS_MAX - 1;
}

void pg_param_i64(struct pg_params *p, int64_t v)
{
    int i = pg_param_slot(p);

    snprintf(p->buf[i], sizeof(p->buf[i]), "%lld", (long long)v);
    p->v[i] = p->buf[i];
}

void pg_param_f64(struct pg_params *p, double v)
{
    int i = pg_param_slot(p);

    snprintf(p->buf[i], sizeof(p->buf[i]), "%.17g", v);
    p->v[i] = p->buf[i];
}

void pg_param_text(struct pg_params *p, const char *s)
{
    p->v[pg_param_slot(p)] = s;
}

PGresult *pg_query(PGconn *c, const char *sql, const struct pg_params *p)
{
    return PQexecParams(c, sql, p ? p->n : 0, NULL, p ? p->v : NULL, NULL,
                        NULL, 0);
}

int pg_ok(const PGresult *r)
{
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

enum pg_err pg_err_class(PGconn *c, const PGresult *r)
{
    const char *state;

    if (pg_ok(r))
        return PG_ERR_NONE;
    if (!c || PQstatus(c) != CONNECTION_OK)
        return PG_ERR_CONN;
    state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!state)                 /* no answer from the server at all */
        return PG_ERR_CONN;
    if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") ||
        !strcmp(state, "57P02") || !strcmp(state, "57P03"))
        return PG_ERR_CONN;
    if (!strcmp(state, "40P01") || !strcmp(state, "40001"))
        return PG_ERR_RETRY;
    if (!strcmp(state, "57014"))
        return PG_ERR_TIMEOUT;
    return PG_ERR_OTHER;
}

void pg_err_text(PGconn *c, const PGresult *r, char *buf, size_t len)
{
    const char *m = r ? PQresultErrorMessage(r) : NULL;

    if (!m || !m[0])
        m = c ? PQerrorMessage(c) : NULL;
    pg_one_line(m, buf, len);
}

int64_t pg_i64(const PGresult *r, int row, int col, int64_t dflt)
{
    if (PQgetisnull(r, row, col))
        return dflt;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double pg_f64(const PGresult *r, int row, int col, double dflt)
{
    if (PQgetisnull(r, row, col))
        return dflt;
    return strtod(PQgetvalue(r, row, col), NULL);
}

const char *pg_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static int pg_hexval(char h)
{
    if (h >= '0' && h <= '9')
        return h - '0';
    if (h >= 'a' && h <= 'f')
        return h - 'a' + 10;
    if (h >= 'A' && h <= 'F')
        return h - 'A' + 10;
    return -1;
}

long pg_bytea(const PGresult *r, int row, int col, uint8_t *buf, size_t cap)
{
    const char *s;
    size_t n;

    if (PQgetisnull(r, row, col))
        return -1;
    s = PQgetvalue(r, row, col);
    n = strlen(s);
    if (n < 2 || s[0] != '\\' || s[1] != 'x' || (n - 2) % 2 ||
        (n - 2) / 2 > cap)
        return -1;
    for (size_t i = 0; i < (n - 2) / 2; i++) {
        int hi = pg_hexval(s[2 + 2 * i]), lo = pg_hexval(s[3 + 2 * i]);

        if (hi < 0 || lo < 0)
            return -1;
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)((n - 2) / 2);
}

void pg_bytea_hex(const uint8_t *data, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";

    *out++ = '\\';
    *out++ = 'x';
    for (size_t i = 0; i < len; i++) {
        *out++ = hex[data[i] >> 4];
        *out++ = hex[data[i] & 15];
    }
    *out = '\0';
}
