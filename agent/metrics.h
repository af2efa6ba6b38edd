/* metrics.h -- the agent's own counters, gauges and histograms in one
 * process-wide registry, and their rendering in the Prometheus text format
 * (0.0.4). The loop's thread updates them; the admin server's thread reads
 * them. Does not serve HTTP (admin.c) or decide what is healthy.
 *
 * Threads: every value is a C11 atomic, so an update is a few relaxed
 * atomic adds or stores: no lock, no allocation, nothing that could stall
 * the loop while a scrape renders. One exception: the names of the
 * targets, set at start and at each reload, are guarded by a mutex that a
 * render holds while it writes the per-target lines; a result's health
 * update is still one atomic store. A render is therefore not one snapshot:
 * a counter may move between two lines, which Prometheus tolerates. A
 * histogram's +Inf bucket and _count are derived from the very bucket
 * values it printed, so each histogram line set stays consistent.
 *
 * Functions marked "loop thread" must be called from the thread that owns
 * the spool; the others are safe from any thread. */
#ifndef SEXTANT_AGENT_METRICS_H
#define SEXTANT_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "health.h"
#include "probe.h"

struct spool;

/* Targets whose health /metrics shows, in the config's order (more are
 * probed as usual, not shown), and the most one's line can take: the
 * name (AGENT_CONFIG_MAX_NAME bytes) escaped at worst to twice that. */
#define METRICS_MAX_TARGETS  1024u
#define METRICS_TARGET_LINE  640u
/* Bytes of one /metrics page: 32 KiB for the agent's own metrics, and a
 * line per target. */
#define METRICS_RENDER_MAX   ((32u << 10) + \
                              METRICS_MAX_TARGETS * METRICS_TARGET_LINE)
#define METRICS_DEPTH_US     1000000LL      /* spool depth read this often */
#define METRICS_MAX_COLLECTORS 8u           /* = AGENT_CONFIG_MAX_COLLECTORS */
#define METRICS_MAX_LABEL    256u           /* bytes of a collector label */

enum metrics_phase {
    METRICS_STARTING,           /* no loop turn has finished yet */
    METRICS_RUNNING,            /* the loop turns */
    METRICS_STOPPING,           /* a signal asked it to stop */
};

/* -- updates (the loop's thread) -- */

/* One finished probe run of @type; @total_us goes into the histogram. */
void metrics_probe_done(enum probe_type type, int ok, uint64_t total_us);
/* Outcome @rc of a spool append of @n events: below 0 counts them dropped
 * and marks the spool unwritable with -@rc, 0 marks it writable again. */
void metrics_spool_write(int rc, size_t n);
/* Events lost before the spool took them, for any other reason. (What
 * the spool drops to stay in its bound is spool_stats().dropped.) */
void metrics_events_dropped(uint64_t n);

/* The shipper's side: a batch stamped @sent_unix_ms went out; its Ack said
 * the collector received it at @received_unix_ms; it completed after
 * @rtt_us (then the clock offset is received - sent - rtt / 2), or failed
 * (then the Ack, if any, is forgotten). */
void metrics_batch_sent(int64_t sent_unix_ms);
void metrics_ack_received(int64_t received_unix_ms);
void metrics_batch_shipped(int64_t rtt_us);
void metrics_batch_failed(void);
/* A collector refused a batch for good with HTTP @status (400, 413, 415:
 * dead-lettered). */
void metrics_batch_rejected(int status);

/* Per collector, by index in the config: call metrics_collectors_set()
 * before the admin thread starts (it copies the labels, here the ingest
 * URLs); then the loop reports acked batches and the current streak of
 * failures. */
void metrics_collectors_set(const char *const *labels, size_t n);
void metrics_collector_shipped(unsigned idx);
void metrics_collector_failures(unsigned idx, unsigned in_a_row);

/* Loop thread: the targets in use, at start and after each reload: first
 * metrics_targets_begin() with their count, then each one's name (copied),
 * type and health by its index in the loop's order, the index a result's
 * metrics_target_health() gives. */
void metrics_targets_begin(size_t n);
void metrics_target_set(size_t idx, const char *name, enum probe_type type,
                        enum health_state state);
/* Loop thread: after probers reselected, how many targets this node
 * left to others (the rest of the targets it probes) and how many nodes
 * the live list it used names. */
void metrics_probers(size_t handed_off, size_t live_nodes);
/* Loop thread: target @idx's health after a result (one atomic store). */
void metrics_target_health(size_t idx, enum health_state state);

/* Loop thread: the end of one turn at @now_us (util_mono_us()). Beats the
 * heartbeat, moves STARTING to RUNNING, records the target count and, at
 * most every METRICS_DEPTH_US, reads the spool's counters (depth, drops,
 * dead letters) from @sp (borrowed; this is why it must run on the
 * spool's thread). */
void metrics_loop_turn(struct spool *sp, size_t n_targets, int64_t now_us);
/* The loop is stopping: readiness goes away for good. */
void metrics_loop_stopping(void);

/* -- reads (any thread) -- */

struct metrics_status {
    enum metrics_phase phase;
    int64_t heartbeat_us;       /* util_mono_us() of the last turn; 0: none */
    int spool_errno;            /* errno of the last failed append; 0: ok */
};

void metrics_get_status(struct metrics_status *out);

/* Renders every metric into @buf (NUL-terminated) and sets *len to its
 * length without the NUL. @now_us is util_mono_us(), for ages. -EMSGSIZE
 * if @cap is too small (METRICS_RENDER_MAX always suffices); @buf is then
 * garbage and *len untouched. */
int metrics_render(char *buf, size_t cap, int64_t now_us, size_t *len);

/* Zeroes everything, as at process start; for tests. */
void metrics_reset(void);

#endif
