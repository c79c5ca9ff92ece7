/*
 * fsutil.c - see fsutil.h.
 */
#define _DEFAULT_SOURCE 1   /* flock(2) on glibc with _POSIX_C_SOURCE */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_DIRECTORY
#define O_DIRECTORY 0
#endif

int smtpkit_fs_fsync(const char *path)
{
    int fd, rc, saved;

    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    do {
        rc = fsync(fd);
    } while (rc != 0 && errno == EINTR);
    saved = errno;
    close(fd);
    errno = saved;
    return rc == 0 ? 0 : -1;
}

int smtpkit_fs_mkdir(const char *path, unsigned mode)
{
    struct stat st;

    if (mkdir(path, (mode_t)mode) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return -1;
}

int smtpkit_fs_listdir(const char *path, size_t max_entries,
                       int (*fn)(const char *name, void *ud), void *ud)
{
    DIR *d = opendir(path);
    struct dirent *e;
    size_t n = 0;
    int rc = 0;

    if (!d)
        return -1;
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (!e) {
            if (errno != 0)
                rc = -1;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (++n > max_entries) {
            errno = E2BIG;
            rc = -1;
            break;
        }
        rc = fn(e->d_name, ud);
        if (rc != 0)
            break;
    }
    {
        int saved = errno;
        closedir(d);
        errno = saved;
    }
    return rc;
}

int smtpkit_fs_lock(const char *path, int wait)
{
    int fd, rc, saved;

    do {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    do {
        rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int smtpkit_fs_unlock(int fd)
{
    return close(fd);   /* closing the descriptor releases the flock */
}

int smtpkit_fs_mtime(const char *path, long long *mtime)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    *mtime = (long long)st.st_mtime;
    return 0;
}
