/* wire_test.c -- the wire unit tests' shared batch (see wire_test.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wire.h"
#include "wire_test.h"

void fixture_init(struct fixture *f)
{
    size_t i;

    memset(f, 0, sizeof(*f));
    sextant__v1__batch__init(&f->b);
    f->b.cluster = "prod-eu";
    f->b.region = "eu-west-1";
    f->b.node = "node-7";
    f->b.agent_version = "0.1.0";
    f->b.epoch = 0x8badf00ddeadbeefULL;
    f->b.first_seq = 5;
    f->b.sent_unix_ms = T0 + 100;
    f->b.prev_rtt_us = 1234;
    sextant__v1__drops__init(&f->drops);
    f->drops.count = 2;
    f->drops.first_seq = 3;
    f->drops.last_seq = 4;
    f->b.drops = &f->drops;

    for (i = 0; i < 6; i++) {
        sextant__v1__event__init(&f->ev[i]);
        f->ev[i].seq = 5 + i;
        f->ev[i].unix_ms = T0 + (int64_t)i;
        f->evp[i] = &f->ev[i];
    }
    f->b.n_events = 6;
    f->b.events = f->evp;

    sextant__v1__probe_result__init(&f->probe);
    sextant__v1__timings__init(&f->timings);
    f->probe.target = "https://api.eu.example.com/healthz";
    f->probe.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    f->probe.ok = 1;
    f->probe.status = 200;
    f->timings.dns_us = 900;
    f->timings.connect_us = 2100;
    f->timings.tls_us = 7000;
    f->timings.first_byte_us = 9000;
    f->timings.total_us = 9500;
    f->probe.timings = &f->timings;
    f->probe.served_by = "eu-west-1";
    f->probe.cert_not_after_unix_ms = T0 + 86400000LL * 60;
    f->ev[EV_PROBE].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    f->ev[EV_PROBE].probe = &f->probe;

    sextant__v1__state_change__init(&f->state);
    f->state.target = "api-eu";
    f->state.from = SEXTANT__V1__HEALTH__HEALTH_HEALTHY;
    f->state.to = SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY;
    f->state.reason = "3 consecutive failures";
    f->ev[EV_STATE].kind_case = SEXTANT__V1__EVENT__KIND_STATE;
    f->ev[EV_STATE].state = &f->state;

    for (i = 0; i < 3; i++)
        sextant__v1__dns_answer__init(&f->ans[i]);
    f->ans[0].type = "A";
    f->ans[0].value = "192.0.2.10";
    f->ans[0].ttl = 60;
    f->ans[1].type = "CNAME";
    f->ans[1].value = "api.us.example.com";
    f->ans[1].ttl = 60;
    f->ans[2].type = "AAAA";
    f->ans[2].value = "2001:db8::10";
    f->ans[2].ttl = 60;
    f->old_ans[0] = &f->ans[0];
    f->new_ans[0] = &f->ans[1];
    f->new_ans[1] = &f->ans[2];
    sextant__v1__dns_change__init(&f->dns);
    f->dns.name = "api.example.com";
    f->dns.n_old_answers = 1;
    f->dns.old_answers = f->old_ans;
    f->dns.n_new_answers = 2;
    f->dns.new_answers = f->new_ans;
    f->dns.target = "api-global";
    f->ev[EV_DNS].kind_case = SEXTANT__V1__EVENT__KIND_DNS;
    f->ev[EV_DNS].dns = &f->dns;

    for (i = 0; i < 2; i++) {
        sextant__v1__label__init(&f->label[i]);
        f->labelp[i] = &f->label[i];
    }
    f->label[0].name = "db";
    f->label[0].value = "orders";
    f->label[1].name = "role";
    f->label[1].value = "replica";
    sextant__v1__metric_sample__init(&f->metric);
    f->metric.name = "replication_lag_seconds";
    f->metric.n_labels = 2;
    f->metric.labels = f->labelp;
    f->metric.value = 0.25;
    f->metric.target = "pg-eu";
    f->ev[EV_METRIC].kind_case = SEXTANT__V1__EVENT__KIND_METRIC;
    f->ev[EV_METRIC].metric = &f->metric;

    sextant__v1__failover__init(&f->failover);
    f->failover.kind = "failover";
    f->failover.from_region = "eu-west-1";
    f->failover.to_region = "us-east-1";
    f->failover.text = "Route 53 flipped api.example.com";
    f->ev[EV_FAILOVER].kind_case = SEXTANT__V1__EVENT__KIND_FAILOVER;
    f->ev[EV_FAILOVER].failover = &f->failover;

    sextant__v1__lifecycle__init(&f->life);
    f->life.phase = SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_RELOAD;
    f->life.version = "0.1.0";
    f->life.detail = "targets: +1 -0";
    f->ev[EV_LIFE].kind_case = SEXTANT__V1__EVENT__KIND_LIFECYCLE;
    f->ev[EV_LIFE].lifecycle = &f->life;
}
