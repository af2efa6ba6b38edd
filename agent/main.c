/* main.c -- sextant-agent's command line: parse arguments, load the
 * config, open the spool, run the loop, and map the outcome to an exit
 * status (0 ok, 1 runtime failure, 2 usage or config error, or a spool
 * another agent owns). Holds no logic of its own beyond that. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "check_config.h"
#include "cli_check.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "spool.h"
#include "util.h"
#include "wire.h"

#define AGENT_EXIT_FAIL  1
#define AGENT_EXIT_USAGE 2
#define AGENT_EVENT_MAX_COUNT 1000000L  /* events of one --count run */

static const char agent_usage[] =
    "usage: sextant-agent --config FILE [--once]\n"
    "       sextant-agent event --config FILE --kind KIND [--from REGION]\n"
    "                     [--to REGION] [--text TEXT] [--count N]\n"
    "       sextant-agent --check-config FILE\n"
    "       sextant-agent --help | --version\n"
    "\n"
    "Probes the targets in FILE, spools every result on disk and ships\n"
    "them to the Sextant collector.\n"
    "\n"
    "  -c, --config FILE  agent configuration (YAML)\n"
    "      --once         probe every target once, ship everything,\n"
    "                     exit 0 when the collector acked it, 1 if not\n"
    "      --check-config FILE  load FILE as a start would, print \"FILE:\n"
    "                     ok\" and exit 0, or the error and exit 2; opens\n"
    "                     no port and no spool, creates nothing\n"
    "  -h, --help         show this help\n"
    "  -V, --version      show the version\n"
    "\n"
    "event appends operator events (failover, manual, deploy, ...) to the\n"
    "spool of FILE's agent\n"
    "(see sextant-agent event --help).\n"
    "\n"
    "Env NODE_NAME overrides the config's node (Kubernetes downward API).\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage or config error, or\n"
    "the spool is another running agent's.\n";

static const char agent_event_usage[] =
    "usage: sextant-agent event --config FILE --kind KIND [--from REGION]\n"
    "                           [--to REGION] [--service NAME] [--text TEXT]\n"
    "                           [--count N]\n"
    "\n"
    "Appends an operator event (a promotion, a deploy, a drill) to the\n"
    "spool of FILE's agent, safely while it runs; the agent ships it with\n"
    "everything else. Kinds failover and manual are stored as failovers\n"
    "and take part in incidents; every other kind is a marker on the\n"
    "timeline. Prints \"recorded KIND event, seq S\" for each event\n"
    "recorded.\n"
    "\n"
    "  -c, --config FILE  the agent's configuration (YAML)\n"
    "  -k, --kind KIND    failover, manual, deploy, drill or a word of yours\n"
    "  -f, --from REGION  the region traffic moves away from\n"
    "  -t, --to REGION    the region traffic moves to\n"
    "  -s, --service NAME the service (as the collector's services: name\n"
    "                     it) the failover is for: the incident engine\n"
    "                     ties it to that service only; without it, to\n"
    "                     every service with a region it names\n"
    "  -x, --text TEXT    free text\n"
    "  -n, --count N      append N events (1 to 1000000), one after the\n"
    "                     other; event i gets the text TEXT-i (just i when\n"
    "                     TEXT is empty), so each output line's seq can be\n"
    "                     matched to its text; for drills and load tests\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 all recorded, 1 the spool failed (the lines printed\n"
    "so far were recorded), 2 usage or config error (nothing recorded).\n";

struct agent_reload {
    const char *path;               /* the --config file */
};

/* SIGHUP: reads the file again into a new heap config (see loop.h). */
static int agent_load(void *arg, struct agent_config **out)
{
    const struct agent_reload *ar = arg;
    struct agent_config *cfg = calloc(1, sizeof(*cfg));
    char err[512];

    if (!cfg)
        return -ENOMEM;
    if (agent_config_load(ar->path, cfg, err, sizeof(err)) < 0) {
        log_msg(LOGL_ERROR, "main", "reload refused, keeping the old "
                "config: %s", err);
        free(cfg);
        return -EINVAL;
    }
    *out = cfg;
    return 0;
}

static void agent_release(void *arg, struct agent_config *cfg)
{
    (void)arg;
    agent_config_free(cfg);
    free(cfg);
}

/* Validates @ev as the collector will: inside a one-event batch. */
static int agent_event_check(const struct agent_config *cfg,
                             Sextant__V1__Event *ev, char *err,
                             size_t err_len)
{
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Event *evs[1] = { ev };
    int rc;

    b.cluster = cfg->cluster;
    b.region = cfg->region;
    b.node = cfg->node;
    b.epoch = 1;
    b.first_seq = 1;
    b.n_events = 1;
    b.events = evs;
    ev->seq = 1;
    ev->unix_ms = util_now_ms();
    rc = wire_batch_validate(&b, err, err_len);
    ev->seq = 0;                    /* the spool assigns both */
    ev->unix_ms = 0;
    return rc;
}

