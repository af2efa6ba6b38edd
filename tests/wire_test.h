/* wire_test.h -- the batch both wire unit tests build on (test_wire.c,
 * test_wire_validate.c): one event of every kind, all in caller storage,
 * valid as it stands. Include after <cmocka.h>. */
#ifndef SEXTANT_WIRE_TEST_H
#define SEXTANT_WIRE_TEST_H

#include "wire.h"

#define T0 1700000000000LL      /* 2023-11-14, inside the sane range */

/* A batch holding one event of every kind, all in caller storage. */
struct fixture {
    Sextant__V1__Batch b;
    Sextant__V1__Drops drops;
    Sextant__V1__Event ev[6];
    Sextant__V1__Event *evp[6];
    Sextant__V1__ProbeResult probe;
    Sextant__V1__Timings timings;
    Sextant__V1__StateChange state;
    Sextant__V1__DnsChange dns;
    Sextant__V1__DnsAnswer ans[3];
    Sextant__V1__DnsAnswer *old_ans[1];
    Sextant__V1__DnsAnswer *new_ans[2];
    Sextant__V1__MetricSample metric;
    Sextant__V1__Label label[2];
    Sextant__V1__Label *labelp[2];
    Sextant__V1__Failover failover;
    Sextant__V1__Lifecycle life;
};

enum { EV_PROBE, EV_STATE, EV_DNS, EV_METRIC, EV_FAILOVER, EV_LIFE };

/* Fills @f with the valid batch; its pointers point into @f. */
void fixture_init(struct fixture *f);

#endif
