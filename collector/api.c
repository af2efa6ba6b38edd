/* api.c -- /api/v1/ handlers: parameter checks and rendering. The SQL and
 * the JSON of each row are the store's (store_query.c). */
#include "api_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "table.h"
#include "topology.h"
#include "util.h"
#include "wire.h"

#define API_DEFAULT_LIMIT 1000u    /* timeline rows: a page a UI can show */
#define API_DEFAULT_SPAN_MS (3600 * 1000)   /* no from/to: the last hour */
/* Unix ms with more digits is past the year 33658: nonsense, not a time. */
#define API_MAX_MS_DIGITS 15u
/* Close-name search: a name shorter than API_SHORT_NAME gets 1 edit, one
 * shorter than API_MID_NAME 2, else API_CLOSE_EDITS. One edit in a short
 * name already makes most names close. */
#define API_SHORT_NAME    4u
#define API_MID_NAME      12u
#define API_CLOSE_MAX     5u        /* close names offered for a typo */
#define API_CLOSE_EDITS   3u        /* at most this many edits away */
#define API_CLOSE_LEN     256u      /* longer: only a name holding it */
#define API_SHOWN_LEN     120u      /* bytes of a name quoted in a detail */
#define API_DETAIL_LEN    1024u
_Static_assert(sizeof(((struct reply *)0)->next) >= STORE_CURSOR_LEN,
               "a reply holds a timeline cursor");

/* Every kind the store writes (wire_event_kind, plus its own notes) and
 * "annotation" (a person's note, from the annotations table): one of
 * these is never a typo, even before the first such event. */
static const char *const api_kinds[] = {
    "probe", "state", "dns", "metric", "failover", "marker", "lifecycle",
    "gap", "drop", "unknown", "annotation",
};

/* The zone of an RFC 3339 time at @p: "Z" (or "z"), or "+HH:MM" /
 * "-HH:MM" ahead of UTC by *@off_ms; nothing may follow. 0 or -EINVAL. */
static int api_parse_zone(const char *p, int64_t *off_ms)
{
    int h, m;

    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        *off_ms = 0;
        return 0;
    }
    if ((p[0] != '+' && p[0] != '-') || !isdigit((unsigned char)p[1]) ||
        !isdigit((unsigned char)p[2]) || p[3] != ':' ||
        !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]) ||
        p[6] != '\0')
        return -EINVAL;
    h = (p[1] - '0') * 10 + (p[2] - '0');
    m = (p[4] - '0') * 10 + (p[5] - '0');
    if (h > 23 || m > 59)
        return -EINVAL;
    *off_ms = ((int64_t)h * 60 + m) * 60000 * (p[0] == '-' ? -1 : 1);
    return 0;
}

