#include "base/fsdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int fsdir_remove_flat(const char *dir)
{
    struct dirent *e;
    DIR *dp = opendir(dir);

    if (!dp)
        return errno == ENOENT ? 0 : -errno;
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(dp), e->d_name, 0);
    closedir(dp);
    if (rmdir(dir) && errno != ENOENT)
        return -errno;
    return 0;
}
