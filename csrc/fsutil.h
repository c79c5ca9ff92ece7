/*
 * fsutil.h - the few POSIX file-system calls the durable outbox needs and Lua
 * lacks: fsync of a file or a directory, mkdir, listing a directory, and an
 * advisory lock held by an open descriptor (released by the kernel when the
 * process dies, which is what crash recovery relies on).
 *
 * Every function returns 0 on success and -1 on failure with errno set (the
 * caller turns errno into a message). Nothing here allocates except
 * smtpkit_fs_listdir, whose callback receives names owned by the directory
 * stream (valid only during the call).
 */
#ifndef SMTPKIT_FSUTIL_H
#define SMTPKIT_FSUTIL_H

#include <stddef.h>

/* fsync(2) of the file or directory at path (opened read-only, then closed). */
int smtpkit_fs_fsync(const char *path);

/* mkdir(2) with mode; an existing directory is not an error. */
int smtpkit_fs_mkdir(const char *path, unsigned mode);

/* Calls fn(name, ud) for every entry of the directory except "." and "..";
 * a non-zero return from fn stops the walk and is returned. At most
 * max_entries entries are visited (a documented cap: the outbox passes
 * 1,000,000); past it, -1 with errno E2BIG. */
int smtpkit_fs_listdir(const char *path, size_t max_entries,
                       int (*fn)(const char *name, void *ud), void *ud);

/* Opens (creating with mode 0600) path and takes an exclusive flock(2) on it.
 * wait = 0: fails at once with errno EWOULDBLOCK when another descriptor holds
 * it. Returns the descriptor (>= 0, close-on-exec) or -1. Closing the
 * descriptor (smtpkit_fs_unlock) or the death of the process releases it. */
int smtpkit_fs_lock(const char *path, int wait);
int smtpkit_fs_unlock(int fd);

/* The last modification time of path, in whole seconds since the epoch, in
 * *mtime (stat(2), following symbolic links). */
int smtpkit_fs_mtime(const char *path, long long *mtime);

#endif
