/* api_clusters.c -- GET /api/v1/clusters: checks that no parameter is
 * given and answers the store's clusters, regions and agents
 * (store_clusters). The JSON is the store's. */
#include "api_priv.h"

#include <errno.h>

void api_clusters(struct store *st, const struct api_param *params,
                  size_t n_params, struct reply *r)
{
    char *json = NULL;
    size_t len = 0;
    int rc;

    if (n_params > 0) {
        if (api_param_bytes(&params[0], r) == 0)
            api_bad_param(r, params[0].key, "unknown parameter (none)");
        return;
    }
    rc = store_clusters(st, &json, &len);
    api_answer(st, r, rc, json, len);
}
