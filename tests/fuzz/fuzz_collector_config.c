/* fuzz_collector_config.c -- libFuzzer harness: the input is a collector
 * YAML config, written to a scratch file and loaded with
 * collector_config_load. It must load (and is then freed) or fail with one
 * line in err, leaving the out-parameter alone. */
#include "fuzz_util.h"

#include <string.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_scratch_write(data, size, "collector.yaml");
    struct collector_config cfg, before;
    char err[512];
    int rc;

    memset(&cfg, 0xa5, sizeof(cfg));
    memcpy(&before, &cfg, sizeof(cfg));
    memset(err, 'x', sizeof(err));
    rc = collector_config_load(path, &cfg, err, sizeof(err));
    if (rc < 0) {
        FUZZ_REQUIRE(memcmp(&cfg, &before, sizeof(cfg)) == 0,
                     "load failed (%d) but wrote *out", rc);
        fuzz_check_err("collector_config_load", err, sizeof(err));
        return 0;
    }
    FUZZ_REQUIRE(rc == 0, "collector_config_load returned %d", rc);
    collector_config_free(&cfg);
    return 0;
}
