#include "vmm/agent_client.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "base/hostfs.h"
#include "hw/virtio/vdev.h"
#include "machine/virt.h"

int agent_client_path(const struct virt_config *cfg, char *buf, size_t len)
{
    for (unsigned i = 0; i < cfg->ndevices; i++) {
        if (!strcmp(cfg->devices[i].type, "console") &&
            opt_get(cfg->devices[i].opts, "agent", buf, len) == 1)
            return 0;
    }
    return -ENODEV;
}

int agent_client_request(const char *path, const char *line, unsigned timeout_ms, char *reply,
                         size_t len)
{
    size_t n = strlen(line);
    char buf[512];
    struct pollfd pfd;
    ssize_t got;
    int fd, ret;

    /* Through hostfs: in the sandbox the socket's folder may be closed to the VMM's user. */
    fd = hostfs_connect_unix(path);
    if (fd < 0)
        return fd;
    if (write(fd, line, n) != (ssize_t)n) {
        ret = -errno;
        goto out;
    }
    /* A busy port (another client holds it) never answers. */
    pfd = (struct pollfd){fd, POLLIN, 0};
    if (poll(&pfd, 1, (int)timeout_ms) != 1 || (got = read(fd, buf, sizeof(buf) - 1)) <= 0) {
        ret = -ETIMEDOUT;
        goto out;
    }
    buf[got] = '\0';
    ret = strstr(buf, "\"ok\":true") ? 0 : -EIO;
    if (reply && len) {
        strncpy(reply, buf, len - 1);
        reply[len - 1] = '\0';
    }
out:
    close(fd);
    return ret;
}
