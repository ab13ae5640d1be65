/*
 * io.h — a read(2) of a blocking descriptor retried on EINTR (the file a
 * worker inflates), and the clocks.  Functions return negative errno codes.
 * The non-blocking sockets in poll loops (write.c, xchg.c, health.c, the
 * IPC) treat EINTR like EAGAIN where they are: the loop comes back to them.
 */
#ifndef MEMC_IO_H
#define MEMC_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* read(2) retried on EINTR; returns bytes (0 at EOF) or -errno. */
ssize_t io_read(int fd, void *buf, size_t len);

/* Monotonic clock in milliseconds / microseconds. */
int64_t io_now_ms(void);
int64_t io_now_us(void);

/* Wall clock in microseconds (journal-style timestamps). */
int64_t io_wall_us(void);

#endif
