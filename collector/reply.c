/* reply.c -- the JSON error body every handler uses. */
#include "reply.h"

#include "jsonw.h"

#define REPLY_ERR_BYTES 4096u

void reply_error(struct reply *r, unsigned status, const char *error,
                 const char *detail)
{
    struct jsonw w;

    jsonw_init(&w, REPLY_ERR_BYTES);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "error");
    jsonw_str(&w, error);
    jsonw_key(&w, "detail");
    jsonw_str(&w, detail);
    jsonw_obj_end(&w);
    r->status = status;
    r->content_type = "application/json";
    r->body = (uint8_t *)jsonw_take(&w, &r->len);
    if (!r->body)
        r->len = 0;
}
