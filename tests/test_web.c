/* test_web.c -- the dashboard's table as built (sorted, every asset
 * gunzips to its length and ETag, index.html names this build's assets
 * and is also served as /index.html),
 * web_reply's answers to good and bad paths, If-None-Match matching,
 * Accept-Encoding reading and reply_gzip's output. The HTTP side is
 * tests/collector_web.sh and collector_api_gzip.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "web.h"

static void reply_free(struct reply *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static void test_table_is_sorted_and_every_asset_inflates_to_its_etag(
    void **state)
{
    struct reply r = { 0 };
    char url[256], etag[WEB_ETAG_LEN];

    (void)state;
    assert_true(web_n_assets >= 4);
    assert_int_equal(strlen(web_build_id), 16);
    for (size_t i = 0; i < web_n_assets; i++) {
        const struct web_asset *a = &web_assets[i];

        if (i > 0)
            assert_true(strcmp(web_assets[i - 1].path, a->path) < 0);
        assert_ptr_equal(web_lookup(a->path), a);
        if (strcmp(a->path, WEB_INDEX) == 0)
            snprintf(url, sizeof(url), "/");
        else
            snprintf(url, sizeof(url), "/assets/%s/%s", web_build_id,
                     a->path);
        web_reply(url, NULL, "identity", &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, a->raw_len);
        assert_null(r.encoding);
        web_etag(r.body, r.len, etag);
        assert_string_equal(etag, a->etag);
        assert_string_equal(r.etag, a->etag);
        reply_free(&r);
    }
    assert_non_null(web_lookup("vendor/uPlot.esm.js"));
    assert_non_null(web_lookup("vendor/uPlot.min.css"));
    assert_null(web_lookup("nope.js"));
}

static void test_index_names_this_builds_assets(void **state)
{
    struct reply r = { 0 };
    char base[64], *html;

    (void)state;
    web_reply("/", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.cache_control, "no-cache");
    html = calloc(1, r.len + 1);
    assert_non_null(html);
    memcpy(html, r.body, r.len);
    snprintf(base, sizeof(base), "\"/assets/%s/app.js\"", web_build_id);
    assert_non_null(strstr(html, base));
    assert_null(strstr(html, "__ASSETS__"));
    free(html);
    reply_free(&r);
    /* The name people type: the same page, cached the same way. */
    web_reply("/index.html", NULL, "identity", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.cache_control, "no-cache");
    assert_string_equal(r.etag, web_lookup(WEB_INDEX)->etag);
    reply_free(&r);
}

static void test_gzip_and_304_replies(void **state)
{
    const struct web_asset *a = web_lookup("app.js");
    struct reply r = { 0 };
    char url[128], gz[REPLY_ETAG_LEN];

    (void)state;
    assert_non_null(a);
    snprintf(url, sizeof(url), "/assets/%s/app.js", web_build_id);
    web_reply(url, "\"0000000000000000\"", "gzip", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.encoding, "gzip");
    assert_int_equal(r.len, a->gz_len);
    assert_memory_equal(r.body, a->gz, a->gz_len);
    assert_string_equal(r.cache_control,
                        "public, max-age=31536000, immutable");
    assert_int_equal(r.vary_encoding, 1);
    /* The gzip bytes are another representation: another strong ETag. */
    web_etag_gz(a->etag, gz);
    assert_int_equal(strlen(gz), strlen(a->etag) + 3);
    assert_string_equal(r.etag, gz);
    reply_free(&r);
    web_reply(url, a->etag, "gzip", &r);
    assert_int_equal(r.status, 304);
    assert_null(r.body);
    assert_null(r.content_type);
    assert_string_equal(r.etag, a->etag);
    reply_free(&r);
    web_reply(url, gz, "identity", &r);         /* either ETag: a 304 */
    assert_int_equal(r.status, 304);
    assert_null(r.body);
    assert_string_equal(r.etag, gz);
    reply_free(&r);
}

/* @url gets the API's JSON 404, with none of an asset's headers. */
static void expect_404(const char *url)
{
    struct reply r = { 0 };

    web_reply(url, NULL, "gzip", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "application/json");
    assert_null(r.cache_control);
    assert_null(r.encoding);
    assert_string_equal(r.etag, "");
    reply_free(&r);
}

