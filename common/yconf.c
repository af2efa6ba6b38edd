/* yconf.c -- load a YAML file with libyaml and read typed values from it.
 * Does not know any schema: agent/config.c and collector/config.c do. */
#include "yconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define YCONF_MAX_FILE (1u << 20)   /* a config larger than 1 MiB is a mistake */

int yconf_line(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 1;
}

int yconf_fail(struct yconf *yc, const yaml_node_t *at, const char *ctx,
               const char *key, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (key && ctx && ctx[0])
        snprintf(yc->err, sizeof(yc->err), "%s:%d: %s.%s: %s", yc->path,
                 yconf_line(at), ctx, key, msg);
    else if (key || (ctx && ctx[0]))
        snprintf(yc->err, sizeof(yc->err), "%s:%d: %s: %s", yc->path,
                 yconf_line(at), key ? key : ctx, msg);
    else
        snprintf(yc->err, sizeof(yc->err), "%s:%d: %s", yc->path,
                 yconf_line(at), msg);
    /* Messages quote the user's values and keys, which may hold line
     * breaks: the error must stay one line. */
    for (char *c = yc->err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return -EINVAL;
}

int yconf_load(struct yconf *yc, const char *path)
{
    yaml_parser_t parser;
    FILE *f;
    int rc = -EINVAL;

    memset(yc, 0, sizeof(*yc));
    yc->path = path;
    f = fopen(path, "rb");
    if (!f) {
        snprintf(yc->err, sizeof(yc->err), "%s:0: cannot open: %s", path,
                 strerror(errno));
        return -ENOENT;
    }
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)YCONF_MAX_FILE) {
        snprintf(yc->err, sizeof(yc->err), "%s:0: file larger than 1 MiB",
                 path);
        fclose(f);
        return -EFBIG;
    }
    rewind(f);
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(yc->err, sizeof(yc->err), "%s:0: out of memory", path);
        return -ENOMEM;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &yc->doc)) {
        snprintf(yc->err, sizeof(yc->err), "%s:%zu: YAML syntax: %s", path,
                 parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unknown error");
        goto out;
    }
    yc->loaded = 1;
    rc = 0;
out:
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

void yconf_free(struct yconf *yc)
{
    if (yc->loaded)
        yaml_document_delete(&yc->doc);
    yc->loaded = 0;
}

yaml_node_t *yconf_root(struct yconf *yc)
{
    yaml_node_t *root = yc->loaded ? yaml_document_get_root_node(&yc->doc)
                                   : NULL;

    if (!root) {
        yconf_fail(yc, NULL, NULL, NULL, "empty configuration");
        return NULL;
    }
    if (root->type != YAML_MAPPING_NODE) {
        yconf_fail(yc, root, NULL, NULL, "top level must be a mapping");
        return NULL;
    }
    return root;
}

static const char *yconf_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                            : NULL;
}

int yconf_check_keys(struct yconf *yc, yaml_node_t *map, const char *ctx,
                     const char *const *allowed)
{
    yaml_node_pair_t *p, *q;

    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&yc->doc, p->key);
        const char *ks = yconf_scalar(k);
        size_t i;

        if (!ks)
            return yconf_fail(yc, k, ctx, NULL, "keys must be plain strings");
        for (i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], ks) == 0)
                break;
        if (!allowed[i])
            return yconf_fail(yc, k, ctx, ks, "unknown key");
        for (q = map->data.mapping.pairs.start; q < p; q++) {
            const char *qs = yconf_scalar(
                yaml_document_get_node(&yc->doc, q->key));
            if (qs && strcmp(qs, ks) == 0)
                return yconf_fail(yc, k, ctx, ks, "key given twice");
        }
    }
    return 0;
}

yaml_node_t *yconf_find(struct yconf *yc, yaml_node_t *map, const char *key)
{
    yaml_node_pair_t *p;

    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *ks = yconf_scalar(yaml_document_get_node(&yc->doc,
                                                             p->key));
        if (ks && strcmp(ks, key) == 0)
            return yaml_document_get_node(&yc->doc, p->value);
    }
    return NULL;
}

/* Finds @key's scalar value: 0 and *val, 1 if absent and optional, or an
 * error for a missing required key or a non-scalar value. */
static int yconf_get_scalar(struct yconf *yc, yaml_node_t *map,
                            const char *ctx, const char *key, int required,
                            yaml_node_t **node, const char **val)
{
    yaml_node_t *n = yconf_find(yc, map, key);
    const char *s;

    if (!n) {
        if (required)
            return yconf_fail(yc, map, ctx, key, "required key is missing");
        return 1;
    }
    s = yconf_scalar(n);
    if (!s)
        return yconf_fail(yc, n, ctx, key, "expected a scalar value");
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0))
        return yconf_fail(yc, n, ctx, key, "value is empty");
    *node = n;
    *val = s;
    return 0;
}

