/* fuzz_util.h -- what the libFuzzer harnesses of tests/fuzz/ share: a check
 * that aborts (so libFuzzer keeps the input as a crash), the rules every
 * error must follow, the batch round trip, and the scratch file the config
 * parsers read. Built only with SEXTANT_FUZZ; the product never links it. */
#ifndef SEXTANT_FUZZ_UTIL_H
#define SEXTANT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points, defined by each harness. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Raw cap for decoding fuzz input: small enough that a few KiB of zlib
 * reach it, so the over-cap path is explored too. */
#define FUZZ_RAW_CAP (1u << 20)

/* Logs "harness check failed: ..." and aborts. */
void fuzz_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#define FUZZ_REQUIRE(cond, ...)                                         \
    do {                                                                \
        if (!(cond))                                                    \
            fuzz_fail(__VA_ARGS__);                                     \
    } while (0)

/* Quiets the log (errors only) and unsets NODE_NAME, so that a run
 * depends on the input alone. */
void fuzz_setup(void);

/* A failure's message: non-empty, NUL-terminated inside @size, one line. */
void fuzz_check_err(const char *what, const char *err, size_t size);

/* Decodes the zlib stream @z with @raw_cap. On failure checks the errno,
 * the message and that the out-parameter was left alone; on success
 * re-encodes the batch (plainly and from packed events), decodes that
 * again and checks both give back the same batch. */
void fuzz_wire_batch(const uint8_t *z, size_t len, size_t raw_cap);

/* Writes @data to this process's scratch file (under $TMPDIR, else
 * /dev/shm or /tmp, removed at exit) and returns its path; borrowed. */
const char *fuzz_scratch_write(const uint8_t *data, size_t len,
                               const char *name);

#endif