int api_parse_time(const char *s, int64_t *out_ms)
{
    struct tm tm;
    const char *p;
    char *end;
    long long ms = 0;
    int64_t off_ms;
    time_t t;

    if (s[0] == '\0')
        return -EINVAL;
    if (strspn(s, "0123456789") == strlen(s)) {
        errno = 0;
        ms = strtoll(s, &end, 10);
        if (errno || strlen(s) > API_MAX_MS_DIGITS)
            return -EINVAL;
        *out_ms = ms;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%d", &tm);
    /* RFC 3339 allows a lower-case t and z (section 5.6, NOTE). */
    if (!p || (*p != 'T' && *p != 't'))
        return -EINVAL;
    p = strptime(p + 1, "%H:%M:%S", &tm);
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
    if (api_parse_zone(p, &off_ms) < 0)
        return -EINVAL;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *out_ms = (int64_t)t * 1000 + ms - off_ms;
    return 0;
}

void api_bad_param(struct reply *r, const char *key, const char *why)
{
    char detail[160];

    snprintf(detail, sizeof(detail), "%.40s: %s", key, why);
    reply_error(r, 400, "bad parameter", detail);
}

/* Appends @s to @buf (NUL-terminated, @size bytes) as a quoted name cut
 * at API_SHOWN_LEN bytes on a character boundary, so that the detail stays
 * short and UTF-8. */
static void api_append_name(char *buf, size_t size, const char *s)
{
    size_t used = strlen(buf), len = strlen(s), n = 0, k;
    const unsigned char *p = (const unsigned char *)s;

    while (n < len) {
        k = util_utf8_char(p + n, len - n, NULL);
        if (k == 0 || n + k > API_SHOWN_LEN)
            break;
        n += k;
    }
    snprintf(buf + used, size - used, "\"%.*s%s\"", (int)n, s,
             p[n] ? "..." : "");
}

/* The close names to a wanted one, best first: fewest edits (ASCII case
 * ignored), then names that hold the wanted one (3 bytes or more). */
struct api_close {
    const char *want;
    size_t want_len;
    unsigned max_edits;
    size_t n;
    unsigned score[API_CLOSE_MAX];
    char name[API_CLOSE_MAX][API_SHOWN_LEN + 4];
    size_t known;                   /* names looked at */
};

/* Edits from @a to @b (insert, delete, replace, or swap two neighbours:
 * the typos people make; ASCII case ignored), or @limit + 1 once it is
 * sure to be more than @limit. */
static unsigned api_edits(const char *a, size_t na, const char *b,
                          size_t nb, unsigned limit)
{
    unsigned row[3][API_CLOSE_LEN + 1];
    unsigned *pp = row[0], *prev = row[1], *cur = row[2], *t;
    unsigned prev_best = 0;         /* row 0's best */
    size_t i, j;

    if ((na > nb ? na - nb : nb - na) > limit)
        return limit + 1;
    for (j = 0; j <= nb; j++)
        prev[j] = (unsigned)j;
    for (i = 1; i <= na; i++) {
        int ai = tolower((unsigned char)a[i - 1]);
        unsigned best;

        cur[0] = (unsigned)i;
        best = cur[0];
        for (j = 1; j <= nb; j++) {
            int bj = tolower((unsigned char)b[j - 1]);
            unsigned v = prev[j - 1] + (ai != bj);

            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                bj == tolower((unsigned char)a[i - 2]) && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
            if (v < best)
                best = v;
        }
        /* A swap costs 1 from two rows back: stop once no cell of this
         * row nor of the one before can lead to @limit or less. */
        if (best > limit && prev_best >= limit)
            return limit + 1;
        prev_best = best;
        t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[nb] <= limit ? prev[nb] : limit + 1;
}

static void api_close_consider(void *ctx, const char *name)
{
    struct api_close *c = ctx;
    char shown[sizeof(c->name[0])];
    size_t n = strlen(name), i;
    unsigned score;

    c->known++;
    if (strcmp(name, c->want) == 0)
        return;
    score = c->max_edits + 2;       /* not close */
    if (n <= API_CLOSE_LEN && c->want_len <= API_CLOSE_LEN)
        score = api_edits(c->want, c->want_len, name, n, c->max_edits);
    if (score > c->max_edits)
        score = c->want_len >= 3 && strstr(name, c->want) != NULL
                    ? c->max_edits + 1 : c->max_edits + 2;
    if (score > c->max_edits + 1)
        return;
    shown[0] = '\0';
    api_append_name(shown, sizeof(shown), name);
    /* Insert in order; equal scores keep the store's name order. */
    for (i = c->n; i > 0 && c->score[i - 1] > score; i--) {
        if (i < API_CLOSE_MAX) {
            c->score[i] = c->score[i - 1];
            memcpy(c->name[i], c->name[i - 1], sizeof(c->name[i]));
        }
    }
    if (i >= API_CLOSE_MAX)
        return;
    c->score[i] = score;
    memcpy(c->name[i], shown, sizeof(shown));
    if (c->n < API_CLOSE_MAX)
        c->n++;
}

/* Appends @c's close names to @buf (@size bytes), or how many names it
 * @has. */
static void api_close_list(const struct api_close *c, char *buf,
                           size_t size, const char *has)
{
    size_t used = strlen(buf);

    if (c->known == 0)
        snprintf(buf + used, size - used, "; it %s none", has);
    else if (c->n == 0)
        snprintf(buf + used, size - used, "; none of the %zu "
                 "it %s is close", c->known, has);
    for (size_t i = 0; i < c->n; i++) {
        used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s",
                 i == 0 ? "; close: " : ", ", c->name[i]);
    }
}

/* Whether @name is one of api_kinds. */
static int api_kind_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof(api_kinds) / sizeof(api_kinds[0]); i++)
        if (strcmp(name, api_kinds[i]) == 0)
            return 1;
    return 0;
}

