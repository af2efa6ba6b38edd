/* cli_timeline.c -- sextant-collector timeline: parses its options, opens
 * the database read-only (store_open_readonly_with: no writer, no
 * migration; a SQLite file, or the config's store, also PostgreSQL)
 * and pages through the whole window with the timeline's cursor, writing
 * each page to stdout as it comes, so a window of any size takes bounded
 * memory. The query itself and the rows' text are the store's
 * (store_timeline); times parse as the API's (api_parse_time). */
#include "cli_timeline.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "log.h"
#include "store.h"

#define CLI_TL "sextant-collector timeline"

static void cli_timeline_usage(FILE *f)
{
    fprintf(f,
        "usage: " CLI_TL " --db PATH | --config FILE --from TIME --to TIME\n"
        "         [--cluster NAME] [--region NAME] [--target NAME]\n"
        "         [--service NAME --config FILE] [--kind K[,K...]]\n"
        "         [--order agent|corrected] [--format json|csv|md]\n"
        "\n"
        "Writes every event of the window [from, to) of the SQLite file\n"
        "PATH, or without --db of the config's store (SQLite or\n"
        "PostgreSQL), opened read-only: collectors may be writing to it,\n"
        "oldest\n"
        "first, as GET /api/v1/timeline would page through it. TIME is Unix\n"
        "milliseconds or RFC 3339 (2026-12-04T22:00:00+02:00). Exit 0:\n"
        "written; 1: the database could not be read; 2: bad usage.\n"
        "\n"
        "  -d, --db PATH       a SQLite file (default: the config's store)\n"
        "  -f, --from TIME     start, inclusive\n"
        "  -t, --to TIME       end, exclusive\n"
        "      --cluster NAME  one cluster's agents\n"
        "      --region NAME   agents of one region\n"
        "      --target NAME   one target\n"
        "      --service NAME  a service of the config's services: list\n"
        "  -c, --config FILE   the collector's config (its store; for\n"
        "                      --service)\n"
        "  -k, --kind LIST     kinds, comma-separated\n"
        "      --order ORDER   agent (default) or corrected clock\n"
        "      --format FMT    json (default), csv or md\n"
        "  -h, --help          this text\n");
}

/* What the command line asked for. */
struct cli_timeline_args {
    const char *db, *from, *to, *config, *service;
    struct store_timeline_query q;
};

static int cli_timeline_bad(const char *what, const char *v)
{
    fprintf(stderr, CLI_TL ": %s%s%s%s (try --help)\n", what,
            v ? " \"" : "", v ? v : "", v ? "\"" : "");
    return 2;
}

