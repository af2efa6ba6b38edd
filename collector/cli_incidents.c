/* cli_incidents.c -- `sextant-collector incidents rebuild --config FILE
 * [--db PATH]`: recomputes every incident of a database from its stored
 * events, with the services of the collector's config, and replaces the
 * incidents table (store_incidents_rebuild_with); and `sextant-collector
 * incidents --db PATH | --config FILE [--service S] [--open] [--format
 * json|csv|md]`: lists them read-only (store_open_readonly_with,
 * store_incidents, rendered by export.c). Parses arguments and prints;
 * the work is the store's. Both work on the config's store, SQLite or
 * PostgreSQL; a --db PATH names a SQLite file whatever the config says. */
#include "cli_incidents.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "export.h"
#include "log.h"
#include "store.h"
#include "util.h"

/* getopt_long's ':' (@argv[optind - 1] needs a value) or any other
 * answer (an unknown option) for subcommand @cmd: one line, exit code 2. */
static int cli_bad_option(const char *cmd, int opt, char **argv)
{
    if (opt == ':')
        fprintf(stderr, "sextant-collector %s: %s needs a value (try "
                "--help)\n", cmd, argv[optind - 1]);
    else
        fprintf(stderr, "sextant-collector %s: unknown option %s (try "
                "--help)\n", cmd, argv[optind - 1]);
    return 2;
}

static void cli_rebuild_usage(FILE *f)
{
    fprintf(f,
        "usage: sextant-collector incidents rebuild --config FILE "
        "[--db PATH]\n"
        "\n"
        "Recomputes every incident from the events stored in the database\n"
        "(the config's store, or the SQLite file PATH) with the config's\n"
        "services, and replaces the incidents table in one transaction.\n"
        "Stop the collector first: on SQLite the command refuses while it\n"
        "cannot take the write lock (a collector committing), and a\n"
        "running collector keeps writing its own incidents (it rebuilds\n"
        "at every start); on PostgreSQL it refuses while a collector leads\n"
        "(restart that one: the next leader rebuilds).\n"
        "Exit 0: done; 1: failed (nothing changed); 2: bad usage or "
        "config.\n"
        "\n"
        "  -c, --config FILE  the collector's YAML config (its services)\n"
        "  -d, --db PATH      a SQLite file (default: the config's store)\n"
        "  -h, --help         this text\n");
}

