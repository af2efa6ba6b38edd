/* check_config.c -- `--check-config FILE` for both binaries: argument
 * parsing and the one line of output. What is checked is the binary's
 * loader's business (the same code a start runs); this file opens no
 * port, and creates or changes no file. */
#include "check_config.h"

#include <stdio.h>
#include <string.h>

#define CHECK_CONFIG_OPT "--check-config"
#define CHECK_CONFIG_EXIT_BAD 2     /* usage or config error, as a start */

int check_config_is(const char *arg)
{
    size_t n = strlen(CHECK_CONFIG_OPT);

    return strncmp(arg, CHECK_CONFIG_OPT, n) == 0 &&
           (arg[n] == '\0' || arg[n] == '=');
}

int check_config_main(int argc, char **argv, const char *prog,
                      check_config_load_fn load)
{
    const char *eq = strchr(argv[1], '=');
    const char *path = eq ? eq + 1 : argc > 2 ? argv[2] : NULL;
    int n_args = eq ? 2 : 3;        /* prog, option[, FILE] */
    char err[1024];

    /* One form only: a second option would be one a start takes, and
     * checking it here would be guessing what it means for the check. */
    if (!path || !path[0] || argc != n_args) {
        fprintf(stderr, "%s: usage: %s --check-config FILE (nothing "
                "else; try --help)\n", prog, prog);
        return CHECK_CONFIG_EXIT_BAD;
    }
    if (load(path, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return CHECK_CONFIG_EXIT_BAD;
    }
    printf("%s: ok\n", path);
    return 0;
}
