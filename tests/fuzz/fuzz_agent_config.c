/* fuzz_agent_config.c -- libFuzzer harness: the input is an agent YAML
 * config, written to a scratch file and loaded with agent_config_load. It
 * must load (and is then freed) or fail with one line in err, leaving the
 * out-parameter alone. Probe types' parse hooks run as part of loading. */
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
    const char *path = fuzz_scratch_write(data, size, "agent.yaml");
    struct agent_config cfg, before;
    char err[512];
    int rc;

    memset(&cfg, 0xa5, sizeof(cfg));
    memcpy(&before, &cfg, sizeof(cfg));
    memset(err, 'x', sizeof(err));
    rc = agent_config_load(path, &cfg, err, sizeof(err));
    if (rc < 0) {
        FUZZ_REQUIRE(memcmp(&cfg, &before, sizeof(cfg)) == 0,
                     "load failed (%d) but wrote *out", rc);
        fuzz_check_err("agent_config_load", err, sizeof(err));
        return 0;
    }
    FUZZ_REQUIRE(rc == 0, "agent_config_load returned %d", rc);
    /* What config.h promises of a loaded config. */
    FUZZ_REQUIRE(cfg.n_collectors >= 1, "loaded without a collector");
    FUZZ_REQUIRE(cfg.n_targets >= 1, "loaded without a target");
    for (size_t i = 0; i < cfg.n_targets; i++)
        FUZZ_REQUIRE(cfg.targets[i].timeout_ms <= cfg.targets[i].interval_ms,
                     "targets[%zu]: timeout over interval", i);
    agent_config_free(&cfg);
    return 0;
}
