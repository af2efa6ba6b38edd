/* cli_incidents.h -- `sextant-collector incidents ...`: the commands on
 * a database's incidents that need no running server; and which store
 * such a command works on. */
#ifndef SEXTANT_CLI_INCIDENTS_H
#define SEXTANT_CLI_INCIDENTS_H

#include <stddef.h>

/* @argv[0] is "incidents". Returns the exit code: 0 done, 1 failed, 2 bad
 * usage or config. Prints to stdout and stderr (a command, not a
 * library). */
int cli_incidents(int argc, char **argv);

struct collector_config;
struct store_options;
/* The store a command works on: the SQLite file @db when given, else
 * @cfg's store (SQLite at its db, or PostgreSQL), as options for
 * store_open_readonly_with / store_incidents_rebuild_with (borrowing
 * @cfg), and its name for messages into @where (the path, or
 * "postgres host=H port=P dbname=D"). Also `sextant-collector
 * timeline`'s. */
void cli_incidents_store(const struct collector_config *cfg, const char *db,
                         struct store_options *o, char *where, size_t len);

#endif
