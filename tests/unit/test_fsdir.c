/* fsdir_remove_flat: removes a flat folder with its files, sockets and links, never follows a
 * link out of it, refuses to descend into a subfolder, and takes a missing folder as done. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/fsdir.h"

static char top[64]; /* /tmp/test_fsdir.XXXXXX */

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
}

int main(void)
{
    char flat[80], p[PATH_MAX], outside[80], nested[96];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int s;

    snprintf(top, sizeof(top), "/tmp/test_fsdir.XXXXXX");
    if (!mkdtemp(top)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(flat, sizeof(flat), "%s/flat", top);
    snprintf(outside, sizeof(outside), "%s/outside", top);
    CHECK(mkdir(flat, 0700) == 0);
    touch(outside);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/file%d", flat, i);
        touch(p);
    }
    /* A link to a file outside: the link goes, its target stays. */
    snprintf(p, sizeof(p), "%s/link", flat);
    CHECK(symlink(outside, p) == 0);
    /* A listening socket's file, as a VM's API socket leaves. */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/api.sock", flat);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(fsdir_remove_flat(flat) == 0);
    if (s >= 0)
        close(s);
    CHECK(stat(flat, &st) < 0 && errno == ENOENT);
    CHECK(stat(outside, &st) == 0);
    /* Gone already: done. */
    CHECK(fsdir_remove_flat(flat) == 0);
    /* A subfolder is not ours to descend into: its folder stays, with the subfolder. */
    CHECK(mkdir(flat, 0700) == 0);
    snprintf(nested, sizeof(nested), "%s/sub", flat);
    CHECK(mkdir(nested, 0700) == 0);
    snprintf(p, sizeof(p), "%s/keep", nested);
    touch(p);
    CHECK(fsdir_remove_flat(flat) == -ENOTEMPTY);
    CHECK(stat(p, &st) == 0);
    unlink(p);
    rmdir(nested);
    rmdir(flat);
    unlink(outside);
    rmdir(top);
    return test_finish("fsdir");
}
