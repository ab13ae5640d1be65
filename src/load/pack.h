/*
 * pack.h — the UserApps value, byte-identical to what Python protobuf's
 * SerializeToString() writes for the original loader:
 *
 *   for each app:  0x08 varint(app)       (field 1, repeated, not packed)
 *   0x11 lat as 8 little-endian bytes      (field 2, double, always set)
 *   0x19 lon as 8 little-endian bytes      (field 3, double, always set)
 *
 * Hand-written rather than protobuf-c's packer: no allocation, no
 * intermediate message, and the exact field order is visible here.
 * protobuf-c is used by the self-test to unpack what we pack.
 */
#ifndef MEMC_PACK_H
#define MEMC_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The two encoders, shared with the fast line path (parse_fast.c). */
static inline uint8_t *pack_varint(uint8_t *p, uint32_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint8_t *pack_double(uint8_t *p, uint8_t tag, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    *p++ = tag;
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(bits >> (8 * i)); /* little-endian whatever the host */
    return p;
}

/* Upper bound of the packed size for napps apps. */
static inline size_t pack_max_size(size_t napps)
{
    return napps * 6 + 18;
}

/* Writes into out (pack_max_size(napps) bytes); returns the length. */
size_t pack_user_apps(const uint32_t *apps, size_t napps, double lat, double lon, uint8_t *out);

/* The original's self-test: pack sample records, unpack them with
 * protobuf-c, compare; also checks the reference byte vector.  Prints what
 * it checks to stdout.  0 if all passed. */
int pack_selftest(void);

#endif
