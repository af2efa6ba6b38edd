/* fault_collector.c -- a fake collector for delivery tests: answers each
 * POST /v1/ingest with the next step of a script, so a test can make the
 * agent meet 429 with Retry-After, 503, 400 and friends in a known order,
 * and records every request and every event it saw in an SQLite file the
 * test queries. Listens on 127.0.0.1 (--listen IP:PORT; port 0 picks a free
 * one) and prints "PORT\n" on stdout once ready. Not part of the product:
 * no auth, no TLS, one thread; SIGTERM or SIGINT stop it.
 *
 * usage: fault_collector --db FILE [--script FILE] [--listen IP:PORT]
 *
 * The script has one step per line, used one per request in order; once
 * it runs out every request gets "ok". '#' starts a comment.
 *   ok                      decode, store, 200 + Ack
 *   STATUS                  that status, a JSON error body naming the step
 *   STATUS retry-after=N    ... with "Retry-After: N" (seconds)
 *   STATUS retry-date=N     ... with Retry-After as the HTTP date now + N s
 *   any step, then xK       the step K times (e.g. "503 x3")
 * The error body is {"error": "scripted STATUS", "detail": "fault_collector
 * step N"}, so a test can find the collector's text in the agent's log.
 *
 * The Ack of an "ok" step carries the highest contiguous seq stored for the
 * batch's epoch, with the rule of the real collector (issue 5): a hole
 * below Batch.oldest_seq can no longer be filled, so the watermark jumps
 * over it.
 *
 * The log (stderr) has one line per request: its number, the status
 * sent, the seqs it carried, Batch.oldest_seq and drops, and the Ack's
 * seq (-1: none).
 *
 * Tables (WAL, readable while it runs):
 *   reqs(n, t_ms, status, retry_after, epoch, first_seq, last_seq, events,
 *        oldest_seq, drop_count, drop_first, drop_last, bytes, acked)
 *        one row per request, n = 1, 2, ...; epoch .. drop_last are NULL
 *        when the body did not decode (then status is 400 for an "ok" step)
 *   req_seqs(n, seq, fresh)   each event of each request; fresh = 1 when
 *        an "ok" step stored it for the first time
 *   stored(epoch, seq, kind, unix_ms)   events stored by "ok" steps, once */
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "log.h"
#include "util.h"
#include "wire.h"

#define FAULT_MAX_STEPS  1024u
#define FAULT_MAX_SCRIPT (64u << 10)

struct fault_step {
    unsigned status;            /* 200 for "ok" */
    int retry_after;            /* seconds; -1: no header */
    int retry_date;             /* send Retry-After as an HTTP date */
};

struct fault {
    struct fault_step steps[FAULT_MAX_STEPS];
    size_t n_steps;
    size_t next;                /* the step the next request gets */
    sqlite3 *db;                /* MHD's one thread only */
    sqlite3_stmt *ins_req, *ins_seq, *ins_stored, *get_mark, *set_mark,
                 *has_seq;
    unsigned long n_req;
};

/* The body of one request, as it arrives. */
struct fault_body {
    uint8_t *data;
    size_t len;
    int too_big;
};

static int fault_parse_script(struct fault *f, char *text)
{
    char *save = NULL;

    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        struct fault_step st = { 200, -1, 0 };
        unsigned long times = 1;
        char *hash = strchr(line, '#'), *tok, *s2 = NULL;
        int first = 1;

        if (hash)
            *hash = '\0';
        for (tok = strtok_r(line, " \t\r", &s2); tok;
             tok = strtok_r(NULL, " \t\r", &s2), first = 0) {
            if (first && strcmp(tok, "ok") == 0)
                st.status = 200;
            else if (first)
                st.status = (unsigned)strtoul(tok, NULL, 10);
            else if (strncmp(tok, "retry-after=", 12) == 0)
                st.retry_after = atoi(tok + 12);
            else if (strncmp(tok, "retry-date=", 11) == 0) {
                st.retry_after = atoi(tok + 11);
                st.retry_date = 1;
            }
            else if (tok[0] == 'x')
                times = strtoul(tok + 1, NULL, 10);
            else
                return -EINVAL;
            if (first && (st.status < 200 || st.status > 599))
                return -EINVAL;
        }
        if (first)
            continue;           /* blank or comment */
        while (times-- > 0) {
            if (f->n_steps == FAULT_MAX_STEPS)
                return -EINVAL;
            f->steps[f->n_steps++] = st;
        }
    }
    return 0;
}

