/*
 * fuzz_config.c — libFuzzer target for the config parser: any bytes give a
 * clean result or a message, never a crash, and a parsed config validates
 * without crashing too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg c;
    char err[512];
    cfg_defaults(&c);
    err[0] = 0;
    int r = cfg_parse_text(&c, "fuzz.conf", (const char *)data, size, err, sizeof(err));
    if (r != 0 && (r != MEMC_EXIT_CONFIG || !err[0] || strlen(err) >= sizeof(err)))
        abort();
    if (r == 0)
        cfg_validate(&c, err, sizeof(err));
    return 0;
}
