/* C unit test of csrc/fsutil.c (fsync, mkdir, listdir, lock), run under
 * valgrind by `make ctest`. Works in a fresh directory under /tmp. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #c); failures++; } } while (0)

struct seen {
    int a, b, other;
};

static int visit(const char *name, void *ud)
{
    struct seen *s = ud;
    if (strcmp(name, "a") == 0)
        s->a++;
    else if (strcmp(name, "b") == 0)
        s->b++;
    else
        s->other++;
    return 0;
}

static int stop_at_first(const char *name, void *ud)
{
    (void)name;
    (*(int *)ud)++;
    return 7;
}

int main(void)
{
    char dir[] = "/tmp/smtpkit-fsutil.XXXXXX";
    char path[256], sub[256];
    struct seen s = {0, 0, 0};
    int fd, fd2, n = 0;
    FILE *f;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/a", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("x", f);
        fclose(f);
    }
    snprintf(sub, sizeof sub, "%s/b", dir);

    CHECK(smtpkit_fs_fsync(path) == 0);
    CHECK(smtpkit_fs_fsync(dir) == 0);                 /* a directory too */
    errno = 0;
    CHECK(smtpkit_fs_fsync("/nonexistent/x") == -1 && errno == ENOENT);

    CHECK(smtpkit_fs_mkdir(sub, 0700) == 0);
    CHECK(smtpkit_fs_mkdir(sub, 0700) == 0);           /* exists: fine */
    errno = 0;
    CHECK(smtpkit_fs_mkdir(path, 0700) == -1 && errno == ENOTDIR);  /* a file */

    CHECK(smtpkit_fs_listdir(dir, 10, visit, &s) == 0);
    CHECK(s.a == 1 && s.b == 1 && s.other == 0);       /* no "." or ".." */
    CHECK(smtpkit_fs_listdir(dir, 10, stop_at_first, &n) == 7 && n == 1);
    errno = 0;
    CHECK(smtpkit_fs_listdir(dir, 1, visit, &s) == -1 && errno == E2BIG);
    CHECK(smtpkit_fs_listdir("/nonexistent", 10, visit, &s) == -1);

    snprintf(path, sizeof path, "%s/.lock", dir);
    fd = smtpkit_fs_lock(path, 0);
    CHECK(fd >= 0);
    errno = 0;
    fd2 = smtpkit_fs_lock(path, 0);                    /* held by another descriptor */
    CHECK(fd2 == -1 && (errno == EWOULDBLOCK || errno == EAGAIN));
    CHECK(smtpkit_fs_unlock(fd) == 0);
    fd2 = smtpkit_fs_lock(path, 0);
    CHECK(fd2 >= 0);
    CHECK(smtpkit_fs_unlock(fd2) == 0);

    unlink(path);
    snprintf(path, sizeof path, "%s/a", dir);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
    if (failures)
        fprintf(stderr, "%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
