/* fuzz_util.c -- checks shared by the libFuzzer harnesses: the error rules
 * of wire.h and config.h, the batch round trip, and the scratch file the
 * config parsers read. Does not decide what to fuzz: each harness does. */
#include "fuzz_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "wire.h"

void fuzz_fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg(LOGL_ERROR, "fuzz", "harness check failed: %s", msg);
    abort();
}

void fuzz_setup(void)
{
    log_set_level(LOGL_ERROR);
    unsetenv("NODE_NAME");      /* agent_config_load reads it */
}

void fuzz_check_err(const char *what, const char *err, size_t size)
{
    FUZZ_REQUIRE(memchr(err, '\0', size) != NULL,
                 "%s: error message not NUL-terminated", what);
    FUZZ_REQUIRE(err[0] != '\0', "%s: failed with an empty message", what);
    FUZZ_REQUIRE(strchr(err, '\n') == NULL,
                 "%s: message is more than one line: \"%s\"", what, err);
}

/* ---- batches ---- */

/* The batch packed (not deflated); caller frees *out. */
static size_t pack_raw(const Sextant__V1__Batch *b, uint8_t **out)
{
    size_t n = sextant__v1__batch__get_packed_size(b);
    uint8_t *buf = malloc(n + 1);       /* +1: an empty batch is 0 bytes */

    FUZZ_REQUIRE(buf != NULL, "out of memory packing %zu bytes", n);
    FUZZ_REQUIRE(sextant__v1__batch__pack(b, buf) == n,
                 "packed size differs from get_packed_size");
    *out = buf;
    return n;
}

/* Decodes what we encoded from a valid batch: must succeed. The full
 * WIRE_MAX_RAW cap, as repacking may grow a field (a 5-byte negative int32
 * varint is written back in 10). */
static Sextant__V1__Batch *decode_again(const uint8_t *z, size_t len,
                                        const char *how)
{
    Sextant__V1__Batch *b = NULL;
    char err[WIRE_ERR_LEN] = "";
    int rc = wire_batch_decode(z, len, WIRE_MAX_RAW, &b, err, sizeof(err));

    FUZZ_REQUIRE(rc == 0 && b != NULL,
                 "a decoded batch, %s, does not decode again: %d %s", how,
                 rc, err);
    return b;
}

/* Equal event counts, and equal bytes when packed: nothing was lost or
 * changed on the way. */
static void check_same(const Sextant__V1__Batch *a,
                       const Sextant__V1__Batch *b, const char *how)
{
    uint8_t *pa, *pb;
    size_t la, lb;

    FUZZ_REQUIRE(a->n_events == b->n_events,
                 "%s: %zu events decoded as %zu", how, a->n_events,
                 b->n_events);
    la = pack_raw(a, &pa);
    lb = pack_raw(b, &pb);
    FUZZ_REQUIRE(la == lb && memcmp(pa, pb, la) == 0,
                 "%s: batch of %zu packed bytes came back as %zu different "
                 "ones", how, la, lb);
    free(pa);
    free(pb);
}

static void roundtrip_plain(const Sextant__V1__Batch *b)
{
    Sextant__V1__Batch *b2;
    uint8_t *z = NULL;
    size_t len = 0;
    int rc = wire_batch_encode(b, &z, &len);

    FUZZ_REQUIRE(rc == 0, "wire_batch_encode of a decoded batch: %d", rc);
    b2 = decode_again(z, len, "re-encoded with wire_batch_encode");
    check_same(b, b2, "wire_batch_encode");
    wire_batch_free(b2);
    free(z);
}

