/* cli_check.h -- `sextant-collector --check-config FILE`. */
#ifndef SEXTANT_COLLECTOR_CLI_CHECK_H
#define SEXTANT_COLLECTOR_CLI_CHECK_H

#include <stddef.h>

/* The collector's loader for check_config_main(): collector_config_load()
 * and collector_config_free(), nothing else. */
int cli_check_collector(const char *path, char *err, size_t err_len);

#endif
