/*
 * expiry.c — a record's expiry and its T flag (see expiry.h): the file's
 * time plus exptime, and relative seconds up to 30 days, a Unix time
 * beyond.
 */
#include "expiry.h"

int64_t exp_deadline(int64_t file_s, long exptime_s, int64_t now_s)
{
    if (exptime_s <= 0)
        return 0;
    return (file_s < now_s ? file_s : now_s) + exptime_s;
}

enum exp_token exp_token(int64_t deadline, int64_t now_s, int64_t *value)
{
    *value = 0;
    if (!deadline)
        return EXP_NEVER;
    int64_t left = deadline - now_s;
    if (left <= 0)
        return EXP_GONE;
    if (left <= EXP_RELATIVE_MAX) {
        *value = left;
        return EXP_RELATIVE;
    }
    *value = deadline < INT32_MAX ? deadline : INT32_MAX; /* memcached's exptime is 32-bit */
    return EXP_ABSOLUTE;
}
