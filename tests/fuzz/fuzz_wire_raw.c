/* fuzz_wire_raw.c -- libFuzzer harness: the input is a packed protobuf
 * message. It is deflated here and then decoded as a Batch (so mutations
 * land on the protobuf scan, unpack and validation, not on zlib), checked
 * to inflate back to itself, and decoded as an Ack. */
#include "fuzz_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    return 0;
}

/* Deflate and inflate are inverses, also at a cap of exactly the size. */
static void check_zlib(const uint8_t *data, size_t size, const uint8_t *z,
                       size_t zlen)
{
    uint8_t *back = NULL;
    size_t back_len = 0;
    int rc = wire_inflate(z, zlen, size, &back, &back_len);

    FUZZ_REQUIRE(rc == 0, "inflate of our own deflate: %d", rc);
    FUZZ_REQUIRE(back_len == size &&
                 (size == 0 || memcmp(back, data, size) == 0),
                 "inflate gave %zu bytes back for %zu", back_len, size);
    free(back);
    if (size > 0) {                     /* one byte short of the cap */
        rc = wire_inflate(z, zlen, size - 1, &back, &back_len);
        FUZZ_REQUIRE(rc == -EMSGSIZE, "inflate over its cap: %d", rc);
    }
}

static void check_ack(const uint8_t *data, size_t size)
{
    Sextant__V1__Ack a, b;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    memset(&a, 0xa5, sizeof(a));
    memcpy(&b, &a, sizeof(a));
    rc = wire_ack_decode(data, size, &a);
    if (rc < 0) {
        FUZZ_REQUIRE(rc == -EBADMSG, "ack decode: %d", rc);
        FUZZ_REQUIRE(memcmp(&a, &b, sizeof(a)) == 0,
                     "ack decode failed but wrote *out");
        return;
    }
    FUZZ_REQUIRE(rc == 0, "ack decode returned %d", rc);
    rc = wire_ack_encode(&a, &buf, &len);
    FUZZ_REQUIRE(rc == 0, "ack encode: %d", rc);
    rc = wire_ack_decode(buf, len, &b);
    FUZZ_REQUIRE(rc == 0, "re-encoded ack does not decode: %d", rc);
    FUZZ_REQUIRE(a.epoch == b.epoch && a.acked_seq == b.acked_seq &&
                 a.received_unix_ms == b.received_unix_ms,
                 "ack changed on a round trip");
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *z = NULL;
    size_t zlen = 0;
    int rc = wire_deflate(data, size, &z, &zlen);

    FUZZ_REQUIRE(rc == 0, "deflate of %zu bytes: %d", size, rc);
    check_zlib(data, size, z, zlen);
    fuzz_wire_batch(z, zlen, FUZZ_RAW_CAP);
    free(z);
    check_ack(data, size);
    return 0;
}