int yconf_str(struct yconf *yc, yaml_node_t *map, const char *ctx,
              const char *key, int required, char **out)
{
    yaml_node_t *n;
    const char *s;
    char *dup;
    int rc = yconf_get_scalar(yc, map, ctx, key, required, &n, &s);

    if (rc)
        return rc;
    if (strlen(s) != n->data.scalar.length)
        return yconf_fail(yc, n, ctx, key, "string contains a NUL byte");
    dup = strdup(s);
    if (!dup)
        return yconf_fail(yc, n, ctx, key, "out of memory");
    *out = dup;
    return 0;
}

/* Parses a decimal integer with an optional unit suffix from @units. */
static int yconf_parse_scaled(const char *s, const char *const *units,
                              const long long *mult, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    if (*end == '\0') {
        if (v > __LONG_LONG_MAX__ / mult[0])
            return -1;
        *out = v * mult[0];
        return 0;
    }
    for (size_t i = 1; units[i]; i++) {
        if (strcmp(end, units[i]) == 0) {
            if (v > __LONG_LONG_MAX__ / mult[i])
                return -1;
            *out = v * mult[i];
            return 0;
        }
    }
    return -1;
}

int yconf_int(struct yconf *yc, yaml_node_t *map, const char *ctx,
              const char *key, int required, long long min, long long max,
              long long *out)
{
    yaml_node_t *n;
    const char *s;
    char *end;
    long long v;
    int rc = yconf_get_scalar(yc, map, ctx, key, required, &n, &s);

    if (rc)
        return rc;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return yconf_fail(yc, n, ctx, key, "expected an integer, got \"%s\"",
                          s);
    if (v < min || v > max)
        return yconf_fail(yc, n, ctx, key, "must be between %lld and %lld",
                          min, max);
    *out = v;
    return 0;
}

int yconf_bool(struct yconf *yc, yaml_node_t *map, const char *ctx,
               const char *key, int required, int *out)
{
    yaml_node_t *n;
    const char *s;
    int rc = yconf_get_scalar(yc, map, ctx, key, required, &n, &s);

    if (rc)
        return rc;
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 ||
        strcmp(s, "on") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
             strcmp(s, "off") == 0)
        *out = 0;
    else
        return yconf_fail(yc, n, ctx, key, "expected true or false, got \"%s\"",
                          s);
    return 0;
}

int yconf_duration_ms(struct yconf *yc, yaml_node_t *map, const char *ctx,
                      const char *key, int required, long long min_ms,
                      long long max_ms, long long *out)
{
    static const char *const units[] = { "", "ms", "s", "m", "h", "d",
                                         NULL };
    static const long long mult[] = { 1000, 1, 1000, 60000, 3600000,
                                      86400000 };
    yaml_node_t *n;
    const char *s;
    long long v;
    int rc = yconf_get_scalar(yc, map, ctx, key, required, &n, &s);

    if (rc)
        return rc;
    if (yconf_parse_scaled(s, units, mult, &v) < 0)
        return yconf_fail(yc, n, ctx, key,
                          "expected a duration such as 500ms, 10s or 2m, "
                          "got \"%s\"", s);
    if (v < min_ms || v > max_ms)
        return yconf_fail(yc, n, ctx, key,
                          "must be between %lldms and %lldms", min_ms, max_ms);
    *out = v;
    return 0;
}

int yconf_size(struct yconf *yc, yaml_node_t *map, const char *ctx,
               const char *key, int required, long long min, long long max,
               long long *out)
{
    static const char *const units[] = { "", "B", "KiB", "MiB", "GiB", NULL };
    static const long long mult[] = { 1, 1, 1LL << 10, 1LL << 20, 1LL << 30 };
    yaml_node_t *n;
    const char *s;
    long long v;
    int rc = yconf_get_scalar(yc, map, ctx, key, required, &n, &s);

    if (rc)
        return rc;
    if (yconf_parse_scaled(s, units, mult, &v) < 0)
        return yconf_fail(yc, n, ctx, key,
                          "expected a size such as 512KiB or 64MiB, got \"%s\"",
                          s);
    if (v < min || v > max)
        return yconf_fail(yc, n, ctx, key, "must be between %lld and %lld bytes",
                          min, max);
    *out = v;
    return 0;
}

static int yconf_get_node(struct yconf *yc, yaml_node_t *map, const char *ctx,
                          const char *key, int required, yaml_node_type_t t,
                          const char *what, yaml_node_t **out)
{
    yaml_node_t *n = yconf_find(yc, map, key);

    if (!n) {
        if (required)
            return yconf_fail(yc, map, ctx, key, "required key is missing");
        return 1;
    }
    if (n->type != t)
        return yconf_fail(yc, n, ctx, key, "expected a %s", what);
    *out = n;
    return 0;
}

int yconf_seq(struct yconf *yc, yaml_node_t *map, const char *ctx,
              const char *key, int required, yaml_node_t **out)
{
    return yconf_get_node(yc, map, ctx, key, required, YAML_SEQUENCE_NODE,
                          "list", out);
}

