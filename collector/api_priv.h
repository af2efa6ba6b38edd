/* api_priv.h -- what the files of the query API share: the parameter
 * checks and the store-error replies of api.c, used by api_incidents.c
 * (incidents, exports, annotations) and api_services.c (status,
 * services). Not for use outside api*.c: api.h is the public face. */
#ifndef SEXTANT_API_PRIV_H
#define SEXTANT_API_PRIV_H

#include <stddef.h>

#include "api.h"

/* A 400 "bad parameter" naming @key and saying @why. */
void api_bad_param(struct reply *r, const char *key, const char *why);
/* A key or value with a NUL (%00) or bytes that are not UTF-8 is
 * refused whole: 0, or -EINVAL with a 400 in @r. */
int api_param_bytes(const struct api_param *p, struct reply *r);
/* limit=@v, 1 to @max: 0 and *out, or -EINVAL with a 400 in @r. */
int api_limit(const char *k, const char *v, unsigned max, unsigned *out,
              struct reply *r);
/* A query the store answered (@rc 0: takes @json) as a 200 JSON reply,
 * or its error as 503 (500 when the file is damaged). */
void api_answer(struct store *st, struct reply *r, int rc, char *json,
                size_t len);
/* 0 if @name is one of @topo's services (NULL: none configured); else
 * -ENOENT with a reply in @r of @status (404 for a path, 400 for a
 * parameter or field @key), naming the close ones. */
int api_service_known(const struct topology *topo, const char *key,
                      const char *name, unsigned status, struct reply *r);

#endif
