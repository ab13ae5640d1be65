/*
 * ipc.h — master <-> worker messages over a SOCK_SEQPACKET socketpair.
 *
 * SEQPACKET keeps message boundaries and is reliable, so a message is one
 * fixed-size struct per send: no framing code, no partial reads.  The file
 * to load travels as an open descriptor (SCM_RIGHTS): the master alone
 * opens spool files (O_NOFOLLOW, regular files only), so the security
 * checks live in one place and a worker never resolves a path.
 *
 *   master -> worker   IPC_LOAD  job, file name (for messages), servers to
 *                                 re-warm (0 = all, a normal load), types of a
 *                                 ring change, the file's time, fd attached
 *                      IPC_QUIT  finish nothing more, exit 0 (reload, oneshot end)
 *                      IPC_GRANT servers the load may write now (grant_mask) or must
 *                                defer (refuse_mask): the write order (order.h)
 *   worker -> master   IPC_HELLO      ready for work
 *                      IPC_PROGRESS   job, counts so far, servers down (2/s)
 *                      IPC_TURN       job, servers it wants to write (want_mask)
 *                      IPC_RESULT     job, final counts and status
 * SIGTERM to a worker aborts its load at a batch boundary (shutdown).
 */
#ifndef MEMC_IPC_H
#define MEMC_IPC_H

#include <stdint.h>

#include "result.h"

enum ipc_type { IPC_HELLO = 1, IPC_LOAD, IPC_QUIT, IPC_PROGRESS, IPC_RESULT, IPC_TURN, IPC_GRANT };

struct ipc_msg {
    uint32_t type;
    uint32_t job;
    uint32_t down_mask;               /* servers (global index) the worker finds down;
                                       * IPC_LOAD: those the master's probe finds down */
    uint32_t only_mask;               /* IPC_LOAD: only these servers (re-warm, retry; 0 = all) */
    uint32_t ring_types;              /* IPC_LOAD: of these types only the records whose server
                                       * changed with the ring (cfg.ring_prev) */
    uint32_t want_mask;               /* IPC_TURN: servers to write next */
    uint32_t grant_mask, refuse_mask; /* IPC_GRANT */
    uint32_t rewarm;                  /* IPC_LOAD: 1 for a re-warm (rewarm_max_rate applies) */
    int64_t file_time_s;              /* IPC_LOAD: the file's mtime when the master picked it
                                       * up (Unix time): its records' exptime counts from it */
    char name[256];                   /* IPC_LOAD only: the file name, for messages */
    struct pipe_stats st;
};

/* Send one message, with fd attached if fd >= 0.  0 or -errno. */
int ipc_send(int sock, const struct ipc_msg *m, int fd);

/* Receive one message; *fd gets an attached descriptor or -1.  Returns 1,
 * 0 when the peer closed, -errno (-EAGAIN, -EINTR pass through). */
int ipc_recv(int sock, struct ipc_msg *m, int *fd, int flags);

#endif