/* --count N: digits only, 1..AGENT_EVENT_MAX_COUNT. */
static int agent_event_count(const char *s, long *out)
{
    char *end;
    long n;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || *end || n < 1 || n > AGENT_EVENT_MAX_COUNT)
        return -1;
    *out = n;
    return 0;
}

/* The text of event @i of a --count run: TEXT-i, or i alone. Returns its
 * length; the caller checks it against the bound. */
static size_t agent_event_text(const char *text, long i, char *buf,
                               size_t len)
{
    int n = text[0] ? snprintf(buf, len, "%s-%ld", text, i)
                    : snprintf(buf, len, "%ld", i);

    return n < 0 ? len : (size_t)n;
}

/* sextant-agent event ...: Failover events into the spool. The spool
 * takes writers from several processes (spool.h), so this is safe while
 * the agent runs. --count appends its events one transaction each, as
 * that many runs would, so the agent's own appends interleave and the
 * spool's bound drops the oldest between them as it would anyway; one
 * process instead of N is what makes filling a spool cheap. */
static int agent_event(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "kind", required_argument, NULL, 'k' },
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "service", required_argument, NULL, 's' },
        { "text", required_argument, NULL, 'x' },
        { "count", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__Failover fo = SEXTANT__V1__FAILOVER__INIT;
    const char *path = NULL, *kind = NULL, *from = "", *to = "", *text = "";
    const char *service = "";
    const char *count_arg = NULL;
    char buf[WIRE_MAX_TEXT + 32];   /* TEXT-i; checked against the bound */
    struct agent_config cfg = { 0 };
    struct spool *sp = NULL;
    char err[512];
    size_t text_len;
    long count = 1, i;
    int status = AGENT_EXIT_USAGE, rc;

    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "c:k:f:t:s:x:n:h", opts, NULL);

        if (c == -1)
            break;
        switch (c) {
        case 'c': path = optarg; break;
        case 'k': kind = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 's': service = optarg; break;
        case 'x': text = optarg; break;
        case 'n': count_arg = optarg; break;
        case 'h':
            fputs(agent_event_usage, stdout);
            return 0;
        default:
            fprintf(stderr, "sextant-agent event: bad option %s; try "
                    "--help\n", argv[optind - 1]);
            return AGENT_EXIT_USAGE;
        }
    }
    if (!path || !kind || optind < argc) {
        fprintf(stderr, "sextant-agent event: --config FILE and --kind KIND "
                "are required; try --help\n");
        return AGENT_EXIT_USAGE;
    }
    if (count_arg && agent_event_count(count_arg, &count) < 0) {
        fprintf(stderr, "sextant-agent event: --count must be a whole "
                "number from 1 to %ld, not \"%s\"\n", AGENT_EVENT_MAX_COUNT,
                count_arg);
        return AGENT_EXIT_USAGE;
    }
    /* The last text is the longest: if it fits, they all do. */
    text_len = count_arg ? agent_event_text(text, count, buf, sizeof(buf))
                         : strlen(text);
    if (!kind[0] || strlen(kind) > WIRE_MAX_STR || strlen(from) > WIRE_MAX_STR
        || strlen(to) > WIRE_MAX_STR || strlen(service) > WIRE_MAX_STR ||
        text_len > WIRE_MAX_TEXT) {
        fprintf(stderr, "sextant-agent event: --kind must not be empty; "
                "regions and service at most %u bytes, text (with "
                "--count's -N) at most %u\n", WIRE_MAX_STR, WIRE_MAX_TEXT);
        return AGENT_EXIT_USAGE;
    }
    if (agent_config_load(path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return AGENT_EXIT_USAGE;
    }
    fo.kind = (char *)kind;
    fo.from_region = (char *)from;
    fo.to_region = (char *)to;
    fo.service = (char *)service;
    fo.text = count_arg ? buf : (char *)text;
    ev.kind_case = SEXTANT__V1__EVENT__KIND_FAILOVER;
    ev.failover = &fo;
    /* The collector refuses a batch with one bad event (invalid UTF-8,
     * say): refuse it here, where a person can fix the command. The
     * digits --count adds change nothing about that. */
    if (agent_event_check(&cfg, &ev, err, sizeof(err)) < 0) {
        fprintf(stderr, "sextant-agent event: %s\n", err);
        goto out;
    }
    rc = spool_open(cfg.spool_path, &sp, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sextant-agent event: cannot open the spool: %s\n",
                err);
        status = AGENT_EXIT_FAIL;
        goto out;
    }
    /* A line per event as it is recorded: a script reading along, or one
     * that kills us, sees exactly what was recorded. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    status = 0;
    for (i = 1; i <= count; i++) {
        if (count_arg)
            agent_event_text(text, i, buf, sizeof(buf));
        ev.seq = 0;
        ev.unix_ms = 0;             /* the spool sets both */
        rc = spool_append(sp, &ev);
        if (rc < 0) {
            fprintf(stderr, "sextant-agent event: spool refused it: %s "
                    "(%s)\n", strerror(-rc), spool_errmsg(sp));
            status = AGENT_EXIT_FAIL;
            break;
        }
        printf("recorded %s event, seq %llu\n", kind,
               (unsigned long long)ev.seq);
    }
