/* shipper_test.h -- the fixture both shipper tests share
 * (test_agent_shipper.c, test_agent_shipper_fail.c): fake collectors
 * (libmicrohttpd on free loopback ports, one thread each) that answer
 * as a test sets them and record every request, and per test a fresh
 * spool, a config pointing at the fakes, a shipper and a curl multi.
 * The names are those of the one file the tests came from, so their
 * bodies moved unchanged. Include after <cmocka.h>. */
#ifndef SEXTANT_SHIPPER_TEST_H
#define SEXTANT_SHIPPER_TEST_H

#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "shipper.h"
#include "spool.h"
#include "wire.h"

enum reply {
    REPLY_ACK,              /* Ack with the batch's last seq */
    REPLY_ACK_BELOW,        /* 200, Ack whose watermark is below the batch */
    REPLY_WRONG_EPOCH,
    REPLY_STATUS,           /* fake->status, JSON error, maybe Retry-After */
    REPLY_STATUS_ONCE,      /* fake->status for the next request, then Ack */
    REPLY_HUGE,             /* 200 with 1 MiB of junk */
};

#define MAX_REQ  256
#define MAX_SEQ  4096

/* One request as the fake collector saw it. */
struct req {
    uint64_t first_seq, last_seq, oldest_seq;
    uint64_t spool_events, spool_bytes;     /* the backlog it reported */
    size_t n_events;
    size_t raw_bytes;       /* packed events in it */
    Sextant__V1__Drops drops;
    int64_t at_us;          /* util_mono_us() on arrival */
    unsigned status;        /* what it was answered */
};

/* A fake collector; everything below mu is guarded by it (MHD runs its
 * own thread per daemon). */
struct fake {
    struct MHD_Daemon *d;
    unsigned port;
    enum reply mode;
    unsigned status;
    char retry_after[64];   /* "" for none */
    unsigned n_req;
    struct req req[MAX_REQ];
    unsigned got[MAX_SEQ];  /* times each seq arrived in a stored batch */
    char path[64], ctype[64], cenc[64], auth[128];
    int had_expect;
    char cluster[32], region[32], node[32], version[32];
    uint64_t epoch;
    uint32_t prev_rtt_us;
    int64_t sent_unix_ms;
    char err[WIRE_ERR_LEN];
};

extern pthread_mutex_t mu;          /* guards fakes[] */
extern struct fake fakes[2];

/* Per test: a fresh spool, fakes, a config pointing at them, a multi. */
struct fx {
    struct agent_config cfg;
    struct agent_collector coll[2];
    char ingest[2][128];
    struct spool *sp;
    struct shipper *sh;
    CURLM *multi;
};

int fake_start(unsigned i, unsigned port);
void fake_stop(unsigned i);
int group_setup(void **state);
int group_teardown(void **state);
int setup(void **state);
int setup2(void **state);
int teardown(void **state);
void append_named(struct spool *sp, size_t n, const char *name);
void append_n(struct spool *sp, size_t n);
uint64_t spooled(struct spool *sp);
unsigned requests(unsigned i);
struct req last_req(unsigned i);
int ship(struct fx *f);
int ship_all(struct fx *f);
void run_until_requests(struct fx *f, unsigned i, unsigned want,
                        long max_ms);
int64_t sql_int(const char *sql);
void assert_got_exactly(unsigned i, uint64_t lo, uint64_t hi);
void set_reply(unsigned i, enum reply mode, unsigned status,
               const char *retry_after);
void assert_metric(const char *line);

#endif
