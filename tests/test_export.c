/* test_export.c -- an incident's JSON (store.h's shape) rendered for a
 * postmortem: the Markdown summary and timeline tables, the CSV a
 * spreadsheet reads, the JSON as given, the list of incidents, and the
 * refusal of JSON that is no incident. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

/* The worked example of the design notes, T = 2026-12-04T21:00:00Z:
 * first failure T+0.46, detected T+2.63, operator failover T+2.78, DNS
 * switched first T+3.12 and all T+3.65. The timeline comes in the
 * store's order; the annotation (T+1.000) goes between by time. */
static const char incident_json[] =
    "{\"id\":7,\"service\":\"checkout\",\"pattern\":\"active-passive\","
    "\"region\":\"eu-west-1\",\"to_region\":\"us-east-1\",\"manual\":false,"
    "\"open\":false,"
    "\"times\":{\"first_failure\":{\"ms\":1796418000460,\"utc\":\"x\"},"
    "\"detected\":{\"ms\":1796418002630,\"utc\":\"x\"},"
    "\"failover_start\":{\"ms\":1796418002780,\"utc\":\"x\"},"
    "\"dns_switched_first\":{\"ms\":1796418003120,\"utc\":\"x\"},"
    "\"dns_switched_all\":{\"ms\":1796418003650,\"utc\":\"x\"},"
    "\"restored\":{\"ms\":1796418004100,\"utc\":\"x\"},"
    "\"closed\":null},"
    "\"durations_ms\":{\"time_to_detect\":2170,\"time_to_failover\":1020,"
    "\"rto\":3640,\"outage\":null},\"rpo_ms\":1500.4,"
    "\"timeline\":["
    "{\"cluster\":\"eu\",\"region\":\"eu-west-1\",\"node\":\"n1\","
    "\"kind\":\"probe\",\"target\":\"app-eu\",\"time_ms\":1796418000460,"
    "\"corrected_ms\":1796418000460,\"fields\":{\"type\":\"http\","
    "\"ok\":false,\"status\":0,\"total_us\":1500,"
    "\"error\":\"connect: refused, port 443\"}},"
    "{\"cluster\":\"us\",\"region\":\"us-east-1\",\"node\":\"n2\","
    "\"kind\":\"state\",\"target\":\"app-eu\",\"time_ms\":1796418002000,"
    "\"corrected_ms\":1796418002630,\"fields\":{\"from\":\"healthy\","
    "\"to\":\"unhealthy\",\"reason\":\"3 failures\"}},"
    "{\"cluster\":\"us\",\"region\":\"us-east-1\",\"node\":\"n2\","
    "\"kind\":\"failover\",\"target\":null,\"time_ms\":1796418002780,"
    "\"corrected_ms\":1796418002780,\"fields\":{\"kind\":\"manual\","
    "\"from\":\"eu-west-1\",\"to\":\"us-east-1\",\"text\":\"a|b\"}},"
    "{\"cluster\":\"us\",\"region\":\"us-east-1\",\"node\":\"n2\","
    "\"kind\":\"dns\",\"target\":\"app-dns\",\"time_ms\":1796418003120,"
    "\"corrected_ms\":1796418003120,\"fields\":{\"name\":\"app.test\","
    "\"old\":[{\"type\":\"A\",\"value\":\"127.0.1.1\",\"ttl\":1}],"
    "\"new\":[{\"type\":\"A\",\"value\":\"127.0.2.1\",\"ttl\":1}]}}],"
    "\"annotations\":[{\"id\":3,\"time\":{\"ms\":1796418001000,"
    "\"utc\":\"x\"},\"text\":\"paged, on it\",\"service\":\"checkout\","
    "\"incident\":7}]}";

/* The export of incident_json in @f; *@rc export_incident's status.
 * noinline: inlined into a caller, GCC 12's -O2 dangling-pointer check
 * takes the strstr()s of the result for pointers into this frame. */
static __attribute__((noinline)) char *render(enum export_format f,
                                               int *rc)
{
    char *out = NULL;
    size_t len = 0;

    *rc = export_incident(incident_json, strlen(incident_json), f, &out,
                          &len);
    if (*rc == 0)
        assert_int_equal(strlen(out), len);
    return out;
}

