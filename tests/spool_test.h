/* spool_test.h -- the fixture the spool's unit tests share (test_spool.c,
 * test_spool_append.c, test_spool_collectors.c, test_spool_batch.c): one
 * spool file per test in a temp folder of the binary's own, appends of
 * probe events, same-size "fat" events for the byte bound, and writes the
 * disk refuses. The names are those the tests had when they were one
 * file, so their bodies moved unchanged. Include after <cmocka.h>. */
#ifndef SEXTANT_SPOOL_TEST_H
#define SEXTANT_SPOOL_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

/* The spool file of the running test: a fresh name per test (setup). */
extern char test_path[128];

/* Two collectors' ids, for spool_set_collectors(). */
extern const char *const two_ids[2];

/* A target name that makes every probe event the same, large size. */
#define FAT "a-target-name-of-exactly-sixty-four-bytes-to-fatten-events-0123"

/* cmocka setup and teardown of every spool test: name test_path, then
 * remove its file with its -wal and -shm. */
int setup(void **state);
int teardown(void **state);
void unlink_db(const char *path);

struct spool *open_ok(void);
int try_append(struct spool *sp, const char *target, int64_t unix_ms,
               uint64_t *seq);
uint64_t append_probe(struct spool *sp, const char *target,
                      int64_t unix_ms);
uint64_t count(struct spool *sp);
int64_t sql_int(const char *path, const char *sql);

/* The byte bound: seqs of two varint bytes, fat events of one size. */
void skip_small_seqs(struct spool *sp);
/* Appends @n fat probe results, FAT_APPEND at a time, the times of each
 * append from @ms0 on (so times stay two varint bytes). */
#define FAT_APPEND 64
void append_fat(struct spool *sp, size_t n, int64_t ms0);
/* Sets the smallest byte bound and fills it exactly with fat events (from
 * seq 129, times from @ms0): how many fit, and their size in *len. */
size_t fill_to_bound(struct spool *sp, int64_t ms0, size_t *len);
size_t fat_size(struct spool *sp);
void assert_stats_match_file(struct spool *sp);
uint64_t min_seq(void);

/* Batches for collector 0, and appends the disk refuses. */
void ship_acked(struct spool *sp, struct spool_chunk *c);
void ship_without_drop(struct spool *sp, int newest, size_t max,
                       size_t n, uint64_t first, uint64_t oldest);
void peek_drop_alone(struct spool *sp, int newest,
                     struct spool_chunk *c, uint64_t count,
                     uint64_t first, uint64_t last);
void refuse_writes(void);
void restore_writes(void);
uint64_t two_then_refused(struct spool *sp, int lost, uint64_t *s2);

/* Makes /tmp/@name.XXXXXX for the spool files, runs @tests (@n of them,
 * each with setup and teardown) and removes the folder: cmocka's exit
 * code, or 1 if the folder could not be made. */
int spool_test_main(const char *name, const struct CMUnitTest *tests,
                    size_t n);

#endif
