/* api_incidents.c -- /api/v1/incidents, an incident, its export and POST
 * /api/v1/annotations: parameter and body checks, then the store's query
 * (store_incident.c) or export.c's rendering. Bodies are parsed with
 * json-c; nothing here knows libmicrohttpd. */
#include "api_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "util.h"

#define API_INCIDENTS_LIMIT 100u    /* default page of the list */
#define API_ID_DIGITS       18u     /* an id fits an int64 */

void api_incidents(struct store *st, const struct topology *topo,
                   const struct api_param *params, size_t n_params,
                   struct reply *r)
{
    struct store_incident_query q = {
        .open = -1,
        .limit = API_INCIDENTS_LIMIT,
    };
    char *json = NULL;
    size_t len;
    int rc;

    for (size_t i = 0; i < n_params; i++) {
        const char *k = params[i].key, *v = params[i].value;

        if (api_param_bytes(&params[i], r) < 0)
            return;
        if (!v || !v[0]) {
            api_bad_param(r, k, "needs a value");
            return;
        }
        if (strcmp(k, "service") == 0) {
            q.service = v;
        } else if (strcmp(k, "open") == 0) {
            if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
                api_bad_param(r, k, "expected true or false");
                return;
            }
            q.open = v[0] == 't';
        } else if (strcmp(k, "from") == 0 || strcmp(k, "to") == 0) {
            if (api_parse_time(v, k[0] == 'f' ? &q.from_ms : &q.to_ms) < 0) {
                api_bad_param(r, k, "expected Unix milliseconds or "
                              "RFC 3339 UTC such as 2026-11-25T17:00:00Z");
                return;
            }
        } else if (strcmp(k, "limit") == 0) {
            if (api_limit(k, v, STORE_INCIDENTS_MAX_LIMIT, &q.limit, r) < 0)
                return;
        } else {
            api_bad_param(r, k, "unknown parameter (service, open, from, "
                          "to, limit)");
            return;
        }
    }
    if (q.to_ms && q.from_ms >= q.to_ms) {
        api_bad_param(r, "from", "must be before to");
        return;
    }
    if (q.service && api_service_known(topo, "service", q.service, 400,
                                       r) < 0)
        return;
    rc = store_incidents(st, &q, &json, &len);
    api_answer(st, r, rc, json, len);
}

/* The path's id: 0 and *out, or -EINVAL with a 400 in @r. */
static int api_incident_id(const char *s, int64_t *out, struct reply *r)
{
    size_t n = strspn(s, "0123456789");
    long long id;

    if (n == 0 || s[n] || n > API_ID_DIGITS || s[0] == '0') {
        reply_error(r, 400, "bad parameter", "id: expected a positive "
                    "integer, as the incidents list gives");
        return -EINVAL;
    }
    id = strtoll(s, NULL, 10);
    *out = id;
    return 0;
}

/* Fetches incident @s: 0 with *json; or a reply in @r (400, 404, 503). */
static int api_incident_get(struct store *st, const char *s, char **json,
                            size_t *len, struct reply *r)
{
    char detail[64];
    int64_t id;
    int rc;

    if (api_incident_id(s, &id, r) < 0)
        return -EINVAL;
    rc = store_incident(st, id, json, len);
    if (rc == -ENOENT) {
        snprintf(detail, sizeof(detail), "no incident %" PRId64, id);
        reply_error(r, 404, "not found", detail);
    } else if (rc < 0) {
        api_answer(st, r, rc, NULL, 0);
    }
    return rc;
}

void api_incident(struct store *st, const char *id,
                  const struct api_param *params, size_t n_params,
                  struct reply *r)
{
    char *json = NULL;
    size_t len;

    if (n_params > 0) {
        if (api_param_bytes(&params[0], r) == 0)
            api_bad_param(r, params[0].key, "unknown parameter (none)");
        return;
    }
    if (api_incident_get(st, id, &json, &len, r) == 0)
        api_answer(st, r, 0, json, len);
}

void api_incident_export(struct store *st, const char *id,
                         const struct api_param *params, size_t n_params,
                         struct reply *r)
{
    enum export_format f = EXPORT_MD;
    char *json = NULL, *text = NULL;
    size_t len, text_len;
    int rc;

    for (size_t i = 0; i < n_params; i++) {
        const char *k = params[i].key, *v = params[i].value;

        if (api_param_bytes(&params[i], r) < 0)
            return;
        if (strcmp(k, "format") != 0) {
            api_bad_param(r, k, "unknown parameter (format)");
            return;
        }
        if (!v || export_format_parse(v, &f) < 0) {
            api_bad_param(r, k, "expected md, csv or json");
            return;
        }
    }
    if (api_incident_get(st, id, &json, &len, r) < 0)
        return;
    rc = export_incident(json, len, f, &text, &text_len);
    free(json);
    if (rc < 0) {
        reply_error(r, 500, "internal error", rc == -EINVAL
                    ? "the store's incident JSON is not one"
                    : "cannot render the export");
        return;
    }
    r->status = 200;
    r->content_type = export_content_type(f);
    r->body = (uint8_t *)text;
    r->len = text_len;
    snprintf(r->attachment, sizeof(r->attachment), "incident-%s.%s", id,
             export_extension(f));
}

/* The checked fields of an annotation. */
struct api_note {
    const char *text;
    int64_t time_ms;
    const char *service;        /* NULL: none */
    int64_t incident;           /* 0: none */
};

