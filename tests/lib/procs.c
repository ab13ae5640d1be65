/*
 * procs.c — child processes for the tests (see procs.h).
 */
#include "procs.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "files.h"

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

long h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

pid_t h_spawn(const char *const *argv, const char *errfile)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* stdout goes with stderr: a test's own output stays readable. */
        int dn = open("/dev/null", O_RDWR);
        int fd = errfile ? open(errfile, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
        dup2(dn, 0);
        dup2(fd >= 0 ? fd : dn, 1);
        dup2(fd >= 0 ? fd : dn, 2);
        if (fd > 2)
            close(fd);
        if (dn > 2)
            close(dn);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int h_wait(pid_t pid, int timeout_s)
{
    int status;
    for (int i = 0; i < timeout_s * 100; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        h_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int h_run(const char *const *argv, const char *errfile, int timeout_s)
{
    pid_t pid = h_spawn(argv, errfile);
    return pid < 0 ? -1 : h_wait(pid, timeout_s);
}

int h_gen(const char *const *args)
{
    const char *argv[64] = {MEMC_GEN};
    int n = 1;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return h_run(argv, NULL, 120) == 0 ? 0 : -1;
}

int h_children(pid_t pid, pid_t *out, int max)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    char *t = h_read_file(p, NULL);
    int n = 0;
    for (char *s = t, *e; s && n < max; s = e) {
        long v = strtol(s, &e, 10);
        if (e == s)
            break;
        out[n++] = (pid_t)v;
    }
    free(t);
    return n;
}
