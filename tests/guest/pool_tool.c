/* A command-line door to daemon/pool.h for tests/guest/test_pool.py, until the daemon's volume
 * routes exist: each command is one pool call, its error line on stderr, exit status 1 on
 * failure. Built by the test against build/libtessera.a.
 *   pool_tool DIR import KEY qcow2|raw FILE     pool_tool DIR clone-linked SRC DST
 *   pool_tool DIR clone-full SRC DST            pool_tool DIR path KEY */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/pool.h"

int main(int argc, char **argv)
{
    char err[POOL_ERR_LEN] = "", path[4096];
    enum pool_format fmt;
    struct pool *p;
    int ret = -1, fd;

    if (argc < 4 || pool_open(argv[1], &p, err) < 0) {
        fprintf(stderr, "usage: pool_tool DIR import|clone-linked|clone-full|path ... %s\n", err);
        return 2;
    }
    if (!strcmp(argv[2], "import") && argc == 6 && pool_parse_format(argv[4], &fmt) == 0) {
        fd = open(argv[5], O_RDONLY | O_CLOEXEC);
        ret = fd < 0 ? -1 : volume_import(p, argv[3], fmt, fd, 1ull << 40, err);
        if (fd >= 0)
            close(fd);
    } else if (!strcmp(argv[2], "clone-linked") && argc == 5) {
        ret = volume_clone_linked(p, argv[3], argv[4], err);
    } else if (!strcmp(argv[2], "clone-full") && argc == 5) {
        ret = volume_clone_full(p, argv[3], argv[4], err);
    } else if (!strcmp(argv[2], "path") && argc == 4) {
        ret = volume_path(p, argv[3], path, sizeof(path), err);
        if (ret == 0)
            printf("%s\n", path);
    } else {
        snprintf(err, sizeof(err), "unknown command or arguments");
    }
    if (ret < 0)
        fprintf(stderr, "pool_tool: %s\n", err);
    pool_close(p);
    return ret < 0;
}