static void test_markdown_has_summary_and_ordered_timeline(void **state)
{
    const char *a, *b, *c, *d, *e;
    char *md;
    int rc;

    (void)state;
    md = render(EXPORT_MD, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(md, "# Incident 7: checkout, region eu-west-1"));
    assert_non_null(strstr(md, "| Field | Value |\n| --- | --- |\n"));
    assert_non_null(strstr(md, "| First failure (UTC) | "
                               "2026-12-04T21:00:00.460Z |"));
    assert_non_null(strstr(md, "| DNS switched, all agents (UTC) | "
                               "2026-12-04T21:00:03.650Z |"));
    assert_non_null(strstr(md, "| Time to detect | 2.170 s |"));
    assert_non_null(strstr(md, "| Time to fail over | 1.020 s |"));
    assert_non_null(strstr(md, "| RTO | 3.640 s |"));
    assert_non_null(strstr(md, "| RPO (estimate) | 1.500 s |"));
    assert_non_null(strstr(md, "| Closed (UTC) |  |"));
    assert_non_null(strstr(md, "## Timeline\n\n| Time (UTC) | Corrected "
                               "(UTC) | Cluster | Node | Kind | Target | "
                               "What |\n"));
    /* Ordered by corrected time, the annotation merged in. */
    a = strstr(md, "| probe | app-eu | failed, 1.500 ms: connect: "
                   "refused, port 443 |");
    b = strstr(md, "| annotation |  | paged, on it |");
    c = strstr(md, "| 2026-12-04T21:00:02.000Z | 2026-12-04T21:00:02.630Z"
                   " | us | n2 | state | app-eu | healthy -> unhealthy: 3 "
                   "failures |");
    d = strstr(md, "| failover |  | manual eu-west-1 -> us-east-1: a\\|b |");
    e = strstr(md, "| dns | app-dns | app.test: 127.0.1.1 -> 127.0.2.1 |");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    assert_non_null(e);
    assert_true(a < b && b < c && c < d && d < e);
    free(md);
}

static void test_csv_is_summary_then_blank_line_then_timeline(void **state)
{
    char *csv;
    int rc;

    (void)state;
    csv = render(EXPORT_CSV, &rc);
    assert_int_equal(rc, 0);
    assert_memory_equal(csv, "field,value\r\nid,7\r\nservice,checkout\r\n",
                        strlen("field,value\r\nid,7\r\nservice,checkout\r\n"));
    assert_non_null(strstr(csv, "\r\nrto,3.640 s\r\n"));
    assert_non_null(strstr(csv, "\r\nrpo,1.500 s\r\n\r\nTime (UTC),"
                                "Corrected (UTC),Cluster,Node,Kind,Target,"
                                "What\r\n"));
    assert_non_null(strstr(csv, ",probe,app-eu,\"failed, 1.500 ms: "
                                "connect: refused, port 443\"\r\n"));
    free(csv);
}

static void test_json_is_the_incident_as_given(void **state)
{
    char *json;
    int rc;

    (void)state;
    json = render(EXPORT_JSON, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(json, incident_json);
    free(json);
}

static void test_what_is_no_incident_is_refused(void **state)
{
    static const char *const bad[] = {
        "", "{", "[]", "{\"id\":1}", "{\"id\":1,\"service\":\"s\"}",
        "{\"id\":1,\"service\":\"s\",\"times\":{}} trailing", "null",
    };
    char *out = NULL;
    size_t len = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        for (int f = EXPORT_MD; f <= EXPORT_JSON; f++)
            assert_int_equal(export_incident(bad[i], strlen(bad[i]),
                                             (enum export_format)f, &out,
                                             &len), -EINVAL);
    assert_null(out);
}

static void test_list_is_one_row_per_incident(void **state)
{
    static const char list[] =
        "{\"incidents\":[{\"id\":2,\"service\":\"a\",\"region\":\"r1\","
        "\"to_region\":null,\"open\":true,\"times\":{\"first_failure\":"
        "{\"ms\":0,\"utc\":\"\"}},\"durations_ms\":{\"rto\":null},"
        "\"rpo_ms\":null},{\"id\":1,\"service\":\"b\",\"region\":\"r2\","
        "\"open\":false,\"times\":{},\"durations_ms\":{\"rto\":61000}}],"
        "\"count\":2,\"truncated\":false}";
    char *out = NULL;
    size_t len;

    (void)state;
    assert_int_equal(export_incident_list(list, strlen(list), EXPORT_CSV,
                                          &out, &len), 0);
    assert_string_equal(out,
        "id,service,region,to_region,open,first_failure,detected,restored,"
        "closed,time_to_detect,time_to_failover,rto,rpo\r\n"
        "2,a,r1,,yes,1970-01-01T00:00:00.000Z,,,,,,,\r\n"
        "1,b,r2,,no,,,,,,,61.000 s,\r\n");
    free(out);
    assert_int_equal(export_incident_list("{}", 2, EXPORT_MD, &out, &len),
                     -EINVAL);
}

static void test_times_and_durations_format(void **state)
{
    char buf[40];

    (void)state;
    export_utc(1796418000460, buf, sizeof(buf));
    assert_string_equal(buf, "2026-12-04T21:00:00.460Z");
    export_utc(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    export_duration(2170, buf, sizeof(buf));
    assert_string_equal(buf, "2.170 s");
    export_duration(-250, buf, sizeof(buf));
    assert_string_equal(buf, "-0.250 s");
    export_duration(INT64_MIN, buf, sizeof(buf));
    assert_string_equal(buf, "-9223372036854775.808 s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markdown_has_summary_and_ordered_timeline),
        cmocka_unit_test(test_csv_is_summary_then_blank_line_then_timeline),
        cmocka_unit_test(test_json_is_the_incident_as_given),
        cmocka_unit_test(test_what_is_no_incident_is_refused),
        cmocka_unit_test(test_list_is_one_row_per_incident),
        cmocka_unit_test(test_times_and_durations_format),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