/* A kind the store lists: api_known considers every built-in kind after
 * the store's, so one both built in and stored is left to that loop,
 * to be counted and offered once. */
static void api_kind_consider(void *ctx, const char *name)
{
    if (!api_kind_builtin(name))
        api_close_consider(ctx, name);
}

/* The 400 "unknown name" (or @status 404 "not found") for @v into @r:
 * @head (the key and what has no such name, API_DETAIL_LEN bytes,
 * appended to) then @v quoted and the close names of @c, or how many
 * names it @has. Returns -ENOENT. */
static int api_unknown(struct reply *r, unsigned status, char *head,
                       const char *v, const struct api_close *c,
                       const char *has)
{
    api_append_name(head, API_DETAIL_LEN, v);
    api_close_list(c, head, API_DETAIL_LEN, has);
    reply_error(r, status, status == 404 ? "not found" : "unknown name",
                head);
    return -ENOENT;
}

/* Checks that the store knows @v (@len bytes) as a @what (@key's value):
 * 0; -ENOENT with a 400 in @r naming it and the close names; another
 * -errno with a 503 in @r. */
static int api_known(struct store *st, enum store_names which,
                     const char *key, const char *what, const char *v,
                     size_t len, struct reply *r)
{
    struct api_close c = { .want = v, .want_len = len };
    char detail[API_DETAIL_LEN];
    size_t i;
    int rc;

    c.max_edits = len < API_SHORT_NAME ? 1
                  : len < API_MID_NAME ? 2 : API_CLOSE_EDITS;
    rc = store_name_known(st, which, v,
                          which == STORE_NAMES_KIND ? api_kind_consider
                                                    : api_close_consider,
                          &c);
    if (rc == 0 && which == STORE_NAMES_KIND) {
        for (i = 0; i < sizeof(api_kinds) / sizeof(api_kinds[0]); i++) {
            if (strcmp(v, api_kinds[i]) == 0)
                rc = 1;
            else
                api_close_consider(&c, api_kinds[i]);
        }
    }
    if (rc > 0)
        return 0;
    if (rc < 0) {
        api_answer(st, r, rc, NULL, 0);
        return rc;
    }
    snprintf(detail, sizeof(detail), "%s: the store has never seen a %s ",
             key, what);
    return api_unknown(r, 400, detail, v, &c, "knows");
}

/* @v is the name of one of the @n @names (a service, or a region of
 * one, in the config's topology): 0; else -ENOENT with a reply of
 * @status (400, or 404 for a path) in @r that names it and the close
 * names, as api_known does for the store's. */
static int api_topo_known(const char *key, const char *what,
                          const void *base, size_t stride, size_t n,
                          const char *v, unsigned status, struct reply *r)
{
    struct api_close c = { .want = v, .want_len = strlen(v) };
    char detail[API_DETAIL_LEN];
    size_t i;

    c.max_edits = c.want_len < API_SHORT_NAME ? 1
                  : c.want_len < API_MID_NAME ? 2 : API_CLOSE_EDITS;
    for (i = 0; i < n; i++) {
        const char *name;

        /* The name is the first member of a topo_service and of a
         * topo_region, the structs @base holds. */
        memcpy(&name, (const char *)base + i * stride, sizeof(name));

        if (strcmp(name, v) == 0)
            return 0;
        api_close_consider(&c, name);
    }
    snprintf(detail, sizeof(detail), "%s: the config has no %s ", key,
             what);
    return api_unknown(r, status, detail, v, &c, "has");
}

int api_service_known(const struct topology *topo, const char *key,
                      const char *name, unsigned status, struct reply *r)
{
    size_t n = topo ? topo->n_services : 0;

    return api_topo_known(key, "service", n ? topo->services : NULL,
                          sizeof(struct topo_service), n, name, status, r);
}