static void test_bad_paths_are_404(void **state)
{
    static const char *const bad[] = {
        "", "..", "../app.js", "lib/../app.js", "./app.js", ".hidden",
        "/app.js", "lib//api.js", "app.js/", "index.html", "nope.js",
        "app.js\\", "app.js?x", "lib/%2e%2e/app.js", "APP.JS",
    };
    char url[512], longp[WEB_MAX_PATH + 8];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(url, sizeof(url), "/assets/%s/%s", web_build_id, bad[i]);
        expect_404(url);
    }
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    snprintf(url, sizeof(url), "/assets/%s/%s", web_build_id, longp);
    expect_404(url);
    /* Another build's id, a short one, none. */
    expect_404("/assets/0123456789abcdeg/app.js");
    snprintf(url, sizeof(url), "/assets/%.15s/app.js", web_build_id);
    expect_404(url);
    expect_404("/assets/app.js");
    expect_404("/assets/");
    assert_true(web_is_route("/"));
    assert_true(web_is_route("/assets/x"));
    assert_false(web_is_route("/api/v1/status"));
    assert_true(web_is_route("/index.html"));
    assert_false(web_is_route("/index.htm"));
}

/* Each case: the header's value (NULL: absent) and the answer; the
 * If-None-Match cases against the ETag "0123456789abcdef". */
struct header_case {
    const char *value;
    int want;
};

typedef int (*header_fn)(const char *value);

static void run_cases(header_fn fn, const struct header_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fn(c[i].value), c[i].want);
}

static int inm_matches(const char *value)
{
    return web_etag_match(value, "\"0123456789abcdef\"");
}

static void test_if_none_match_lists_weak_tags_and_star(void **state)
{
    static const struct header_case cases[] = {
        { "\"0123456789abcdef\"", 1 },
        { "W/\"0123456789abcdef\"", 1 },
        { "\"x\", W/\"y\" ,\"0123456789abcdef\"", 1 },
        { " * ", 1 },
        { NULL, 0 },
        { "", 0 },
        { "0123456789abcdef", 0 },
        { "\"0123456789abcde\"", 0 },
        { "\"0123456789abcdef", 0 },
        { "*, \"x\"", 0 },
        { "\"0123456789abcdef0\"", 0 },
        { "junk, W/", 0 },
    };

    (void)state;
    run_cases(inm_matches, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_accept_encoding_q_values(void **state)
{
    static const struct header_case cases[] = {
        { "gzip", 1 },
        { "deflate, gzip;q=1.0, br", 1 },
        { "x-gzip", 1 },
        { "GZip ; q=0.001", 1 },
        { "*", 1 },
        { "br;q=0, *;q=0.5", 1 },
        { NULL, 0 },
        { "", 0 },
        { "identity", 0 },
        { "gzip;q=0", 0 },
        { "gzip; q=0.000 , *", 0 },
        { "*;q=0", 0 },
        { "gzip;q=0.0000", 0 },
        { "gzip;q=2", 0 },
        { "gzip;q=", 0 },
        { "gzipx, xgzip, gzi", 0 },
        { ",,, ;;q=1", 0 },
    };

    (void)state;
    run_cases(web_accepts_gzip, cases, sizeof(cases) / sizeof(cases[0]));
}

/* @gz (@n bytes) gunzipped must be exactly @want (@want_len bytes). */
static void assert_gunzips_to(const uint8_t *gz, size_t n, const char *want,
                              size_t want_len)
{
    uint8_t out[8192];
    z_stream z;

    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (uint8_t *)gz;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = sizeof(out);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.avail_in, 0);            /* nothing after it */
    assert_int_equal(z.total_out, want_len);
    assert_memory_equal(out, want, want_len);
    inflateEnd(&z);
}

static void test_reply_gzip_gunzips_to_the_body(void **state)
{
    struct reply r = { 0 };
    char body[6000];
    size_t n = 0;

    (void)state;
    while (n + 40 < sizeof(body))
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "{\"seq\":%zu,\"kind\":\"probe\"},", n);
    r.status = 200;
    r.content_type = "application/json";
    r.body = malloc(n);
    assert_non_null(r.body);
    memcpy(r.body, body, n);
    r.len = n;
    assert_int_equal(reply_gzip(&r, 1), 0);
    assert_string_equal(r.encoding, "gzip");
    assert_true(r.len < n / 2);
    assert_int_equal(r.body[0], 0x1f);         /* the gzip magic */
    assert_int_equal(r.body[1], 0x8b);
    assert_gunzips_to(r.body, r.len, body, n);
    assert_string_equal(r.content_type, "application/json");
    reply_free(&r);
    /* An empty body is a valid gzip of nothing. */
    assert_int_equal(reply_gzip(&r, 6), 0);
    assert_gunzips_to(r.body, r.len, "", 0);
    reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_table_is_sorted_and_every_asset_inflates_to_its_etag),
        cmocka_unit_test(test_index_names_this_builds_assets),
        cmocka_unit_test(test_gzip_and_304_replies),
        cmocka_unit_test(test_bad_paths_are_404),
        cmocka_unit_test(test_if_none_match_lists_weak_tags_and_star),
        cmocka_unit_test(test_accept_encoding_q_values),
        cmocka_unit_test(test_reply_gzip_gunzips_to_the_body),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
