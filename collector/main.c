/* main.c -- sextant-collector: parse the command line and the config, open
 * the store, serve until SIGTERM/SIGINT, then stop cleanly: the server
 * first (its last batches still commit), then the store. As
 * "sextant-collector backup", copies a database instead (see backup.c);
 * --check-config only loads the config (cli_check.c). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup.h"
#include "check_config.h"
#include "cli_check.h"
#include "cli_incidents.h"
#include "cli_timeline.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "store.h"
#include "util.h"
#include "webhook.h"

/* In-flight requests at shutdown: an agent's request takes milliseconds,
 * and 10 s leaves most of Kubernetes' 30 s before SIGKILL to the rest. */
#define COLLECTOR_GRACE_MS 10000
/* How often the wait for a migrating store looks for SIGTERM: a tenth of
 * a second is prompt for a person and costs nothing. */
#define COLLECTOR_SIGNAL_TICK_NS (100 * 1000000L)

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sextant-collector --config FILE [--listen HOST:PORT] "
        "[--db PATH]\n"
        "       sextant-collector backup (--db PATH | --config FILE) "
        "--out FILE\n"
        "       sextant-collector --check-config FILE\n"
        "\n"
        "Receives event batches from Sextant agents, stores them in SQLite\n"
        "(or a PostgreSQL database shared by many collectors: the config's\n"
        "store:) and serves the timeline API.\n"
        "\n"
        "  -c, --config FILE      YAML configuration (see "
        "examples/collector.yaml)\n"
        "  -l, --listen HOST:PORT override the config's listen address\n"
        "  -d, --db PATH          override the config's database path\n"
        "      --check-config FILE load FILE as a start would, print\n"
        "                         \"FILE: ok\" and exit 0, or the error and\n"
        "                         exit 2; opens no port and no database\n"
        "  -h, --help             this text\n"
        "  -V, --version          print the version\n"
        "\n"
        "backup: see sextant-collector backup --help\n");
}

static void backup_usage(FILE *f)
{
    fprintf(f,
        "usage: sextant-collector backup (--db PATH | --config FILE) "
        "--out FILE\n"
        "\n"
        "Copies the collector's database PATH to the new file FILE, one\n"
        "consistent snapshot, while a collector may keep writing to it.\n"
        "Refuses an existing FILE. Exit 0: copied and checked; 1: failed\n"
        "(FILE not created); 2: bad usage. SQLite only: a PostgreSQL\n"
        "store is backed up with pg_dump or the platform's backups.\n"
        "\n"
        "  -d, --db PATH     the database (opened read-only)\n"
        "  -c, --config FILE the collector's config: its db\n"
        "  -o, --out FILE    the copy to create\n"
        "  -h, --help        this text\n");
}

