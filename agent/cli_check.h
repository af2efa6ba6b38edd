/* cli_check.h -- `sextant-agent --check-config FILE`. */
#ifndef SEXTANT_AGENT_CLI_CHECK_H
#define SEXTANT_AGENT_CLI_CHECK_H

#include <stddef.h>

/* The agent's loader for check_config_main(): agent_config_load() and
 * agent_config_free(), nothing else (env NODE_NAME counts, as at a
 * start). */
int cli_check_agent(const char *path, char *err, size_t err_len);

#endif
