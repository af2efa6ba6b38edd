/* main.c -- sextant-agent's command line: parse arguments, load the
 * config, open the spool, run the loop, and map the outcome to an exit
 * status (0 ok, 1 runtime failure, 2 usage or config error). Holds no
 * logic of its own beyond that. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "spool.h"

#define AGENT_EXIT_FAIL  1
#define AGENT_EXIT_USAGE 2

static const char agent_usage[] =
    "usage: sextant-agent --config FILE [--once]\n"
    "       sextant-agent --help | --version\n"
    "\n"
    "Probes the targets in FILE, spools every result on disk and ships\n"
    "them to the Sextant collector.\n"
    "\n"
    "  -c, --config FILE  agent configuration (YAML)\n"
    "      --once         probe every target once, ship everything,\n"
    "                     exit 0 when the collector acked it, 1 if not\n"
    "  -h, --help         show this help\n"
    "  -V, --version      show the version\n"
    "\n"
    "Env NODE_NAME overrides the config's node (Kubernetes downward API).\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage or config error.\n";

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "once", no_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct agent_config cfg = { 0 };
    struct spool *sp = NULL;
    struct loop *lp = NULL;
    const char *path = NULL;
    char err[512];
    int once = 0, curl_up = 0, status = AGENT_EXIT_FAIL, rc;

    opterr = 0;                     /* our message, one line */
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
    if (agent_config_load(path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return AGENT_EXIT_USAGE;
    }
    log_set_level(cfg.log_level);
    /* A peer closing mid-write must be an error code, not a dead agent;
     * CURLOPT_NOSIGNAL leaves SIGPIPE to us. */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_msg(LOGL_ERROR, "main", "libcurl failed to initialise");
        goto out;
    }
    curl_up = 1;
    rc = spool_open(cfg.spool_path, &sp, err, sizeof(err));
    if (rc < 0) {
        log_msg(LOGL_ERROR, "main", "cannot open the spool: %s", err);
        goto out;
    }
    rc = loop_new(&cfg, sp, &lp);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "main", "cannot set up the loop: %s",
                strerror(-rc));
        goto out;
    }
    rc = loop_run(lp, once);
    status = rc == 0 ? 0 : AGENT_EXIT_FAIL;
out:
    loop_free(lp);
    spool_close(sp);
    if (curl_up)
        curl_global_cleanup();
    agent_config_free(&cfg);
    return status;
}