/* The agent's path: each event packed alone, then joined to the header. */
static void roundtrip_packed(const Sextant__V1__Batch *b)
{
    struct wire_buf *bufs = calloc(b->n_events + 1, sizeof(*bufs));
    Sextant__V1__Batch *b2;
    uint8_t *z = NULL, *p;
    size_t len = 0, plen, i;
    int rc;

    FUZZ_REQUIRE(bufs != NULL, "out of memory for %zu events", b->n_events);
    for (i = 0; i < b->n_events; i++) {
        rc = wire_event_pack(b->events[i], &p, &plen);
        FUZZ_REQUIRE(rc == 0, "wire_event_pack: %d", rc);
        bufs[i].data = p;
        bufs[i].len = plen;
    }
    rc = wire_batch_encode_packed(b, bufs, b->n_events, &z, &len);
    FUZZ_REQUIRE(rc == 0, "wire_batch_encode_packed: %d", rc);
    b2 = decode_again(z, len, "re-encoded from packed events");
    check_same(b, b2, "wire_batch_encode_packed");
    wire_batch_free(b2);
    free(z);
    for (i = 0; i < b->n_events; i++)
        free((void *)bufs[i].data);
    free(bufs);
}

void fuzz_wire_batch(const uint8_t *z, size_t len, size_t raw_cap)
{
    static Sextant__V1__Batch untouched;    /* *out before the call */
    Sextant__V1__Batch *b = &untouched;
    char err[WIRE_ERR_LEN];
    int rc;

    memset(err, 'x', sizeof(err));      /* so a missing NUL shows */
    rc = wire_batch_decode(z, len, raw_cap, &b, err, sizeof(err));
    if (rc < 0) {
        FUZZ_REQUIRE(b == &untouched, "decode failed (%d) but wrote *out",
                     rc);
        FUZZ_REQUIRE(rc == -EMSGSIZE || rc == -EBADMSG || rc == -EINVAL ||
                     rc == -ENOMEM, "decode: %d is not a documented errno",
                     rc);
        fuzz_check_err("wire_batch_decode", err, sizeof(err));
        return;
    }
    FUZZ_REQUIRE(rc == 0 && b != NULL && b != &untouched,
                 "decode returned %d without a batch", rc);
    FUZZ_REQUIRE(wire_batch_validate(b, NULL, 0) == 0,
                 "a decoded batch fails validation");
    for (size_t i = 0; i < b->n_events; i++)
        FUZZ_REQUIRE(wire_event_kind(b->events[i]) != NULL,
                     "event %zu has no kind name", i);
    roundtrip_plain(b);
    roundtrip_packed(b);
    wire_batch_free(b);
}

/* ---- scratch file ---- */

static char scratch_dir[4096];
static char scratch_path[4200];

static void scratch_remove(void)
{
    if (scratch_path[0])
        unlink(scratch_path);
    if (scratch_dir[0])
        rmdir(scratch_dir);
}

/* $TMPDIR, else /dev/shm (a config is written per run: keep it in RAM). */
static void scratch_init(void)
{
    const char *base = getenv("TMPDIR");
    int n;

    if (base == NULL || base[0] == '\0')
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    n = snprintf(scratch_dir, sizeof(scratch_dir), "%s/sextant-fuzz-XXXXXX",
                 base);
    FUZZ_REQUIRE(n > 0 && (size_t)n < sizeof(scratch_dir),
                 "TMPDIR too long");
    FUZZ_REQUIRE(mkdtemp(scratch_dir) != NULL, "mkdtemp %s: %s",
                 scratch_dir, strerror(errno));
    atexit(scratch_remove);
}

const char *fuzz_scratch_write(const uint8_t *data, size_t len,
                               const char *name)
{
    size_t off = 0;
    int fd, n;

    if (scratch_dir[0] == '\0')
        scratch_init();
    n = snprintf(scratch_path, sizeof(scratch_path), "%s/%s", scratch_dir,
                 name);
    FUZZ_REQUIRE(n > 0 && (size_t)n < sizeof(scratch_path), "name too long");
    fd = open(scratch_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_REQUIRE(fd >= 0, "open %s: %s", scratch_path, strerror(errno));
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        FUZZ_REQUIRE(w > 0, "write %s: %s", scratch_path, strerror(errno));
        off += (size_t)w;
    }
    FUZZ_REQUIRE(close(fd) == 0, "close %s: %s", scratch_path,
                 strerror(errno));
    return scratch_path;
}
