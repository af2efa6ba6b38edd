/* cli_check.c -- what `sextant-collector --check-config FILE` checks: the
 * whole file as a start loads it (keys, types, ranges, the listen
 * address, clusters and API tokens with their token_files, services,
 * incidents and webhook URLs, TLS files and that key and certificate
 * match, store.postgres's connection string (by libpq's parser, and
 * its sslmode and TLS files, which libpq checks only at connect) and
 * password file). Not checked, since only a start can: the database (it
 * may not exist yet; it is not opened, created or connected to), whether
 * the port is free. */
#include "cli_check.h"

#include "config.h"

int cli_check_collector(const char *path, char *err, size_t err_len)
{
    struct collector_config cfg;
    int rc;

    rc = collector_config_load(path, &cfg, err, err_len);
    if (rc == 0)
        collector_config_free(&cfg);
    return rc;
}