/* sextant-collector backup ...: @argv[0] is "backup". */
static int backup_command(int argc, char **argv)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "config", required_argument, NULL, 'c' },
        { "out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *db = NULL, *out = NULL, *config = NULL;
    struct collector_config cfg;
    struct backup_result res;
    char err[2 * PATH_MAX + 128];
    int opt, rc;

    opterr = 0;                     /* one line of our own instead */
    while ((opt = getopt_long(argc, argv, ":d:c:o:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': db = optarg; break;
        case 'c': config = optarg; break;
        case 'o': out = optarg; break;
        case 'h': backup_usage(stdout); return 0;
        case ':':
            fprintf(stderr, "sextant-collector backup: %s needs a value "
                    "(try --help)\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "sextant-collector backup: unknown option "
                    "%s (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (!db == !config || !out || (db && !db[0]) || (config && !config[0])
        || !out[0] || optind != argc) {
        fprintf(stderr, "sextant-collector backup: --db PATH or --config "
                        "FILE, and --out FILE are required, nothing else "
                        "(try --help)\n");
        return 2;
    }
    if (config) {
        if (collector_config_load(config, &cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        /* No file to copy: the database is the platform's to back up. */
        if (cfg.store_backend == STORE_BACKEND_POSTGRES) {
            fprintf(stderr, "sextant-collector backup: %s: the store is "
                    "PostgreSQL: back it up with pg_dump or your "
                    "platform's backups (this command copies SQLite "
                    "files)\n", config);
            collector_config_free(&cfg);
            return 2;
        }
        db = cfg.db_path;
    }
    log_set_level(LOGL_WARN);
    rc = backup_run(db, out, &res, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "sextant-collector backup: %s\n", err);
    else
        printf("sextant-collector backup: %s: %lld bytes in %.3f s\n", out,
               (long long)res.bytes, (double)res.duration_us / 1e6);
    if (config)
        collector_config_free(&cfg);
    return rc < 0 ? 1 : 0;
}

/* With incidents.webhooks: starts their sender (its thread inherits the
 * blocked signals) and has the store hand it every committed incident
 * change, which it only queues; /metrics counts its deliveries. 0 or
 * -errno, logged. */
static int webhooks_start(const struct collector_config *cfg,
                          struct store_options *o, struct webhook **out)
{
    int rc;

    if (cfg->topo.opt.n_webhooks == 0)
        return 0;
    rc = webhook_start((const char *const *)cfg->topo.opt.webhooks,
                       cfg->topo.opt.n_webhooks, NULL, out);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "main", "cannot start the webhook sender: %s",
                strerror(-rc));
        return rc;
    }
    o->incident_fn = webhook_incident_fn;
    o->incident_ctx = *out;
    metrics_set_webhook(*out);
    return 0;
}

static int replace(char **dst, const char *src)
{
    char *s = strdup(src);

    if (!s)
        return -ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "listen", required_argument, NULL, 'l' },
        { "db", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL, *listen = NULL, *db = NULL;
    struct collector_config cfg;
    struct store_options sopts;
    struct store *st = NULL;
    struct server *srv = NULL;
    struct webhook *wh = NULL;
    char err[600], host[128], where[512];
    uint16_t port;
    sigset_t sigs;
    int opt, sig, rc, stuck = 0;

    if (argc > 1 && strcmp(argv[1], "backup") == 0)
        return backup_command(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "incidents") == 0)
        return cli_incidents(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "timeline") == 0)
        return cli_timeline_main(argc - 1, argv + 1);
    if (argc > 1 && check_config_is(argv[1]))
        return check_config_main(argc, argv, "sextant-collector",
                                 cli_check_collector);
    while ((opt = getopt_long(argc, argv, "c:l:d:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'l': listen = optarg; break;
        case 'd': db = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("sextant-collector %s\n", SEXTANT_VERSION); return 0;
        default:    /* getopt named the bad option on its own line */
            return 2;
        }
    }
    if (!config_path || optind != argc) {
        fprintf(stderr, "sextant-collector: --config FILE is required "
                        "(try --help)\n");
        return 2;
    }
    if (listen && util_parse_hostport(listen, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "sextant-collector: --listen: expected HOST:PORT, "
                        "got \"%s\"\n", listen);
        return 2;
    }
    if (collector_config_load(config_path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if ((listen && replace(&cfg.listen, listen) < 0) ||
        (db && replace(&cfg.db_path, db) < 0)) {
        collector_config_free(&cfg);
        return 1;
    }
    log_set_level(cfg.log_level);

    /* Signals go to this thread alone, through sigwait below: every thread
     * started from here on inherits the blocked mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    collector_config_store(&cfg, &sopts);
    collector_config_where(&cfg, where, sizeof(where));
    if (cfg.store_backend == STORE_BACKEND_POSTGRES)
        log_msg(LOGL_INFO, "store", "%s%s", where, cfg.db_path ?
                " (the db path is unused)" : "");
    rc = webhooks_start(&cfg, &sopts, &wh);
    if (rc < 0)
        goto out;
    /* The path names the store in its messages; PostgreSQL's is where. */
    rc = store_open(cfg.store_backend == STORE_BACKEND_POSTGRES ? where
                                                                : cfg.db_path,
                    &sopts, &st);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "main", "cannot open the store (%s): %s", where,
                strerror(-rc));
        goto out;
    }
    /* Serve first: /healthz and /readyz answer (503 "migrating") while the
     * writer thread migrates the database. */
    rc = server_start(&cfg, st, &srv);
    if (rc < 0)
        goto out;
    /* A long migration must not make SIGTERM wait: look for signals
     * while waiting for the store. */
    while ((rc = store_poll_ready(st)) == 0) {
        struct timespec tick = { 0, COLLECTOR_SIGNAL_TICK_NS };

        sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig > 0) {
            log_msg(LOGL_INFO, "main", "signal %d while the database "
                    "migrates: stopping", sig);
            rc = 0;
            goto out;
        }
    }
    /* A damaged file: stay up, so /readyz and every answer say so (the
     * store logged what to do) rather than leave agents with no reply. */
    if (rc == -EUCLEAN) {
        log_msg(LOGL_ERROR, "main", "sextant-collector %s: %s damaged, "
                "not ready", SEXTANT_VERSION, where);
    } else if (rc < 0) {
        log_msg(LOGL_ERROR, "main", "store (%s) not usable: %s", where,
                strerror(-rc));
        goto out;
    } else {
        log_msg(LOGL_INFO, "main", "sextant-collector %s: %zu clusters, "
                "%s, ready", SEXTANT_VERSION, cfg.n_clusters, where);
    }
    do {
        rc = sigwait(&sigs, &sig);
    } while (rc == EINTR);
    log_msg(LOGL_INFO, "main", "signal %d: stopping", sig);
    stuck = server_stop(srv, COLLECTOR_GRACE_MS) < 0;
    srv = NULL;
    rc = 0;
out:
    if (server_stop(srv, 0) < 0 || stuck) {
        /* Its threads may still read the store and the config: leave both
         * to the exit. Every acked batch is committed (synchronous=FULL);
         * the rest were not acked, and their agents send them again. */
        log_msg(LOGL_ERROR, "main", "HTTP server did not stop in time: "
                "exiting without closing the database");
        return 1;
    }
    store_close(st);
    /* After the store: its writer notifies until it ends. */
    metrics_set_webhook(NULL);
    webhook_stop(wh);
    collector_config_free(&cfg);
    if (rc == 0)
        log_msg(LOGL_INFO, "main", "stopped");
    return rc == 0 ? 0 : 1;
}