/* What is wrong with annotation text @s (@n bytes), or NULL. */
static const char *api_note_text_wrong(const char *s, size_t n)
{
    size_t k;

    if (n == 0)
        return "must not be empty";
    for (size_t i = 0; i < n; i += k) {
        k = util_utf8_char((const unsigned char *)s + i, n - i, NULL);
        if (k == 0)
            return "is not valid UTF-8";
        if (s[i] == '\0')
            return "holds a NUL character";
    }
    return NULL;
}

/* Checks one member of the body into @note: 0, or -EINVAL with a 400
 * naming it in @r. */
static int api_note_field(const struct topology *topo, const char *key,
                          struct json_object *v, struct api_note *note,
                          struct reply *r)
{
    enum json_type t = json_object_get_type(v);
    const char *why;

    if (strcmp(key, "text") == 0) {
        if (t != json_type_string) {
            api_bad_param(r, key, "expected a string");
            return -EINVAL;
        }
        why = api_note_text_wrong(json_object_get_string(v),
                                  (size_t)json_object_get_string_len(v));
        if (!why && json_object_get_string_len(v) >
                        (int)STORE_ANNOTATION_MAX) {
            char over[32];

            snprintf(over, sizeof(over), "over %u bytes",
                     STORE_ANNOTATION_MAX);
            api_bad_param(r, key, over);
            return -EINVAL;
        }
        if (why) {
            api_bad_param(r, key, why);
            return -EINVAL;
        }
        note->text = json_object_get_string(v);
    } else if (strcmp(key, "time") == 0) {
        int64_t ms = -1;

        if (t == json_type_string &&
            api_parse_time(json_object_get_string(v), &ms) < 0)
            ms = -1;
        else if (t == json_type_int)
            ms = json_object_get_int64(v);
        if (ms < 0) {
            api_bad_param(r, key, "expected Unix milliseconds or RFC 3339 "
                          "such as 2026-11-25T17:00:00Z");
            return -EINVAL;
        }
        note->time_ms = ms;
    } else if (strcmp(key, "service") == 0) {
        if (t == json_type_null)
            return 0;
        if (t != json_type_string ||
            strlen(json_object_get_string(v)) !=
                (size_t)json_object_get_string_len(v)) {
            api_bad_param(r, key, "expected a service name or null");
            return -EINVAL;
        }
        note->service = json_object_get_string(v);
        return api_service_known(topo, key, note->service, 400, r);
    } else if (strcmp(key, "incident") == 0) {
        if (t == json_type_null)
            return 0;
        if (t != json_type_int || json_object_get_int64(v) < 1) {
            api_bad_param(r, key, "expected an incident id or null");
            return -EINVAL;
        }
        note->incident = json_object_get_int64(v);
    } else {
        api_bad_param(r, key, "unknown field (text, time, service, "
                      "incident)");
        return -EINVAL;
    }
    return 0;
}

/* Parses and checks the body into @note (strings borrowed from *@obj,
 * which the caller puts): 0, or -EINVAL with a 400 in @r. */
static int api_note_parse(const struct topology *topo, const char *body,
                          size_t len, struct json_object **obj,
                          struct api_note *note, struct reply *r)
{
    struct json_tokener *tok;
    struct json_object *o = NULL;

    if (!body || len == 0) {
        reply_error(r, 400, "bad request", "body: empty; send a JSON object "
                    "with at least \"text\"");
        return -EINVAL;
    }
    tok = json_tokener_new();
    if (!tok) {
        reply_error(r, 503, "out of memory", "try again later");
        return -ENOMEM;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, body, (int)len);
    if (!o || json_tokener_get_error(tok) != json_tokener_success ||
        tok->char_offset != (int)len) {
        json_object_put(o);
        json_tokener_free(tok);
        reply_error(r, 400, "bad request", "body: not one JSON object");
        return -EINVAL;
    }
    json_tokener_free(tok);
    *obj = o;
    if (!json_object_is_type(o, json_type_object)) {
        reply_error(r, 400, "bad request", "body: expected a JSON object");
        return -EINVAL;
    }
    json_object_object_foreach(o, key, v) {
        if (api_note_field(topo, key, v, note, r) < 0)
            return -EINVAL;
    }
    if (!note->text) {
        api_bad_param(r, "text", "required");
        return -EINVAL;
    }
    return 0;
}

void api_annotate(struct store *st, const struct topology *topo,
                  const char *body, size_t len, int64_t now_ms,
                  struct reply *r)
{
    struct api_note note = { .time_ms = now_ms };
    struct json_object *obj = NULL;
    char out[48];
    int64_t id = 0;
    int rc;

    if (api_note_parse(topo, body, len, &obj, &note, r) < 0)
        goto out;
    rc = store_annotate(st, note.time_ms, note.text, note.service,
                        note.incident, &id);
    if (rc == -ENOENT) {
        snprintf(out, sizeof(out), "no incident %" PRId64, note.incident);
        api_bad_param(r, "incident", out);
    } else if (rc == -EAGAIN) {
        reply_error(r, 503, "collector busy", "the store is migrating or "
                    "its writer queue is full; retry");
    } else if (rc == -EINVAL) {
        /* What the store checks beyond api_note_parse: the text's bytes
         * (store_annotate_check). */
        api_bad_param(r, "text", "UTF-8 of at most 4096 bytes, without "
                      "control characters but tab and newline");
    } else if (rc < 0) {
        api_answer(st, r, rc, NULL, 0);
    } else {
        snprintf(out, sizeof(out), "{\"id\":%" PRId64 "}", id);
        r->body = (uint8_t *)strdup(out);
        if (!r->body) {
            reply_error(r, 500, "internal error", "out of memory after "
                        "storing the annotation");
            goto out;
        }
        r->status = 201;
        r->content_type = "application/json";
        r->len = strlen(out);
    }
out:
    json_object_put(obj);
}
