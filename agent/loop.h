/* loop.h -- the agent's one event loop: a probe scheduler and the shipper
 * sharing one curl multi handle, waited on with curl_multi_poll() and
 * woken by SIGTERM/SIGINT through a self-pipe. Every probe result and
 * lifecycle event goes to the spool first; only the shipper sends.
 *
 * The loop borrows its config: a reload loads a new config beside the
 * running one and hands it to the loop, which keeps the state of targets
 * that did not change and the health of those whose identity did not. */
#ifndef SEXTANT_AGENT_LOOP_H
#define SEXTANT_AGENT_LOOP_H

struct agent_config;
struct spool;
struct loop;                            /* opaque outside loop.c */

#define LOOP_ONCE_SHIP_MS   15000L      /* --once: time allowed to drain */

/* @cfg and @sp are borrowed and must outlive the loop. */
int loop_new(const struct agent_config *cfg, struct spool *sp,
             struct loop **out);
void loop_free(struct loop *lp);        /* NULL is a no-op */

/* SIGHUP: the loop calls @load to read the config again. It returns 0
 * and a new config (heap, handed to the loop) or -errno, having logged
 * why; the old config then stays. On success the loop swaps targets
 * (unchanged ones keep their schedule, health and state; changed ones of
 * the same name, type and url/address/query keep their health), records
 * a RELOAD event saying what changed, then a state change to unknown for
 * each target whose health it had to reset, and hands the config it no longer
 * uses to @release. Without a loader SIGHUP is logged and ignored. */
typedef int (*loop_load_fn)(void *arg, struct agent_config **out);
typedef void (*loop_release_fn)(void *arg, struct agent_config *cfg);
void loop_set_reload(struct loop *lp, loop_load_fn load,
                     loop_release_fn release, void *arg);

/* The config in use now: the last one a reload swapped in. */
const struct agent_config *loop_config(const struct loop *lp);

/* Runs until SIGTERM or SIGINT, then stops probing, records a STOP event
 * and tries to ship what is spooled within shipping.shutdown_grace (a
 * collector that fails once is not waited for); returns 0.
 * With @once: records START, probes every target once (all at the same
 * time), records STOP and ships until the spool is empty: 0 then,
 * -ETIMEDOUT if the collector did not ack everything within
 * LOOP_ONCE_SHIP_MS, -EINTR if a signal cut it short. Other -errno for a
 * broken loop (curl or the spool failing), all logged here. */
int loop_run(struct loop *lp, int once);

#endif
