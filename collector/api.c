/* api.c -- /api/v1/ handlers: parameter checks and rendering. The SQL and
 * the JSON of each row are store.c's. */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wire.h"

#define API_DEFAULT_LIMIT 1000u
#define API_DEFAULT_SPAN_MS (3600 * 1000)

int api_parse_time(const char *s, int64_t *out_ms)
{
    struct tm tm;
    const char *p;
    char *end;
    long long ms = 0;
    time_t t;

    if (s[0] == '\0')
        return -EINVAL;
    if (strspn(s, "0123456789") == strlen(s)) {
        errno = 0;
        ms = strtoll(s, &end, 10);
        if (errno || strlen(s) > 15)        /* past year 33658: nonsense */
            return -EINVAL;
        *out_ms = ms;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -EINVAL;
    if (*p == '.') {                        /* up to 3 digits count */
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0)
            return -EINVAL;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0)
        return -EINVAL;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *out_ms = (int64_t)t * 1000 + ms;
    return 0;
}

static void api_bad_param(struct reply *r, const char *key,
                          const char *why)
{
    char detail[160];

    snprintf(detail, sizeof(detail), "%.40s: %s", key, why);
    reply_error(r, 400, "bad parameter", detail);
}

/* A query the store answered (@rc 0: takes @json) or could not: 503,
 * saying whether to narrow it; 500 on a damaged file (a retry cannot
 * help). */
static void api_answer(struct store *st, struct reply *r, int rc,
                       char *json, size_t len)
{
    char detail[192];

    if (rc == -EUCLEAN) {
        store_corrupt_detail(st, detail, sizeof(detail));
        reply_error(r, 500, "database corrupt", detail);
    } else if (rc == -ETIMEDOUT) {
        snprintf(detail, sizeof(detail), "stopped after %d ms; narrow the "
                 "time range or add a filter", STORE_QUERY_MS);
        reply_error(r, 503, "query too long", detail);
    } else if (rc < 0) {
        reply_error(r, 503, "store unavailable", "query failed; retry");
    } else {
        r->status = 200;
        r->content_type = "application/json";
        r->body = (uint8_t *)json;
        r->len = len;
    }
}

/* Every parameter needs a value; these are the ones both queries share:
 * from, to (times), cluster, target and, where @kind is not NULL, kind
 * (names, borrowed). 1: @k was one of them and is stored; 0: not one of
 * them; -EINVAL: a 400 is in @r. */
static int api_common_param(const char *k, const char *v, int64_t *from,
                            int64_t *to, const char **cluster,
                            const char **target, const char **kind,
                            struct reply *r)
{
    const char **name = NULL;

    if (!v || !v[0]) {
        api_bad_param(r, k, "needs a value");
        return -EINVAL;
    }
    if (strcmp(k, "from") == 0 || strcmp(k, "to") == 0) {
        if (api_parse_time(v, k[0] == 'f' ? from : to) < 0) {
            api_bad_param(r, k, "expected Unix milliseconds or "
                          "RFC 3339 UTC such as 2026-11-25T17:00:00Z");
            return -EINVAL;
        }
        return 1;
    }
    if (strcmp(k, "cluster") == 0)
        name = cluster;
    else if (strcmp(k, "target") == 0)
        name = target;
    else if (kind && strcmp(k, "kind") == 0)
        name = kind;
    if (!name)
        return 0;
    if (strlen(v) > WIRE_MAX_STR) {
        api_bad_param(r, k, "too long");
        return -EINVAL;
    }
    *name = v;
    return 1;
}

void api_timeline(struct store *st, const struct api_param *params,
                  size_t n_params, int64_t now_ms, struct reply *r)
{
    struct store_timeline_query q = {
        .from_ms = now_ms - API_DEFAULT_SPAN_MS,
        .to_ms = now_ms + 1,
        .limit = API_DEFAULT_LIMIT,
        .order = STORE_ORDER_AGENT,
    };
    char *json = NULL;
    size_t len;
    int rc;

    for (size_t i = 0; i < n_params; i++) {
        const char *k = params[i].key, *v = params[i].value;

        rc = api_common_param(k, v, &q.from_ms, &q.to_ms, &q.cluster,
                              &q.target, &q.kind, r);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        if (strcmp(k, "limit") == 0) {
            char *end;
            long n;

            errno = 0;
            n = strtol(v, &end, 10);
            if (errno || *end || n < 1 || n > (long)STORE_TIMELINE_MAX_LIMIT) {
                api_bad_param(r, k, "expected 1 to 10000");
                return;
            }
            q.limit = (unsigned)n;
        } else if (strcmp(k, "order") == 0) {
            if (strcmp(v, "agent") == 0) {
                q.order = STORE_ORDER_AGENT;
            } else if (strcmp(v, "corrected") == 0) {
                q.order = STORE_ORDER_CORRECTED;
            } else {
                api_bad_param(r, k, "expected agent or corrected");
                return;
            }
        } else {
            api_bad_param(r, k, "unknown parameter (from, to, cluster, "
                          "target, kind, limit, order)");
            return;
        }
    }
    if (q.from_ms >= q.to_ms) {
        api_bad_param(r, "from", "must be before to");
        return;
    }
    rc = store_timeline(st, &q, &json, &len);
    api_answer(st, r, rc, json, len);
}

void api_latency(struct store *st, const struct api_param *params,
                 size_t n_params, int64_t now_ms, struct reply *r)
{
    struct store_latency_query q = {
        .from_ms = now_ms - API_DEFAULT_SPAN_MS,
        .to_ms = now_ms + 1,
        .step = STORE_STEP_MINUTE,
    };
    char *json = NULL;
    size_t len;
    int rc;

    for (size_t i = 0; i < n_params; i++) {
        const char *k = params[i].key, *v = params[i].value;

        rc = api_common_param(k, v, &q.from_ms, &q.to_ms, &q.cluster,
                              &q.target, NULL, r);
        if (rc < 0)
            return;
        if (rc > 0)
            continue;
        if (strcmp(k, "step") == 0) {
            if (strcmp(v, "minute") == 0) {
                q.step = STORE_STEP_MINUTE;
            } else if (strcmp(v, "hour") == 0) {
                q.step = STORE_STEP_HOUR;
            } else {
                api_bad_param(r, k, "expected minute or hour");
                return;
            }
        } else {
            api_bad_param(r, k, "unknown parameter (target, cluster, from, "
                          "to, step)");
            return;
        }
    }
    if (!q.target) {
        api_bad_param(r, "target", "required");
        return;
    }
    if (q.from_ms >= q.to_ms) {
        api_bad_param(r, "from", "must be before to");
        return;
    }
    rc = store_latency(st, &q, &json, &len);
    if (rc == -E2BIG) {
        api_bad_param(r, "from", "range over 20000 steps: use step=hour or "
                      "a shorter range");
        return;
    }
    api_answer(st, r, rc, json, len);
}
