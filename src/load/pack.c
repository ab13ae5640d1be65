/*
 * pack.c — UserApps encoding (see pack.h) and the --test self-test.
 */
#include "pack.h"

#include <stdio.h>
#include <string.h>

#include "appsinstalled.pb-c.h"

size_t pack_user_apps(const uint32_t *apps, size_t napps, double lat, double lon, uint8_t *out)
{
    uint8_t *p = out;
    for (size_t i = 0; i < napps; i++) {
        *p++ = 0x08;
        p = pack_varint(p, apps[i]);
    }
    p = pack_double(p, 0x11, lat);
    p = pack_double(p, 0x19, lon);
    return (size_t)(p - out);
}

int pack_selftest(void)
{
    static const uint8_t vector[] = {0x08, 0x01, 0x08, 0x02, 0x08, 0x03, 0x11, 0xcd,
                                     0xcc, 0xcc, 0xcc, 0xcc, 0x8c, 0x4b, 0x40, 0x19,
                                     0xcd, 0xcc, 0xcc, 0xcc, 0xcc, 0x8c, 0x4b, 0x40};
    static const struct {
        double lat, lon;
        uint32_t apps[6];
        size_t n;
    } samples[] = {
        {55.1, 55.1, {1, 2, 3}, 3},
        {42.345, -33.5, {1423, 43, 567, 3, 7, 23}, 6},
        {-90, 180, {7, 8, 9, 4294967295u, 0, 128}, 6},
        {0, -0.0, {0}, 0},
    };
    uint8_t buf[128];
    int failed = 0;

    size_t n = pack_user_apps(samples[0].apps, 3, 55.1, 55.1, buf);
    int ok = n == sizeof(vector) && memcmp(buf, vector, n) == 0;
    printf("%s: reference vector apps [1,2,3] lat 55.1 lon 55.1\n", ok ? "ok" : "FAIL");
    failed |= !ok;

    for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
        n = pack_user_apps(samples[s].apps, samples[s].n, samples[s].lat, samples[s].lon, buf);
        UserApps *ua = user_apps__unpack(NULL, n, buf);
        ok = ua && ua->n_apps == samples[s].n && ua->has_lat && ua->has_lon &&
             memcmp(&ua->lat, &samples[s].lat, sizeof(double)) == 0 &&
             memcmp(&ua->lon, &samples[s].lon, sizeof(double)) == 0;
        for (size_t i = 0; ok && i < samples[s].n; i++)
            ok = ua->apps[i] == samples[s].apps[i];
        /* protobuf-c's own packer must give the same bytes (non-packed
         * repeated field, lat then lon) */
        uint8_t again[128];
        ok = ok && user_apps__get_packed_size(ua) == n && user_apps__pack(ua, again) == n &&
             memcmp(again, buf, n) == 0;
        printf("%s: round trip %zu apps lat %.17g lon %.17g\n", ok ? "ok" : "FAIL", samples[s].n,
               samples[s].lat, samples[s].lon);
        failed |= !ok;
        if (ua)
            user_apps__free_unpacked(ua, NULL);
    }
    return failed ? -1 : 0;
}