/* The service @v of @topo (NULL: none configured), or NULL with a 400
 * in @r. */
static const struct topo_service *api_service(const struct topology *topo,
                                              const char *v,
                                              struct reply *r)
{
    size_t n = topo ? topo->n_services : 0;

    if (api_service_known(topo, "service", v, 400, r) < 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(topo->services[i].name, v) == 0)
            return &topo->services[i];
    return NULL;
}

/* Every name the query filters on is one the store has seen: 0, or
 * -errno with the reply in @r. @kinds is a comma-separated list. */
static int api_names_known(struct store *st, const char *cluster,
                           const char *target, const char *kinds,
                           struct reply *r)
{
    char kind[WIRE_MAX_STR + 1];
    const char *p, *comma;
    size_t n;
    int rc = 0;

    if (cluster)
        rc = api_known(st, STORE_NAMES_CLUSTER, "cluster", "cluster",
                       cluster, strlen(cluster), r);
    if (rc == 0 && target)
        rc = api_known(st, STORE_NAMES_TARGET, "target", "target", target,
                       strlen(target), r);
    for (p = kinds; rc == 0 && p; p = comma ? comma + 1 : NULL) {
        comma = strchr(p, ',');
        n = comma ? (size_t)(comma - p) : strlen(p);
        memcpy(kind, p, n);             /* n <= WIRE_MAX_STR: checked */
        kind[n] = '\0';
        rc = api_known(st, STORE_NAMES_KIND, "kind", "kind", kind, n, r);
    }
    return rc;
}

/* What is wrong with the @len bytes of @s as a parameter, or NULL. */
static const char *api_bytes_wrong(const char *s, size_t len)
{
    size_t i, k;

    for (i = 0; i < len; i += k) {
        k = util_utf8_char((const unsigned char *)s + i, len - i, NULL);
        if (k == 0)
            return "is not valid UTF-8";
        if (s[i] == '\0')
            return "holds a NUL byte (%00)";
    }
    return NULL;
}

/* A key or value with a NUL inside (%00) or bytes that are not UTF-8 is
 * refused whole: cut or echoed, it would answer another question or
 * break the JSON of the reply. 0 or -EINVAL with a 400 in @r. */
int api_param_bytes(const struct api_param *p, struct reply *r)
{
    const char *what = "name", *why;
    char detail[48];

    why = api_bytes_wrong(p->key, p->key_len);
    if (!why && p->value) {
        what = "value";
        why = api_bytes_wrong(p->value, p->value_len);
    }
    if (!why)
        return 0;
    snprintf(detail, sizeof(detail), "%s %s", what, why);
    api_bad_param(r, p->key, detail);
    return -EINVAL;
}

/* A query the store answered (@rc 0: takes @json) or could not: 503,
 * saying whether to narrow it; 500 on a damaged file (a retry cannot
 * help). */
void api_answer(struct store *st, struct reply *r, int rc, char *json,
                size_t len)
{
    char detail[192];

    if (rc == -EUCLEAN) {
        store_corrupt_detail(st, detail, sizeof(detail));
        reply_error(r, 500, "database corrupt", detail);
    } else if (rc == -ETIMEDOUT) {
        snprintf(detail, sizeof(detail), "stopped after %d ms; narrow the "
                 "time range or add a filter", STORE_QUERY_MS);
        reply_error(r, 503, "query too long", detail);
    } else if (rc == -EAGAIN) {
        reply_error(r, 503, "not ready", "the database is migrating; "
                    "retry later (GET /readyz says when it is done)");
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
    if (name == kind && (v[0] == ',' || v[strlen(v) - 1] == ',' ||
                         strstr(v, ",,") != NULL)) {
        api_bad_param(r, k, "an empty kind in the list");
        return -EINVAL;
    }
    *name = v;
    return 1;
}

/* limit=: 0 and *out, or -EINVAL with a 400 in @r. */
int api_limit(const char *k, const char *v, unsigned max, unsigned *out,
              struct reply *r)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end || n < 1 || n > (long)max) {
        char why[32];

        snprintf(why, sizeof(why), "expected 1 to %u", max);
        api_bad_param(r, k, why);
        return -EINVAL;
    }
    *out = (unsigned)n;
    return 0;
}

