/* api_services.c -- GET /api/v1/status and /api/v1/services[/{name}]:
 * the engine's derived state of each service (store_service_status) with
 * each region's uptime and latency from the rollups (store_status.c),
 * and every (cluster, target)'s health now. Joins the store's JSON with
 * json-c; nothing here knows libmicrohttpd. */
#include "api_priv.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_DAY_MS (24 * 3600 * 1000LL)

/* The windows a region's uptime and latency are given over. */
static const struct {
    const char *name;
    int64_t span_ms;
    enum store_step step;
} api_windows[] = {
    { "24h", API_DAY_MS, STORE_STEP_MINUTE },
    { "7d", 7 * API_DAY_MS, STORE_STEP_HOUR },
    { "30d", 30 * API_DAY_MS, STORE_STEP_HOUR },
};

/* Parses the store's JSON @json (@len bytes; freed here): 0 and *out,
 * or a 500 in @r. */
static int api_parse_store(char *json, size_t len, struct json_object **out,
                           struct reply *r)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = NULL;

    if (tok && len <= INT32_MAX) {
        o = json_tokener_parse_ex(tok, json, (int)len);
        if (o && json_tokener_get_error(tok) != json_tokener_success) {
            json_object_put(o);
            o = NULL;
        }
    }
    json_tokener_free(tok);
    free(json);
    if (!o) {
        reply_error(r, 500, "internal error", "cannot read the store's "
                    "reply");
        return -EINVAL;
    }
    *out = o;
    return 0;
}

/* Runs store query @q and parses its reply: 0 and *out, or -errno with
 * the reply in @r. */
static int api_store_json(struct store *st,
                          int (*q)(struct store *, char **, size_t *),
                          struct json_object **out, struct reply *r)
{
    char *json = NULL;
    size_t len = 0;
    int rc = q(st, &json, &len);

    if (rc < 0) {
        api_answer(st, r, rc, NULL, 0);
        return rc;
    }
    return api_parse_store(json, len, out, r);
}

/* A JSON reply of @o's text (200): 0, or a 500 in @r. */
static void api_reply_json(struct json_object *o, unsigned status,
                           struct reply *r)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    char *body = s ? strdup(s) : NULL;

    if (!body) {
        reply_error(r, 500, "internal error", "out of memory");
        return;
    }
    r->status = status;
    r->content_type = "application/json";
    r->body = (uint8_t *)body;
    r->len = strlen(body);
}

/* Refuses any parameter: the endpoint takes none. 0 or -EINVAL. */
static int api_no_params(const struct api_param *params, size_t n_params,
                         struct reply *r)
{
    if (n_params == 0)
        return 0;
    if (api_param_bytes(&params[0], r) == 0)
        api_bad_param(r, params[0].key, "unknown parameter (none)");
    return -EINVAL;
}

/* The targets' part (a MB for 200 agents x 20 targets) goes into the
 * reply as the store wrote it: parsing and printing it again with json-c
 * cost more CPU than the store's query (bench/RESULTS.md, "Status from
 * target_now"). Only the services' part is parsed, to take its array. */
void api_status(struct store *st, const struct api_param *params,
                size_t n_params, struct reply *r)
{
    static const char head[] = "{\"targets\":", mid[] = ",\"services\":";
    struct json_object *svc = NULL, *v;
    char *targets = NULL, *body = NULL;
    const char *sv;
    size_t len = 0, n;
    int rc;

    if (api_no_params(params, n_params, r) < 0)
        return;
    rc = store_targets_status(st, &targets, &len);
    if (rc < 0) {
        api_answer(st, r, rc, NULL, 0);
        goto out;
    }
    if (api_store_json(st, store_service_status, &svc, r) < 0)
        goto out;
    sv = json_object_object_get_ex(svc, "services", &v)
         ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : NULL;
    if (!sv) {
        reply_error(r, 500, "internal error", "no services in the store's "
                    "reply");
        goto out;
    }
    n = sizeof(head) - 1 + len + sizeof(mid) - 1 + strlen(sv) + 1;
    body = malloc(n + 1);
    if (!body) {
        reply_error(r, 500, "internal error", "out of memory");
        goto out;
    }
    snprintf(body, n + 1, "%s%s%s%s}", head, targets, mid, sv);
    r->status = 200;
    r->content_type = "application/json";
    r->body = (uint8_t *)body;
    r->len = n;
    body = NULL;                        /* the reply's now */
out:
    free(body);
    free(targets);
    json_object_put(svc);
}

