/*
 * fuzz_parse.c — libFuzzer target for the line contract: parse_line() on
 * arbitrary bytes, then the packer on whatever it accepts, checking the
 * invariants the rest of the pipeline relies on (bounded apps, a storable
 * key, finite coordinates, a packed size within pack_max_size).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"
#include "parse.h"

static const struct parse_types types = {
    .count = 4,
    .name = {"idfa", "gaid", "adid", "dvid"},
    .name_len = {4, 4, 4, 4},
    .enabled = {1, 1, 1, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t *apps = malloc(parse_apps_cap(size) * sizeof(uint32_t));
    struct parse_rec rec;
    const char *line = (const char *)data;
    if (parse_line(&types, line, size, &rec, apps) == PARSE_OK) {
        if (rec.napps > parse_apps_cap(size) || !isfinite(rec.lat) || !isfinite(rec.lon) ||
            rec.dev_type_len + 1 + rec.dev_id_len > PARSE_MAX_KEY ||
            !parse_key_ok(rec.dev_id, rec.dev_id_len) || !types.enabled[rec.type])
            abort();
        uint8_t *out = malloc(pack_max_size(rec.napps));
        size_t n = pack_user_apps(apps, rec.napps, rec.lat, rec.lon, out);
        if (n > pack_max_size(rec.napps) || n < 18)
            abort();
        free(out);
    }
    double d;
    parse_float(line, size, &d);
    free(apps);
    return 0;
}