/* One timeline parameter but the common ones (api_common_param): 0, or
 * -EINVAL with a 400 in @r. */
static int api_timeline_param(const char *k, const char *v,
                              const struct topology *topo,
                              struct store_timeline_query *q,
                              struct reply *r)
{
    if (strcmp(k, "limit") == 0)
        return api_limit(k, v, STORE_TIMELINE_MAX_LIMIT, &q->limit, r);
    if (strcmp(k, "order") == 0) {
        if (strcmp(v, "agent") == 0)
            q->order = STORE_ORDER_AGENT;
        else if (strcmp(v, "corrected") == 0)
            q->order = STORE_ORDER_CORRECTED;
        else
            goto bad;
        return 0;
    }
    if (strcmp(k, "format") == 0) {
        if (strcmp(v, "json") == 0)
            q->format = STORE_FORMAT_JSON;
        else if (strcmp(v, "csv") == 0)
            q->format = STORE_FORMAT_CSV;
        else if (strcmp(v, "md") == 0)
            q->format = STORE_FORMAT_MD;
        else
            goto bad;
        return 0;
    }
    if (strcmp(k, "region") == 0 || strcmp(k, "cursor") == 0) {
        if (strlen(v) > WIRE_MAX_STR) {
            api_bad_param(r, k, "too long");
            return -EINVAL;
        }
        *(k[0] == 'r' ? &q->region : &q->cursor) = v;
        return 0;
    }
    if (strcmp(k, "service") == 0) {
        q->service = api_service(topo, v, r);
        return q->service ? 0 : -EINVAL;
    }
    api_bad_param(r, k, "unknown parameter (from, to, cluster, region, "
                  "service, target, kind, limit, order, cursor, format)");
    return -EINVAL;
bad:
    api_bad_param(r, k, strcmp(k, "order") == 0 ? "expected agent or "
                  "corrected" : "expected json, csv or md");
    return -EINVAL;
}

void api_timeline(struct store *st, const struct topology *topo,
                  const struct api_param *params, size_t n_params,
                  int64_t now_ms, struct reply *r)
{
    struct store_timeline_query q = {
        .from_ms = now_ms - API_DEFAULT_SPAN_MS,
        .to_ms = now_ms + 1,
        .limit = API_DEFAULT_LIMIT,
        .order = STORE_ORDER_AGENT,
        .next = r->next,
    };
    char *json = NULL;
    size_t len;
    int rc;

    for (size_t i = 0; i < n_params; i++) {
        const char *k = params[i].key, *v = params[i].value;

        if (api_param_bytes(&params[i], r) < 0)
            return;
        rc = api_common_param(k, v, &q.from_ms, &q.to_ms, &q.cluster,
                              &q.target, &q.kind, r);
        if (rc == 0)
            rc = api_timeline_param(k, v, topo, &q, r) < 0 ? -EINVAL : 1;
        if (rc < 0)
            return;
    }
    if (q.from_ms >= q.to_ms) {
        api_bad_param(r, "from", "must be before to");
        return;
    }
    if (q.target && q.service) {
        api_bad_param(r, "service", "give either target or service");
        return;
    }
    if (api_names_known(st, q.cluster, q.target, q.kind, r) < 0)
        return;
    rc = store_timeline(st, &q, &json, &len);
    if (rc == -EINVAL) {
        api_bad_param(r, "cursor", q.order == STORE_ORDER_CORRECTED
                      ? "not a cursor of this timeline in order=corrected"
                      : "not a cursor of this timeline in order=agent");
        return;
    }
    api_answer(st, r, rc, json, len);
    if (rc == 0 && q.format != STORE_FORMAT_JSON)
        r->content_type = table_content_type(
            q.format == STORE_FORMAT_MD ? TABLE_MD : TABLE_CSV);
}

