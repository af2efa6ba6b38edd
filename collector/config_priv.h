/* config_priv.h -- what the two files of the config module share:
 * config.c reads the file and its server keys, config_topo.c the
 * `services:` list and the `incidents:` block into a topology. */
#ifndef SEXTANT_COLLECTOR_CONFIG_PRIV_H
#define SEXTANT_COLLECTOR_CONFIG_PRIV_H

#include "topology.h"
#include "yconf.h"

/* Reads `services:` and `incidents:` (both optional) of @root into @t,
 * which starts zeroed; its options get their defaults when absent. 0, or
 * -EINVAL with the one-line error in yc->err, or -ENOMEM. On error @t
 * may hold part of what was read: topo_free() it. */
int config_topology(struct yconf *yc, yaml_node_t *root, struct topology *t);

#endif
