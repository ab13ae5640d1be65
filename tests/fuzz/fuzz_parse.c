/*
 * fuzz_parse.c — libFuzzer target for the line contract: parse_line() on
 * arbitrary bytes, then the packer on whatever it accepts, checking the
 * invariants the rest of the pipeline relies on (bounded apps, a storable
 * key, finite coordinates, a packed size within pack_max_size); and the
 * fast line path (SSE2 and scalar) against the plain one on the same bytes
 * as a text of lines (tests/parse_fast_check.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../parse_fast_check.h"
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
    /* the first byte picks a line limit, short ones included */
    static const pf_fn fast[2] = {parse_fast, parse_fast_scalar};
    size_t max_len = size ? (size_t)data[0] * 4 : 1 << 20, taken = 0, lines = 0;
    for (int i = 0; i < 2; i++) {
        const char *where;
        if (pf_check(fast[i], &types, line, size, max_len, &taken, &lines, &where))
            abort();
    }
    free(apps);
    return 0;
}