/* The targets a latency query of @sv (and @region, NULL: every region)
 * merges, into *out (caller frees) and *n: 0, or -EINVAL with a 400 in
 * @r (no such region), -ENOMEM with a 503. */
static int api_latency_targets(const struct topo_service *sv,
                               const char *region, const char ***out,
                               size_t *n, struct reply *r)
{
    const char **t;
    size_t total = 0, k = 0;

    if (region && api_topo_known("region", "region of that service",
                                 sv->regions, sizeof(struct topo_region),
                                 sv->n_regions, region, 400, r) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sv->n_regions; i++)
        total += sv->regions[i].n_targets;
    t = calloc(total ? total : 1, sizeof(*t));
    if (!t) {
        reply_error(r, 503, "out of memory", "retry");
        return -ENOMEM;
    }
    for (size_t i = 0; i < sv->n_regions; i++) {
        if (region && strcmp(sv->regions[i].name, region) != 0)
            continue;
        for (size_t j = 0; j < sv->regions[i].n_targets; j++)
            t[k++] = sv->regions[i].targets[j];
    }
    *out = t;
    *n = k;
    return 0;
}

/* One latency parameter but the common ones: 0, or -EINVAL with a 400. */
static int api_latency_param(const char *k, const char *v,
                             const struct topology *topo,
                             struct store_latency_query *q,
                             const struct topo_service **sv,
                             struct reply *r)
{
    if (strcmp(k, "step") == 0) {
        if (strcmp(v, "minute") == 0) {
            q->step = STORE_STEP_MINUTE;
        } else if (strcmp(v, "hour") == 0) {
            q->step = STORE_STEP_HOUR;
        } else {
            api_bad_param(r, k, "expected minute or hour");
            return -EINVAL;
        }
        return 0;
    }
    if (strcmp(k, "service") == 0) {
        *sv = api_service(topo, v, r);
        q->service = v;
        return *sv ? 0 : -EINVAL;
    }
    if (strcmp(k, "region") == 0) {
        q->region = v;
        return 0;
    }
    api_bad_param(r, k, "unknown parameter (target, service, region, "
                  "cluster, from, to, step)");
    return -EINVAL;
}

void api_latency(struct store *st, const struct topology *topo,
                 const struct api_param *params, size_t n_params,
                 int64_t now_ms, struct reply *r)
{
    struct store_latency_query q = {
        .from_ms = now_ms - API_DEFAULT_SPAN_MS,
        .to_ms = now_ms + 1,
        .step = STORE_STEP_MINUTE,
    };
    const struct topo_service *sv = NULL;
    const char **targets = NULL;
    char *json = NULL;
    size_t len;
    int rc;

    for (size_t i = 0; i < n_params; i++) {
        const char *k = params[i].key, *v = params[i].value;

        if (api_param_bytes(&params[i], r) < 0)
            return;
        rc = api_common_param(k, v, &q.from_ms, &q.to_ms, &q.cluster,
                              &q.target, NULL, r);
        if (rc == 0)
            rc = api_latency_param(k, v, topo, &q, &sv, r) < 0 ? -EINVAL
                                                                : 1;
        if (rc < 0)
            return;
    }
    if (q.region && !sv) {
        api_bad_param(r, "region", "needs service (a region is a "
                      "service's)");
        return;
    }
    if (!q.target && !sv) {
        api_bad_param(r, "target", "required (or service)");
        return;
    }
    if (q.target && sv) {
        api_bad_param(r, "service", "give either target or service");
        return;
    }
    if (q.from_ms >= q.to_ms) {
        api_bad_param(r, "from", "must be before to");
        return;
    }
    if (api_names_known(st, q.cluster, q.target, NULL, r) < 0)
        return;
    if (sv && api_latency_targets(sv, q.region, &targets, &q.n_targets,
                                  r) < 0)
        return;
    q.targets = targets;
    rc = store_latency(st, &q, &json, &len);
    free(targets);
    if (rc == -E2BIG) {
        api_bad_param(r, "from", "range over 20000 steps: use step=hour or "
                      "a shorter range");
        return;
    }
    api_answer(st, r, rc, json, len);
}
