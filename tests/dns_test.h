/* dns_test.h -- the fixture both DNS probe tests share (test_agent_dns.c,
 * test_agent_dns_input.c): a real dnsmasq on a free loopback port, a
 * silent UDP port, a hostile fake resolver the test answers itself,
 * targets loaded from YAML, and runs driven the way loop.c drives them.
 * group_setup starts it all, group_teardown stops every process it
 * started (cmocka runs it also after a failed test). The names are those
 * of the one file the tests came from, so their bodies moved unchanged.
 * Include after <cmocka.h>. */
#ifndef SEXTANT_DNS_TEST_H
#define SEXTANT_DNS_TEST_H

#include <stddef.h>

#include "config.h"
#include "probe.h"

#define BASE_TTL 30
#define MAX_T    4                  /* targets per run_targets() */

/* A hostile resolver: the test answers its queries itself, between two
 * turns of the hooks, with replies built to break a parser. */
enum fake_mode {
    FAKE_SHORT,             /* 3 answers announced, none there */
    FAKE_BAD_RDLEN,         /* an A record of 5 bytes */
    FAKE_PAST_END,          /* rdlength beyond the end of the reply */
    FAKE_LOOP,              /* a CNAME whose name points at itself */
    FAKE_MANY,              /* 100 A records, one TTL with the high bit */
    FAKE_ODD_NAME,          /* a CNAME target with unprintable bytes */
};
extern enum fake_mode fake_mode;    /* how the fake answers next */
extern unsigned fake_port;
extern unsigned dns_port;           /* dnsmasq's, kept across restarts */
extern unsigned silent_port;        /* bound, never read */
extern char yaml_path[128];         /* what load_cfg() writes */

struct outcome {
    struct probe_result res[MAX_T];
    size_t left;
    size_t calls;
};

int group_setup(void **state);
int group_teardown(void **state);

unsigned free_port(void);
int start_dnsmasq(int ttl);
void set_flip(const char *flip);

/* Loads "targets:" + @targets (a printf format) into @cfg. */
int load_cfg(struct agent_config *cfg, char *err, size_t err_len,
             const char *targets, ...)
    __attribute__((format(printf, 4, 5)));
void load_one(struct agent_config *cfg, const char *query,
              const char *more);

void run_targets(const struct agent_target *ts, size_t n,
                 void **states, struct outcome *o, size_t max_fds);
void run_one(const struct agent_target *t, void **state,
             struct probe_result *res);
void assert_state(void *state, const char *want);

#endif
