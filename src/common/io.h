/*
 * io.h — the one place where EINTR and short reads/writes are handled,
 * plus monotonic time.  Functions return negative errno codes.
 */
#ifndef MEMC_IO_H
#define MEMC_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* read(2) retried on EINTR; returns bytes (0 at EOF) or -errno. */
ssize_t io_read(int fd, void *buf, size_t len);

/* Write all of buf (blocking fd); 0 or -errno. */
int io_write_all(int fd, const void *buf, size_t len);

/* Monotonic clock in milliseconds / microseconds. */
int64_t io_now_ms(void);
int64_t io_now_us(void);

/* Wall clock in microseconds (journal-style timestamps). */
int64_t io_wall_us(void);

#endif
