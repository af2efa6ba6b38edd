/* yconf.h -- typed reads from a YAML config file (libyaml's document API),
 * with errors that name the file, the line and the key, as one line.
 *
 * Every getter takes @ctx, the path of @map in the file ("targets[2]", or
 * "" at the top), so an error reads "agent.yaml:14: targets[2].url: ...".
 * Getters return 0 when the key was read, 1 when it is absent and not
 * required (the out-parameter is untouched) and -EINVAL on error, with the
 * message in yc->err. Strings handed out are copies the caller frees. */
#ifndef SEXTANT_YCONF_H
#define SEXTANT_YCONF_H

#include <stddef.h>
#include <yaml.h>

struct yconf {
    yaml_document_t doc;
    int loaded;             /* doc must be deleted */
    const char *path;       /* borrowed from yconf_load's caller */
    char err[512];          /* the one-line error, "" when none */
};

int yconf_load(struct yconf *yc, const char *path);
void yconf_free(struct yconf *yc);
/* The top-level mapping; sets the error and returns NULL if it is not one. */
yaml_node_t *yconf_root(struct yconf *yc);

/* Formats "path:line: ctx.key: message" into yc->err; returns -EINVAL. */
int yconf_fail(struct yconf *yc, const yaml_node_t *at, const char *ctx,
               const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Fails on any key of @map not in the NULL-terminated @allowed, and on a
 * key given twice. */
int yconf_check_keys(struct yconf *yc, yaml_node_t *map, const char *ctx,
                     const char *const *allowed);

yaml_node_t *yconf_find(struct yconf *yc, yaml_node_t *map, const char *key);

int yconf_str(struct yconf *yc, yaml_node_t *map, const char *ctx,
              const char *key, int required, char **out);
int yconf_int(struct yconf *yc, yaml_node_t *map, const char *ctx,
              const char *key, int required, long long min, long long max,
              long long *out);
int yconf_bool(struct yconf *yc, yaml_node_t *map, const char *ctx,
               const char *key, int required, int *out);
/* "250ms", "10s", "2m", "1h", "14d" or a bare number of seconds. */
int yconf_duration_ms(struct yconf *yc, yaml_node_t *map, const char *ctx,
                      const char *key, int required, long long min_ms,
                      long long max_ms, long long *out);
/* "512KiB", "64MiB", "1GiB" or a bare number of bytes. */
int yconf_size(struct yconf *yc, yaml_node_t *map, const char *ctx,
               const char *key, int required, long long min, long long max,
               long long *out);
/* The value must be a sequence / a mapping; *out is the node. */
int yconf_seq(struct yconf *yc, yaml_node_t *map, const char *ctx,
              const char *key, int required, yaml_node_t **out);
int yconf_map(struct yconf *yc, yaml_node_t *map, const char *ctx,
              const char *key, int required, yaml_node_t **out);

/* What yconf_each() hands its callback for one item of a list. */
struct yconf_item {
    yaml_node_t *node;      /* the item (a mapping or scalar, as asked) */
    yaml_node_t *list;      /* the whole list, for errors about it: */
    const char *up, *key;   /* yconf_fail(yc, it->list, it->up, it->key) */
    const char *ctx;        /* its path: "targets[2]" or "t[0].codes[1]" */
    size_t i;               /* its index */
    size_t n;               /* the list's length, so item 0 can allocate */
};

/* Called per item, in order. Returns 0 to go on, or a negative errno (with
 * yconf_fail() for a config error) to stop the walk there. */
typedef int (*yconf_item_fn)(struct yconf *yc, const struct yconf_item *it,
                             void *arg);

/* For a callback filling an array, one element per item: at item 0 a
 * zeroed array of it->n elements of @size (the caller frees it), at the
 * others @arr as it is. NULL: out of memory. */
void *yconf_array(const struct yconf_item *it, void *arr, size_t size);

/* The kind every item must be; a wrong item fails at its own line. */
enum yconf_items {
    YCONF_ITEMS_ANY,        /* the callback judges */
    YCONF_ITEMS_MAPPINGS,   /* "expected a mapping" */
    YCONF_ITEMS_SCALARS,    /* "expected a scalar value" */
};

/* The one list walker: finds list @key of @map, checks it is a non-empty
 * list of @kind and calls @fn for each item with its path. Returns 1 when
 * @key is absent and not @required, 0 when @fn took every item, else the
 * first error (yc->err names the file, the line and the item's path: the
 * callers' main exits 2 with it). */
int yconf_each(struct yconf *yc, yaml_node_t *map, const char *ctx,
               const char *key, int required, enum yconf_items kind,
               yconf_item_fn fn, void *arg);

/* Like yconf_seq(), but an empty list is an error too; *n gets its
 * length. */
int yconf_list(struct yconf *yc, yaml_node_t *map, const char *ctx,
               const char *key, int required, yaml_node_t **out, size_t *n);
size_t yconf_seq_len(const yaml_node_t *seq);
yaml_node_t *yconf_seq_item(struct yconf *yc, yaml_node_t *seq, size_t i);
/* A canonical one-line text of @n and everything under it (scalars
 * quoted, mappings in file order), for telling whether a piece of config
 * changed. Caller frees *out. -ENOMEM, or -ELOOP past 32 levels. */
int yconf_node_text(struct yconf *yc, const yaml_node_t *n, char **out);

/* Line (1-based) where @n starts. */
int yconf_line(const yaml_node_t *n);

#endif
