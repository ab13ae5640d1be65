/*
 * files.h — files for the integration tests: temporary directories, gzip
 * and text files, waiting for a path or a text to appear, and the order of
 * the daemon's dot renames as inotify saw them.
 */
#ifndef MEMC_TEST_FILES_H
#define MEMC_TEST_FILES_H

#include <stddef.h>

/* A fresh temporary directory (removed by h_rmrf). */
char *h_tmpdir(void);
void h_rmrf(const char *dir);

/* gzip text into path (level 6, one member). */
int h_gz_write(const char *path, const void *text, size_t len);

/* Read a whole file (NUL-terminated); NULL on error. */
char *h_read_file(const char *path, size_t *len);

/* 1 if path exists. */
int h_exists(const char *path);

/* Write a small text file. */
int h_write_file(const char *path, const char *text);

/* Wait until path exists (or, gone=1, no longer exists). 0 or -1. */
int h_wait_path(const char *path, int gone, int timeout_ms);
/* Wait until the file's text contains what. 0 or -1. */
int h_wait_text(const char *path, const char *what, int timeout_ms);

/* Drain IN_MOVED_TO events from an inotify fd that watches a spool and
 * count the dot names (our renames; only that name if only != NULL).
 * Returns -1 if they did not come in strictly increasing name order, with
 * the offending pair in why. */
int h_dot_renames(int in, const char *only, char *why, size_t whylen);

#endif