/* Parses @argv into @a: 0, or the exit status 2 after one line. */
static int cli_timeline_parse(int argc, char **argv,
                              struct cli_timeline_args *a)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "cluster", required_argument, NULL, 'C' },
        { "region", required_argument, NULL, 'R' },
        { "target", required_argument, NULL, 'T' },
        { "service", required_argument, NULL, 'S' },
        { "config", required_argument, NULL, 'c' },
        { "kind", required_argument, NULL, 'k' },
        { "order", required_argument, NULL, 'O' },
        { "format", required_argument, NULL, 'F' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    opterr = 0;                     /* one line of our own instead */
    while ((opt = getopt_long(argc, argv, ":d:f:t:c:k:h", opts, NULL)) !=
           -1) {
        switch (opt) {
        case 'd': a->db = optarg; break;
        case 'f': a->from = optarg; break;
        case 't': a->to = optarg; break;
        case 'C': a->q.cluster = optarg; break;
        case 'R': a->q.region = optarg; break;
        case 'T': a->q.target = optarg; break;
        case 'S': a->service = optarg; break;
        case 'c': a->config = optarg; break;
        case 'k': a->q.kind = optarg; break;
        case 'O':
            if (strcmp(optarg, "agent") != 0 &&
                strcmp(optarg, "corrected") != 0)
                return cli_timeline_bad("--order: expected agent or "
                                        "corrected, got", optarg);
            a->q.order = optarg[0] == 'c' ? STORE_ORDER_CORRECTED
                                          : STORE_ORDER_AGENT;
            break;
        case 'F':
            if (strcmp(optarg, "json") == 0)
                a->q.format = STORE_FORMAT_JSON;
            else if (strcmp(optarg, "csv") == 0)
                a->q.format = STORE_FORMAT_CSV;
            else if (strcmp(optarg, "md") == 0)
                a->q.format = STORE_FORMAT_MD;
            else
                return cli_timeline_bad("--format: expected json, csv or "
                                        "md, got", optarg);
            break;
        case 'h': cli_timeline_usage(stdout); return -1;
        case ':':
            return cli_timeline_bad("needs a value:", argv[optind - 1]);
        default:
            return cli_timeline_bad("unknown option", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_timeline_bad("unexpected argument", argv[optind]);
    if ((!a->db && !a->config) || !a->from || !a->to)
        return cli_timeline_bad("--db or --config, --from and --to are "
                                "required", NULL);
    if (api_parse_time(a->from, &a->q.from_ms) < 0)
        return cli_timeline_bad("--from: expected Unix ms or RFC 3339, got",
                                a->from);
    if (api_parse_time(a->to, &a->q.to_ms) < 0)
        return cli_timeline_bad("--to: expected Unix ms or RFC 3339, got",
                                a->to);
    if (a->q.from_ms >= a->q.to_ms)
        return cli_timeline_bad("--from must be before --to", NULL);
    if (a->service && !a->config)
        return cli_timeline_bad("--service needs --config", NULL);
    if (a->service && a->q.target)
        return cli_timeline_bad("give either --target or --service", NULL);
    return 0;
}

/* The service @a names in @cfg's topology: 0, or 2 after one line. */
static int cli_timeline_service(const struct collector_config *cfg,
                                struct cli_timeline_args *a)
{
    for (size_t i = 0; i < cfg->topo.n_services; i++) {
        if (strcmp(cfg->topo.services[i].name, a->service) == 0) {
            a->q.service = &cfg->topo.services[i];
            return 0;
        }
    }
    fprintf(stderr, CLI_TL ": --service: %s has no service \"%s\" (%zu "
            "services)\n", a->config, a->service, cfg->topo.n_services);
    return 2;
}

/* Writes every page of @q's window from @st to stdout: 0, or 1 after one
 * line. */
static int cli_timeline_pages(struct store *st,
                              struct store_timeline_query *q)
{
    char next[STORE_CURSOR_LEN] = "", *page = NULL;
    int json = q->format == STORE_FORMAT_JSON, rc = 0, first = 1;
    size_t len;

    q->limit = STORE_TIMELINE_MAX_LIMIT;
    q->next = next;
    if (json)
        fputs("{\"events\":[", stdout);
    do {
        /* A table's first page brings its header; then rows only. */
        q->rows_only = json || !first;
        rc = store_timeline(st, q, &page, &len);
        if (rc < 0)
            break;
        if (json && !first && len > 0)
            fputc(',', stdout);
        fwrite(page, 1, len, stdout);
        free(page);
        first = 0;
        q->cursor = next;           /* store_timeline copied it out */
    } while (next[0] && !ferror(stdout));
    if (rc == 0 && json)
        fputs("]}\n", stdout);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, CLI_TL ": writing: %s\n", strerror(errno));
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, CLI_TL ": query failed: %s\n",
                rc == -ETIMEDOUT ? "took too long; narrow the window"
                                 : strerror(-rc));
        return 1;
    }
    return 0;
}

int cli_timeline_main(int argc, char **argv)
{
    struct cli_timeline_args a = { .q.order = STORE_ORDER_AGENT };
    struct collector_config cfg;
    struct store_options o;
    struct store *st = NULL;
    char err[600], where[PATH_MAX + 300];
    int rc, have_cfg = 0;

    rc = cli_timeline_parse(argc, argv, &a);
    if (rc != 0)
        return rc < 0 ? 0 : rc;     /* -1: --help */
    /* The store logs why a file is refused, in one line; info lines
     * (a reader's open) would only clutter the output's terminal. */
    log_set_level(LOGL_ERROR);
    if (a.config) {
        if (collector_config_load(a.config, &cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, CLI_TL ": %s\n", err);
            return 2;
        }
        have_cfg = 1;
        rc = a.service ? cli_timeline_service(&cfg, &a) : 0;
        if (rc != 0)
            goto out;
        collector_config_store_at(&cfg, a.db, &o, where, sizeof(where));
    } else {
        store_options_default(&o);
        snprintf(where, sizeof(where), "%s", a.db);
    }
    rc = store_open_readonly_with(where, &o, &st);
    if (rc < 0) {
        rc = 1;                     /* the store said why */
        goto out;
    }
    rc = cli_timeline_pages(st, &a.q);
out:
    store_close(st);
    if (have_cfg)
        collector_config_free(&cfg);
    return rc;
}
