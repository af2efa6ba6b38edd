/* cli_incidents.h -- `sextant-collector incidents ...`: the commands on
 * a database's incidents that need no running server. */
#ifndef SEXTANT_CLI_INCIDENTS_H
#define SEXTANT_CLI_INCIDENTS_H

/* @argv[0] is "incidents". Returns the exit code: 0 done, 1 failed, 2 bad
 * usage or config. Prints to stdout and stderr (a command, not a
 * library). */
int cli_incidents(int argc, char **argv);

#endif
