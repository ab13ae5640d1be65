/*
 * result.c — the words for the kinds of bad line, and adding up a load's
 * counters (result.h).
 */
#include "result.h"

static const char *const parse_texts[PARSE_STATUS_MAX] = {
    [PARSE_OK] = "ok",
    [PARSE_BLANK] = "blank line",
    [PARSE_FIELDS] = "not 5 tab-separated fields",
    [PARSE_EMPTY_FIELD] = "empty dev_type or dev_id",
    [PARSE_UNKNOWN_TYPE] = "unknown device type",
    [PARSE_BAD_LAT] = "lat is not a finite decimal number",
    [PARSE_BAD_LON] = "lon is not a finite decimal number",
    [PARSE_BAD_KEY] = "key longer than 250 bytes or with whitespace/control bytes",
    [PARSE_TOO_LONG] = "line longer than max_line_bytes",
    [PARSE_NOT_STORED] = "memcached did not store the value",
};

const char *parse_status_text(enum parse_status s)
{
    return (s >= 0 && s < PARSE_STATUS_MAX) ? parse_texts[s] : "?";
}

void pipe_stats_add(struct pipe_stats *to, const struct pipe_stats *from)
{
#define PIPE_ADD(f, journal, metric, help) to->f += from->f;
    PIPE_COUNTERS(PIPE_ADD)
#undef PIPE_ADD
#define PIPE_TYPE_ADD(f, n, metric, help)                                                          \
    for (int i = 0; i < (n); i++)                                                                  \
        to->f[i] += from->f[i];
    PIPE_TYPE_COUNTERS(PIPE_TYPE_ADD)
#undef PIPE_TYPE_ADD
    for (int i = 0; i < PARSE_STATUS_MAX; i++)
        to->err_by[i] += from->err_by[i];
}