static int cli_rebuild(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "db", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *db = NULL;
    struct collector_config cfg;
    struct store_options o;
    uint64_t events = 0, incidents = 0;
    char err[PATH_MAX + 600], where[PATH_MAX + 300];
    int64_t t0;
    int opt, rc;

    opterr = 0;                     /* one line of our own instead */
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":c:d:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 'd': db = optarg; break;
        case 'h': cli_rebuild_usage(stdout); return 0;
        default:
            return cli_bad_option("incidents rebuild", opt, argv);
        }
    }
    if (!config || !config[0] || (db && !db[0]) || optind != argc) {
        fprintf(stderr, "sextant-collector incidents rebuild: --config FILE "
                "is required, --db PATH optional, nothing else (try "
                "--help)\n");
        return 2;
    }
    if (collector_config_load(config, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (cfg.topo.n_services == 0) {
        fprintf(stderr, "sextant-collector incidents rebuild: %s has no "
                "services: nothing to compute incidents from\n", config);
        collector_config_free(&cfg);
        return 2;
    }
    collector_config_store_at(&cfg, db, &o, where, sizeof(where));
    log_set_level(LOGL_WARN);
    t0 = util_mono_us();
    rc = store_incidents_rebuild_with(where, &o, &events, &incidents, err,
                                      sizeof(err));
    if (rc < 0)
        fprintf(stderr, "sextant-collector incidents rebuild: %s\n", err);
    else
        printf("sextant-collector incidents rebuild: %s: %llu events, "
               "%llu incidents in %.3f s\n", where,
               (unsigned long long)events, (unsigned long long)incidents,
               (double)(util_mono_us() - t0) / 1e6);
    collector_config_free(&cfg);
    return rc < 0 ? 1 : 0;
}

static void cli_list_usage(FILE *f)
{
    fprintf(f,
        "usage: sextant-collector incidents --db PATH | --config FILE\n"
        "           [--service NAME] [--open] [--format json|csv|md]\n"
        "\n"
        "Lists the incidents stored in the database, newest first (at most\n"
        "%u), read-only: collectors may be running on it. json is\n"
        "GET /api/v1/incidents' reply; csv and md one row per incident.\n"
        "Exit 0: listed; 1: the database cannot be read; 2: bad usage.\n"
        "\n"
        "  -d, --db PATH       a collector's SQLite file\n"
        "  -c, --config FILE   the collector's config: its store (SQLite\n"
        "                      or PostgreSQL)\n"
        "  -s, --service NAME  only this service's incidents\n"
        "  -o, --open          only the open ones\n"
        "  -f, --format FMT    json (default), csv or md\n"
        "  -h, --help          this text\n", STORE_INCIDENTS_MAX_LIMIT);
}

/* Prints the list of @q from the store @o names (@db: where, for the
 * messages) as @f: 0, or 1 with a line on stderr. */
static int cli_list_print(const char *db, const struct store_options *o,
                          const struct store_incident_query *q,
                          enum export_format f)
{
    struct store *st = NULL;
    char *json = NULL, *text = NULL;
    size_t len = 0, text_len = 0;
    int rc;

    rc = store_open_readonly_with(db, o, &st);
    if (rc == 0)
        rc = store_incidents(st, q, &json, &len);
    if (rc == 0)
        rc = export_incident_list(json, len, f, &text, &text_len);
    if (rc < 0) {
        fprintf(stderr, "sextant-collector incidents: %s: %s\n", db,
                strerror(-rc));
    } else if (fwrite(text, 1, text_len, stdout) != text_len ||
               (f == EXPORT_JSON && putchar('\n') == EOF)) {
        fprintf(stderr, "sextant-collector incidents: cannot write the "
                "list\n");
        rc = -EIO;
    }
    free(text);
    free(json);
    store_close(st);
    return rc < 0 ? 1 : 0;
}

/* sextant-collector incidents --db PATH ...: the read-only list. */
static int cli_list(int argc, char **argv)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "config", required_argument, NULL, 'c' },
        { "service", required_argument, NULL, 's' },
        { "open", no_argument, NULL, 'o' },
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct store_incident_query q = {
        .open = -1,
        .limit = STORE_INCIDENTS_MAX_LIMIT,
    };
    enum export_format f = EXPORT_JSON;
    const char *db = NULL, *config = NULL;
    struct collector_config cfg;
    struct store_options o;
    char err[PATH_MAX + 600], where[PATH_MAX + 300];
    int opt, rc;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":d:c:s:of:h", opts, NULL)) !=
           -1) {
        switch (opt) {
        case 'd': db = optarg; break;
        case 'c': config = optarg; break;
        case 's': q.service = optarg; break;
        case 'o': q.open = 1; break;
        case 'f':
            if (export_format_parse(optarg, &f) < 0) {
                fprintf(stderr, "sextant-collector incidents: --format: "
                        "expected json, csv or md, got \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'h': cli_list_usage(stdout); return 0;
        default:
            return cli_bad_option("incidents", opt, argv);
        }
    }
    if (!db == !config || (db && !db[0]) || (config && !config[0]) ||
        (q.service && !q.service[0]) || optind != argc) {
        fprintf(stderr, "sextant-collector incidents: --db PATH or "
                "--config FILE is required, and no other arguments (try "
                "--help)\n");
        return 2;
    }
    if (db) {
        store_options_default(&o);
        log_set_level(LOGL_WARN);
        return cli_list_print(db, &o, &q, f);
    }
    if (collector_config_load(config, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    collector_config_store_at(&cfg, NULL, &o, where, sizeof(where));
    log_set_level(LOGL_WARN);
    rc = cli_list_print(where, &o, &q, f);
    collector_config_free(&cfg);
    return rc;
}

int cli_incidents(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "rebuild") == 0)
        return cli_rebuild(argc - 1, argv + 1);
    return cli_list(argc, argv);
}