static const struct topo_service *api_topo_service(
    const struct topology *topo, const char *name)
{
    for (size_t i = 0; name && topo && i < topo->n_services; i++)
        if (strcmp(topo->services[i].name, name) == 0)
            return &topo->services[i];
    return NULL;
}

static const struct topo_region *api_topo_region(
    const struct topo_service *svc, const char *name)
{
    for (size_t i = 0; name && svc && i < svc->n_regions; i++)
        if (strcmp(svc->regions[i].name, name) == 0)
            return &svc->regions[i];
    return NULL;
}

/* A number, or null when @has is 0. */
static struct json_object *api_num(int has, double v)
{
    return has ? json_object_new_double(v) : NULL;
}

/* Adds "windows" to @region: its targets' probes, uptime and latency
 * over each of api_windows. 0 or -errno of the store. */
static int api_region_windows(struct store *st, const struct topo_region *tr,
                              int64_t now_ms, struct json_object *region)
{
    struct json_object *wins = json_object_new_object(), *w;
    struct store_window win;
    int rc = 0;

    if (!wins)
        return -ENOMEM;
    for (size_t i = 0; i < sizeof(api_windows) / sizeof(api_windows[0]);
         i++) {
        rc = store_targets_window(st, (const char *const *)tr->targets,
                                  tr->n_targets,
                                  now_ms - api_windows[i].span_ms,
                                  now_ms + 1, api_windows[i].step, &win);
        if (rc < 0)
            break;
        w = json_object_new_object();
        if (!w) {
            rc = -ENOMEM;
            break;
        }
        json_object_object_add(w, "probes", json_object_new_uint64(win.count));
        json_object_object_add(w, "failures",
                               json_object_new_uint64(win.failures));
        json_object_object_add(w, "uptime",
                               api_num(win.count > 0,
                                       win.count ? (double)(win.count -
                                                            win.failures) /
                                                       (double)win.count
                                                 : 0.0));
        json_object_object_add(w, "p50_ms", api_num(win.has_latency,
                                                    win.p50_ms));
        json_object_object_add(w, "p95_ms", api_num(win.has_latency,
                                                    win.p95_ms));
        json_object_object_add(w, "p99_ms", api_num(win.has_latency,
                                                    win.p99_ms));
        json_object_object_add(wins, api_windows[i].name, w);
    }
    if (rc < 0) {
        json_object_put(wins);
        return rc;
    }
    json_object_object_add(region, "windows", wins);
    return 0;
}

/* Adds the windows to every region of service object @s. */
static int api_service_windows(struct store *st, const struct topology *topo,
                               struct json_object *s, int64_t now_ms)
{
    const struct topo_service *ts;
    struct json_object *regions, *reg, *name;
    int rc = 0;

    if (!json_object_object_get_ex(s, "name", &name))
        return 0;
    ts = api_topo_service(topo, json_object_get_string(name));
    if (!ts || !json_object_object_get_ex(s, "regions", &regions) ||
        !json_object_is_type(regions, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(regions) && rc == 0;
         i++) {
        const struct topo_region *tr;

        reg = json_object_array_get_idx(regions, i);
        tr = json_object_object_get_ex(reg, "name", &name)
                 ? api_topo_region(ts, json_object_get_string(name)) : NULL;
        if (tr)
            rc = api_region_windows(st, tr, now_ms, reg);
    }
    return rc;
}

void api_services(struct store *st, const struct topology *topo,
                  const char *name, const struct api_param *params,
                  size_t n_params, int64_t now_ms, struct reply *r)
{
    struct json_object *svc = NULL, *list, *s, *found = NULL, *n;
    int rc;

    if (api_no_params(params, n_params, r) < 0)
        return;
    if (name && api_service_known(topo, "name", name, 404, r) < 0)
        return;
    if (api_store_json(st, store_service_status, &svc, r) < 0)
        return;
    if (!json_object_object_get_ex(svc, "services", &list) ||
        !json_object_is_type(list, json_type_array)) {
        reply_error(r, 500, "internal error", "no services in the store's "
                    "reply");
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        s = json_object_array_get_idx(list, i);
        if (name && !(json_object_object_get_ex(s, "name", &n) &&
                      strcmp(json_object_get_string(n), name) == 0))
            continue;
        found = s;
        rc = api_service_windows(st, topo, s, now_ms);
        if (rc < 0) {
            api_answer(st, r, rc, NULL, 0);
            goto out;
        }
    }
    if (name && !found) {
        reply_error(r, 503, "not ready", "the incident engine has no state "
                    "for this service yet; retry");
        goto out;
    }
    api_reply_json(name ? found : svc, 200, r);
out:
    json_object_put(svc);
}