int yconf_map(struct yconf *yc, yaml_node_t *map, const char *ctx,
              const char *key, int required, yaml_node_t **out)
{
    return yconf_get_node(yc, map, ctx, key, required, YAML_MAPPING_NODE,
                          "mapping", out);
}

int yconf_list(struct yconf *yc, yaml_node_t *map, const char *ctx,
               const char *key, int required, yaml_node_t **out, size_t *n)
{
    yaml_node_t *seq = NULL;
    int rc = yconf_seq(yc, map, ctx, key, required, &seq);

    if (rc)
        return rc;
    if (yconf_seq_len(seq) == 0)
        return yconf_fail(yc, seq, ctx, key, "list is empty");
    *out = seq;
    *n = yconf_seq_len(seq);
    return 0;
}

void *yconf_array(const struct yconf_item *it, void *arr, size_t size)
{
    return it->i == 0 ? calloc(it->n, size) : arr;
}

int yconf_each(struct yconf *yc, yaml_node_t *map, const char *ctx,
               const char *key, int required, enum yconf_items kind,
               yconf_item_fn fn, void *arg)
{
    struct yconf_item it = { .up = ctx, .key = key };
    char path[128];
    int rc = yconf_list(yc, map, ctx, key, required, &it.list, &it.n);

    if (rc)
        return rc;
    it.ctx = path;
    for (it.i = 0; it.i < it.n; it.i++) {
        it.node = yconf_seq_item(yc, it.list, it.i);
        if (ctx && ctx[0])
            snprintf(path, sizeof(path), "%s.%s[%zu]", ctx, key, it.i);
        else
            snprintf(path, sizeof(path), "%s[%zu]", key, it.i);
        if (kind == YCONF_ITEMS_MAPPINGS &&
            (!it.node || it.node->type != YAML_MAPPING_NODE))
            return yconf_fail(yc, it.node, path, NULL, "expected a mapping");
        if (kind == YCONF_ITEMS_SCALARS &&
            (!it.node || it.node->type != YAML_SCALAR_NODE))
            return yconf_fail(yc, it.node, path, NULL,
                              "expected a scalar value");
        rc = fn(yc, &it, arg);
        if (rc < 0)
            return rc;
    }
    return 0;
}

size_t yconf_seq_len(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top -
                    seq->data.sequence.items.start);
}

yaml_node_t *yconf_seq_item(struct yconf *yc, yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(&yc->doc, seq->data.sequence.items.start[i]);
}

struct yconf_text {
    char *buf;
    size_t len, cap;
};

static int yconf_text_add(struct yconf_text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 256;
        char *nb;

        while (ncap < t->len + n + 1)
            ncap *= 2;
        nb = realloc(t->buf, ncap);
        if (!nb)
            return -ENOMEM;
        t->buf = nb;
        t->cap = ncap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return 0;
}

/* Scalars are written with their length first, so no value can be
 * mistaken for punctuation and no escaping is needed. */
static int yconf_text_node(struct yconf *yc, const yaml_node_t *n,
                           struct yconf_text *t, int depth)
{
    char head[32];
    int rc = 0;

    if (depth > 32)
        return -ELOOP;
    if (!n)
        return yconf_text_add(t, "~", 1);
    switch (n->type) {
    case YAML_SCALAR_NODE:
        snprintf(head, sizeof(head), "%zu:", n->data.scalar.length);
        rc = yconf_text_add(t, head, strlen(head));
        if (rc == 0)
            rc = yconf_text_add(t, (const char *)n->data.scalar.value,
                                n->data.scalar.length);
        return rc;
    case YAML_SEQUENCE_NODE:
        rc = yconf_text_add(t, "[", 1);
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             rc == 0 && i < n->data.sequence.items.top; i++)
            rc = yconf_text_node(yc, yaml_document_get_node(&yc->doc, *i), t,
                                 depth + 1);
        return rc ? rc : yconf_text_add(t, "]", 1);
    case YAML_MAPPING_NODE:
        rc = yconf_text_add(t, "{", 1);
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             rc == 0 && p < n->data.mapping.pairs.top; p++) {
            rc = yconf_text_node(yc, yaml_document_get_node(&yc->doc, p->key),
                                 t, depth + 1);
            if (rc == 0)
                rc = yconf_text_node(yc,
                                     yaml_document_get_node(&yc->doc,
                                                            p->value),
                                     t, depth + 1);
        }
        return rc ? rc : yconf_text_add(t, "}", 1);
    default:
        return yconf_text_add(t, "~", 1);
    }
}

int yconf_node_text(struct yconf *yc, const yaml_node_t *n, char **out)
{
    struct yconf_text t = { NULL, 0, 0 };
    int rc = yconf_text_node(yc, n, &t, 0);

    if (rc < 0) {
        free(t.buf);
        return rc;
    }
    if (!t.buf)
        return -ENOMEM;
    *out = t.buf;
    return 0;
}
