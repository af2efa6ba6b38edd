/* fuzz_wire_zlib.c -- libFuzzer harness: the input is a request body as the
 * collector gets it (zlib stream of a packed Batch) and goes through
 * wire_batch_decode, then the round trip of fuzz_wire_batch(). Mutations
 * mostly break the zlib layer; fuzz_wire_raw.c reaches protobuf. */
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_wire_batch(data, size, FUZZ_RAW_CAP);
    return 0;
}
