/* check_config.h -- `--check-config FILE`, shared by both binaries: loads
 * a config through the binary's own loader, exactly as a start would, and
 * reports one line. Each binary passes its loader (agent/cli_check.c,
 * collector/cli_check.c). */
#ifndef SEXTANT_CHECK_CONFIG_H
#define SEXTANT_CHECK_CONFIG_H

#include <stddef.h>

/* Loads and frees the config at @path, reading nothing but files it names
 * and creating nothing. 0 when it would start; else negative errno and one
 * line "FILE:LINE: key: message" in @err. */
typedef int (*check_config_load_fn)(const char *path, char *err,
                                    size_t err_len);

/* Whether @arg is "--check-config" or "--check-config=FILE": the one line
 * main() dispatches on. */
int check_config_is(const char *arg);

/* Runs "PROG --check-config FILE" (@argv[1] is the option). Prints "FILE:
 * ok" on stdout and returns 0, or prints one line on stderr and returns 2:
 * the loader's error, or a usage error. A command, not a library: it
 * prints. */
int check_config_main(int argc, char **argv, const char *prog,
                      check_config_load_fn load);

#endif