static int fault_db_open(struct fault *f, const char *path)
{
    static const char schema[] =
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
        "CREATE TABLE IF NOT EXISTS reqs (n INTEGER PRIMARY KEY, t_ms,"
        "  status, retry_after, epoch, first_seq, last_seq, events,"
        "  oldest_seq, drop_count, drop_first, drop_last, bytes, acked);"
        "CREATE TABLE IF NOT EXISTS req_seqs (n, seq, fresh);"
        "CREATE TABLE IF NOT EXISTS stored (epoch, seq, kind, unix_ms,"
        "  PRIMARY KEY (epoch, seq));"
        "CREATE TABLE IF NOT EXISTS marks (epoch PRIMARY KEY, wm);";

    if (sqlite3_open(path, &f->db) != SQLITE_OK ||
        sqlite3_exec(f->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(f->db, "INSERT INTO reqs VALUES (?1, ?2, ?3, ?4,"
                           " ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                           -1, &f->ins_req, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(f->db, "INSERT INTO req_seqs VALUES (?1, ?2, ?3)",
                           -1, &f->ins_seq, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(f->db, "INSERT OR IGNORE INTO stored VALUES"
                           " (?1, ?2, ?3, ?4)", -1, &f->ins_stored,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(f->db, "SELECT wm FROM marks WHERE epoch = ?1",
                           -1, &f->get_mark, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(f->db, "INSERT OR REPLACE INTO marks VALUES"
                           " (?1, ?2)", -1, &f->set_mark, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(f->db, "SELECT 1 FROM stored WHERE epoch = ?1"
                           " AND seq = ?2", -1, &f->has_seq, NULL) !=
            SQLITE_OK) {
        log_msg(LOGL_ERROR, "fault", "%s: %s", path,
                f->db ? sqlite3_errmsg(f->db) : "out of memory");
        return -EIO;
    }
    return 0;
}

static int fault_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

static int fault_has(struct fault *f, int64_t epoch, uint64_t seq)
{
    int rc;

    sqlite3_bind_int64(f->has_seq, 1, epoch);
    sqlite3_bind_int64(f->has_seq, 2, (int64_t)seq);
    rc = sqlite3_step(f->has_seq) == SQLITE_ROW;
    sqlite3_reset(f->has_seq);
    return rc;
}

/* Stores an "ok" batch; returns the new watermark of its epoch. */
static uint64_t fault_store(struct fault *f, const Sextant__V1__Batch *b)
{
    int64_t epoch = (int64_t)b->epoch;
    uint64_t wm = 0;

    for (size_t i = 0; i < b->n_events; i++) {
        const Sextant__V1__Event *ev = b->events[i];

        sqlite3_bind_int64(f->ins_stored, 1, epoch);
        sqlite3_bind_int64(f->ins_stored, 2, (int64_t)ev->seq);
        sqlite3_bind_text(f->ins_stored, 3, wire_event_kind(ev), -1,
                          SQLITE_STATIC);
        sqlite3_bind_int64(f->ins_stored, 4, ev->unix_ms);
        fault_step_done(f->ins_stored);
        sqlite3_bind_int64(f->ins_seq, 1, (int64_t)f->n_req);
        sqlite3_bind_int64(f->ins_seq, 2, (int64_t)ev->seq);
        sqlite3_bind_int(f->ins_seq, 3, sqlite3_changes(f->db) > 0);
        fault_step_done(f->ins_seq);
    }
    sqlite3_bind_int64(f->get_mark, 1, epoch);
    if (sqlite3_step(f->get_mark) == SQLITE_ROW)
        wm = (uint64_t)sqlite3_column_int64(f->get_mark, 0);
    sqlite3_reset(f->get_mark);
    if (b->oldest_seq > wm + 1)          /* a hole nobody can fill */
        wm = b->oldest_seq - 1;
    while (fault_has(f, epoch, wm + 1))
        wm++;
    sqlite3_bind_int64(f->set_mark, 1, epoch);
    sqlite3_bind_int64(f->set_mark, 2, (int64_t)wm);
    fault_step_done(f->set_mark);
    return wm;
}

/* The events of a batch that is not stored, for req_seqs. */
static void fault_note_seqs(struct fault *f, const Sextant__V1__Batch *b)
{
    for (size_t i = 0; i < b->n_events; i++) {
        sqlite3_bind_int64(f->ins_seq, 1, (int64_t)f->n_req);
        sqlite3_bind_int64(f->ins_seq, 2, (int64_t)b->events[i]->seq);
        sqlite3_bind_int(f->ins_seq, 3, 0);
        fault_step_done(f->ins_seq);
    }
}

static void fault_log_req(struct fault *f, const struct fault_step *st,
                          unsigned status, const Sextant__V1__Batch *b,
                          size_t bytes, int64_t acked)
{
    sqlite3_stmt *s = f->ins_req;
    const Sextant__V1__Drops *d = b ? b->drops : NULL;

    sqlite3_bind_int64(s, 1, (int64_t)f->n_req);
    sqlite3_bind_int64(s, 2, util_now_ms());
    sqlite3_bind_int(s, 3, (int)status);
    if (st->retry_after >= 0)
        sqlite3_bind_int(s, 4, st->retry_after);
    if (b) {
        sqlite3_bind_int64(s, 5, (int64_t)b->epoch);
        sqlite3_bind_int64(s, 6, b->n_events ? (int64_t)b->events[0]->seq
                                             : 0);
        sqlite3_bind_int64(s, 7, b->n_events
                                     ? (int64_t)b->events[b->n_events - 1]->seq
                                     : 0);
        sqlite3_bind_int64(s, 8, (int64_t)b->n_events);
        sqlite3_bind_int64(s, 9, (int64_t)b->oldest_seq);
        sqlite3_bind_int64(s, 10, d ? (int64_t)d->count : 0);
        sqlite3_bind_int64(s, 11, d ? (int64_t)d->first_seq : 0);
        sqlite3_bind_int64(s, 12, d ? (int64_t)d->last_seq : 0);
    }
    sqlite3_bind_int64(s, 13, (int64_t)bytes);
    if (acked >= 0)
        sqlite3_bind_int64(s, 14, acked);
    fault_step_done(s);
}

static enum MHD_Result fault_reply(struct MHD_Connection *c, unsigned status,
                                   const char *ctype, void *body, size_t len,
                                   const struct fault_step *st)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    char when[64];

    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (st && st->retry_after >= 0) {
        if (st->retry_date) {
            time_t t = time(NULL) + st->retry_after;
            struct tm tm;

            gmtime_r(&t, &tm);
            strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        } else {
            snprintf(when, sizeof(when), "%d", st->retry_after);
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, when);
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result fault_ingest(struct fault *f, struct MHD_Connection *c,
                                    const struct fault_body *body)
{
    static const struct fault_step ok = { 200, -1, 0 };
    const struct fault_step *st = f->next < f->n_steps ? &f->steps[f->next++]
                                                       : &ok;
    Sextant__V1__Batch *b = NULL;
    Sextant__V1__Ack ack = SEXTANT__V1__ACK__INIT;
    char err[WIRE_ERR_LEN], text[WIRE_ERR_LEN + 128];
    uint8_t *packed = NULL;
    size_t packed_len;
    enum MHD_Result ret;
    unsigned status = st->status;
    int64_t acked = -1;

    f->n_req++;
    if (body->too_big)
        snprintf(err, sizeof(err), "body over %u bytes", WIRE_MAX_BODY);
    else if (wire_batch_decode(body->data, body->len, WIRE_MAX_RAW, &b, err,
                               sizeof(err)) < 0)
        b = NULL;
    sqlite3_exec(f->db, "BEGIN", NULL, NULL, NULL);
    if (status == 200 && !b) {
        status = 400;
        snprintf(text, sizeof(text), "{\"error\":\"malformed batch\","
                 "\"detail\":\"fault_collector: %s\"}", err);
    } else if (status == 200) {
        ack.epoch = b->epoch;
        ack.acked_seq = fault_store(f, b);
        ack.received_unix_ms = util_now_ms();
        acked = (int64_t)ack.acked_seq;
    } else {
        if (b)
            fault_note_seqs(f, b);
        snprintf(text, sizeof(text), "{\"error\":\"scripted %u\","
                 "\"detail\":\"fault_collector step %lu\"}", status,
                 f->n_req);
    }
    fault_log_req(f, st, status, b, body->len, acked);
    log_msg(LOGL_INFO, "fault", "req %lu: %u, %zu events %" PRIu64 "..%"
            PRIu64 ", oldest %" PRIu64 ", drops %" PRIu64 ", acked %" PRId64,
            f->n_req, status, b ? b->n_events : 0,
            b && b->n_events ? b->events[0]->seq : 0,
            b && b->n_events ? b->events[b->n_events - 1]->seq : 0,
            b ? b->oldest_seq : 0, b && b->drops ? b->drops->count : 0,
            acked);
    sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL);
    wire_batch_free(b);
    if (status != 200)
        return fault_reply(c, status, "application/json", text, strlen(text),
                           st);
    if (wire_ack_encode(&ack, &packed, &packed_len) < 0)
        return MHD_NO;
    ret = fault_reply(c, 200, "application/x-protobuf", packed, packed_len,
                      NULL);
    free(packed);
    return ret;
}

static enum MHD_Result fault_answer(void *cls, struct MHD_Connection *c,
                                    const char *url, const char *method,
                                    const char *version, const char *upload,
                                    size_t *upload_len, void **con_cls)
{
    struct fault *f = cls;
    struct fault_body *body = *con_cls;

    (void)version;
    if (!body) {
        body = calloc(1, sizeof(*body));
        if (!body)
            return MHD_NO;
        *con_cls = body;
        return MHD_YES;
    }
    if (*upload_len) {
        if (body->len + *upload_len > WIRE_MAX_BODY) {
            body->too_big = 1;  /* keep reading, answer at the end */
        } else {
            uint8_t *nd = realloc(body->data, body->len + *upload_len);

            if (!nd)
                return MHD_NO;
            memcpy(nd + body->len, upload, *upload_len);
            body->data = nd;
            body->len += *upload_len;
        }
        *upload_len = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0 || strcmp(url, "/v1/ingest") != 0)
        return fault_reply(c, 404, "application/json",
                           "{\"error\":\"not found\"}", 21, NULL);
    return fault_ingest(f, c, body);
}

static void fault_completed(void *cls, struct MHD_Connection *c,
                            void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    struct fault_body *body = *con_cls;

    (void)cls; (void)c; (void)toe;
    if (body) {
        free(body->data);
        free(body);
    }
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    static struct fault f;
    const char *listen_at = "127.0.0.1:0", *db = NULL, *script = NULL;
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sin;
    struct MHD_Daemon *d;
    char host[64], *text = NULL;
    size_t text_len;
    uint16_t port;
    sigset_t sigs;
    int sig, bad = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_at = argv[++i];
        else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            db = argv[++i];
        else if (strcmp(argv[i], "--script") == 0 && i + 1 < argc)
            script = argv[++i];
        else
            bad = 1;
    }
    if (bad || !db ||
        util_parse_hostport(listen_at, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "usage: fault_collector --db FILE [--script FILE] "
                        "[--listen IP:PORT]\n");
        return 2;
    }
    if (script && (util_read_file(script, FAULT_MAX_SCRIPT, &text,
                                  &text_len) < 0 ||
                   fault_parse_script(&f, text) < 0)) {
        fprintf(stderr, "fault_collector: bad script %s\n", script);
        return 2;
    }
    free(text);
    if (fault_db_open(&f, db) < 0)
        return 1;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "fault_collector: bad address %s\n", host);
        return 2;
    }
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* One polling thread: requests are answered strictly in turn, so the
     * script's order is the order the requests arrive in. */
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                         0, NULL, NULL, fault_answer, &f,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_NOTIFY_COMPLETED, fault_completed, NULL,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fault_collector: cannot listen on %s\n", listen_at);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", info ? info->port : 0);
    fflush(stdout);
    while (sigwait(&sigs, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    sqlite3_finalize(f.ins_req);
    sqlite3_finalize(f.ins_seq);
    sqlite3_finalize(f.ins_stored);
    sqlite3_finalize(f.get_mark);
    sqlite3_finalize(f.set_mark);
    sqlite3_finalize(f.has_seq);
    sqlite3_close(f.db);
    return 0;
}
