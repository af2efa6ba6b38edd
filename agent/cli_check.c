/* cli_check.c -- what `sextant-agent --check-config FILE` checks: the
 * whole file as a start loads it (keys, types, ranges, URLs, targets and
 * their probe options, the admin listen address, token_file and TLS files
 * readable), with env NODE_NAME. Not checked, since only a start can: the
 * spool (its folder may not exist yet; it is not opened), whether the
 * admin port is free, whether a collector answers. */
#include "cli_check.h"

#include "config.h"

int cli_check_agent(const char *path, char *err, size_t err_len)
{
    struct agent_config cfg = { 0 };
    int rc;

    rc = agent_config_load(path, &cfg, err, err_len);
    if (rc == 0)
        agent_config_free(&cfg);
    return rc;
}
