/* The web console's static files (webui.h). */
#include "daemon/webui.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UI_PREFIX "/ui/"

/* Extensions esbuild's output and index.html use; anything else is not served. */
static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".woff2", "font/woff2"},
    {".map", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

int webui_owns(const char *url)
{
    return !strcmp(url, "/") || !strncmp(url, UI_PREFIX, strlen(UI_PREFIX));
}

int webui_resolve(const char *url, char *name, const char **type)
{
    const char *file, *dot;
    size_t n, i;

    if (!strcmp(url, "/"))
        file = "index.html";
    else if (!strncmp(url, UI_PREFIX, strlen(UI_PREFIX)))
        file = url + strlen(UI_PREFIX);
    else
        return -ENOENT;
    n = strlen(file);
    /* A leading dot would reach dot files and ".."; '/' another folder. */
    if (!n || n >= WEBUI_NAME_LEN || file[0] == '.' ||
        strspn(file, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
        return -ENOENT;
    dot = strrchr(file, '.');
    if (!dot)
        return -ENOENT;
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (!strcmp(dot, types[i].ext)) {
            memcpy(name, file, n + 1);
            *type = types[i].type;
            return 0;
        }
    }
    return -ENOENT;
}

int webui_open_file(int dirfd, const char *name, int *fd, uint64_t *size)
{
    struct stat st;
    int f, ret;

    *fd = -1;
    f = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (f < 0)
        return -errno;
    if (fstat(f, &st)) {
        ret = -errno;
        goto close_file;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = -EINVAL;
        goto close_file;
    }
    if ((uint64_t)st.st_size > WEBUI_FILE_MAX) {
        ret = -EFBIG;
        goto close_file;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
close_file:
    close(f);
    return ret;
}
