/*
 * io.c — EINTR loops and clocks (see io.h).
 */
#include "io.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

ssize_t io_read(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
    }
}

static int64_t io_clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t io_now_us(void)
{
    return io_clock_us(CLOCK_MONOTONIC);
}

int64_t io_now_ms(void)
{
    return io_now_us() / 1000;
}

int64_t io_wall_us(void)
{
    return io_clock_us(CLOCK_REALTIME);
}