out:
    spool_close(sp);
    agent_config_free(&cfg);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "once", no_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct agent_config *cfg = NULL;
    struct agent_reload reload;
    struct admin *adm = NULL;
    struct spool *sp = NULL;
    struct loop *lp = NULL;
    const char *path = NULL;
    char err[512];
    int once = 0, curl_up = 0, status = AGENT_EXIT_FAIL, own_fd = -1, rc;
    long holder;

    opterr = 0;                     /* our message, one line */
    if (argc > 1 && strcmp(argv[1], "event") == 0)
        return agent_event(argc - 1, argv + 1);
    if (argc > 1 && check_config_is(argv[1]))
        return check_config_main(argc, argv, "sextant-agent", cli_check_agent);
    for (;;) {
        int c = getopt_long(argc, argv, "c:hV", opts, NULL);

        if (c == -1)
            break;
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'o':
            once = 1;
            break;
        case 'h':
            fputs(agent_usage, stdout);
            return 0;
        case 'V':
            printf("sextant-agent %s\n", SEXTANT_VERSION);
            return 0;
        default:
            fprintf(stderr, "sextant-agent: bad option %s; try --help\n",
                    argv[optind - 1]);
            return AGENT_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sextant-agent: unexpected argument %s; try --help\n",
                argv[optind]);
        return AGENT_EXIT_USAGE;
    }
    if (!path) {
        fprintf(stderr, "sextant-agent: --config FILE is required; try "
                "--help\n");
        return AGENT_EXIT_USAGE;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return AGENT_EXIT_FAIL;
    if (agent_config_load(path, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        free(cfg);
        return AGENT_EXIT_USAGE;
    }
    log_set_level(cfg->log_level);
    /* A peer closing mid-write must be an error code, not a dead agent;
     * CURLOPT_NOSIGNAL leaves SIGPIPE to us. */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_msg(LOGL_ERROR, "main", "libcurl failed to initialise");
        goto out;
    }
    curl_up = 1;
    /* Before opening it: a second owner must not write even a START. */
    rc = spool_own(cfg->spool_path, &own_fd, &holder, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sextant-agent: %s\n", err);
        status = rc == -EBUSY ? AGENT_EXIT_USAGE : AGENT_EXIT_FAIL;
        goto out;
    }
    rc = spool_open(cfg->spool_path, &sp, err, sizeof(err));
    if (rc < 0) {
        log_msg(LOGL_ERROR, "main", "cannot open the spool: %s", err);
        goto out;
    }
    rc = loop_new(cfg, sp, &lp);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "main", "cannot set up the loop: %s",
                strerror(-rc));
        goto out;
    }
    reload.path = path;
    loop_set_reload(lp, agent_load, agent_release, &reload);
    /* Not for --once, a short job that may run beside a live agent (on
     * a spool of its own). A port the file names must be ours; the
     * default one only warns, so two agents on one host still probe. */
    if (!once && cfg->admin_listen &&
        admin_start(cfg->admin_listen, &adm) < 0) {
        if (cfg->admin_listen_set)
            goto out;
        log_msg(LOGL_WARN, "main", "running without /healthz and /metrics; "
                "set admin.listen to a free IP:PORT, or admin.enabled: "
                "false");
    }
    rc = loop_run(lp, once);
    status = rc == 0 ? 0 : AGENT_EXIT_FAIL;
out:
    admin_stop(adm);                /* before the loop it reports on */
    if (lp)
        cfg = (struct agent_config *)loop_config(lp);   /* after reloads */
    loop_free(lp);
    spool_close(sp);
    spool_disown(own_fd);
    if (curl_up)
        curl_global_cleanup();
    agent_config_free(cfg);
    free(cfg);
    return status;
}
