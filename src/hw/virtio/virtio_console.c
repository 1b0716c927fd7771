/* virtio-console with multiport (virtio 1.2 §5.3): port 0 is a console (hvc0 in Linux), port 1
 * is the guest agent's channel, named "org.tessera.agent.0". Each port's host side is a unix
 * socket the VMM listens on; one client at a time, bytes pass through unchanged.
 *
 * Threads: everything runs on the VM's event loop thread, under `lock`. A guest kick (vCPU
 * thread) only writes the device's eventfd. reset() takes `lock`, so once it returns no
 * processing is in flight and none will touch the queues until the next activate().
 *
 * Quiesce works the same way: once quiesce() has held `lock`, no callback is mid-way, and the
 * `quiesced` flag keeps the next ones from touching the rings: host input stays in the client
 * sockets (their watches pause), guest output waits in the rings, control messages queue up
 * in `ctrl`. resume() re-arms the watches and kicks. The saved state is the multiport
 * conversation: which ports the guest made ready and opened, what the guest was told about
 * the host side, and the control messages not yet delivered. Guest output already taken but
 * not yet written to a host client belongs to that connection, which does not survive a
 * snapshot, and is not saved. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/hostfs.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/state.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtqueue.h"

#define VIRTIO_CONSOLE_F_MULTIPORT 1

/* Control events (§5.3.6.2). */
enum {
    CON_DEVICE_READY = 0,
    CON_DEVICE_ADD = 1,
    CON_PORT_READY = 3,
    CON_CONSOLE_PORT = 4,
    CON_PORT_OPEN = 6,
    CON_PORT_NAME = 7,
};

#define CON_QUEUE_SIZE 128
#define CON_NPORTS     2
#define CON_NQUEUES    (2 + 2 * CON_NPORTS) /* port0 rx/tx, control rx/tx, port1 rx/tx */
#define CON_CTRL_RX    2
#define CON_CTRL_TX    3
#define CON_TX_LIMIT   (1u << 20) /* guest bytes held back while the host client is slow */
#define CON_CTRL_MAX   16         /* device-to-driver control messages waiting for buffers */
#define CON_NAME_MAX   64

struct con_ctrl_msg {
    uint32_t id;
    uint16_t event;
    uint16_t value;
};

struct con_port {
    unsigned id;
    const char *name; /* NULL for the console port */
    char *path;       /* host socket path, NULL: no host side (guest output is dropped) */
    int listen_fd;
    int client_fd;
    struct loop_fd *listen_h, *client_h;
    bool guest_ready; /* PORT_READY(1) received */
    bool guest_open;  /* the guest application has the port open */
    uint8_t *tx;      /* guest output not yet accepted by the host client */
    size_t tx_len;
};

struct virtio_console {
    struct virtio_dev *vdev;
    struct loop *loop;
    struct vdev_kick kick;
    pthread_mutex_t lock;
    bool active;
    bool quiesced; /* between quiesce() and resume(): no ring work */
    bool multiport;
    struct con_port ports[CON_NPORTS];
    struct {
        struct con_ctrl_msg msg;
        char name[CON_NAME_MAX];
        size_t name_len;
    } ctrl[CON_CTRL_MAX];
    unsigned nctrl;
};

static unsigned port_rxq(unsigned port)
{
    return port == 0 ? 0 : 2 + 2 * port;
}

static uint64_t con_features(void *dev)
{
    return 1ull << VIRTIO_CONSOLE_F_MULTIPORT;
}

/* struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr. */
static void con_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
    uint8_t cfg[12] = {0};
    uint32_t nports = CON_NPORTS;

    memcpy(cfg + 4, &nports, 4);
    memcpy(buf, cfg + off, len);
}

/* Queues a control message for the driver. Caller holds c->lock. */
static void con_ctrl_send(struct virtio_console *c, uint32_t id, uint16_t event, uint16_t value,
                          const char *name)
{
    if (c->nctrl == CON_CTRL_MAX) {
        log_guest("virtio-console: control queue overflow, message %u dropped", event);
        return;
    }
    c->ctrl[c->nctrl].msg = (struct con_ctrl_msg){id, event, value};
    c->ctrl[c->nctrl].name_len = name ? strlen(name) : 0;
    if (name)
        memcpy(c->ctrl[c->nctrl].name, name, c->ctrl[c->nctrl].name_len);
    c->nctrl++;
}

/* Delivers queued control messages while the driver has buffers. Caller holds c->lock. */
static void con_ctrl_flush(struct virtio_console *c)
{
    struct virtq *vq = virtio_get_queue(c->vdev, CON_CTRL_RX);
    static __thread struct virtq_req *req_site;
    struct virtq_req *req = virtq_req_for_thread(&req_site);
    unsigned sent = 0;

    if (!req || !virtq_ready(vq))
        return;
    while (sent < c->nctrl && virtq_pop(vq, req) > 0) {
        size_t n = virtq_req_write(req, 0, &c->ctrl[sent].msg, sizeof(c->ctrl[sent].msg));

        n += virtq_req_write(req, n, c->ctrl[sent].name, c->ctrl[sent].name_len);
        virtq_push(vq, req, (uint32_t)n);
        sent++;
    }
    if (sent) {
        memmove(c->ctrl, c->ctrl + sent, (c->nctrl - sent) * sizeof(c->ctrl[0]));
        c->nctrl -= sent;
        virtio_notify_queue(c->vdev, vq);
    }
}

static void con_port_announce(struct virtio_console *c, struct con_port *p)
{
    if (!p->name) {
        con_ctrl_send(c, p->id, CON_CONSOLE_PORT, 1, NULL);
        con_ctrl_send(c, p->id, CON_PORT_OPEN, 1, NULL);
        return;
    }
    con_ctrl_send(c, p->id, CON_PORT_NAME, 1, p->name);
    if (p->client_fd >= 0)
        con_ctrl_send(c, p->id, CON_PORT_OPEN, 1, NULL);
}

/* Messages from the driver. Caller holds c->lock. */
static void con_ctrl_receive(struct virtio_console *c)
{
    struct virtq *vq = virtio_get_queue(c->vdev, CON_CTRL_TX);
    static __thread struct virtq_req *req_site;
    struct virtq_req *req = virtq_req_for_thread(&req_site);
    bool pushed = false;

    if (!req || !virtq_ready(vq))
        return;
    while (virtq_pop(vq, req) > 0) {
        struct con_ctrl_msg m;

        if (virtq_req_read(req, 0, &m, sizeof(m)) == sizeof(m)) {
            struct con_port *p = m.id < CON_NPORTS ? &c->ports[m.id] : NULL;

            if (m.event == CON_DEVICE_READY && m.value == 1) {
                for (unsigned i = 0; i < CON_NPORTS; i++)
                    con_ctrl_send(c, i, CON_DEVICE_ADD, 0, NULL);
            } else if (m.event == CON_PORT_READY && p) {
                p->guest_ready = m.value == 1;
                if (p->guest_ready)
                    con_port_announce(c, p);
            } else if (m.event == CON_PORT_OPEN && p) {
                p->guest_open = m.value == 1;
            } else if (!p && m.event != CON_DEVICE_READY) {
                log_guest("virtio-console: control message %u for port %u ignored", m.event, m.id);
            }
        }
        virtq_push(vq, req, 0);
        pushed = true;
    }
    if (pushed)
        virtio_notify_queue(c->vdev, vq);
}

static void con_client_close(struct virtio_console *c, struct con_port *p)
{
    loop_remove_fd(c->loop, p->client_h);
    p->client_h = NULL;
    close(p->client_fd);
    p->client_fd = -1;
    p->tx_len = 0;
    if (p->name && p->guest_ready && c->active)
        con_ctrl_send(c, p->id, CON_PORT_OPEN, 0, NULL);
}

/* Writes held-back guest output to the host client. Caller holds c->lock. */
static void con_tx_drain(struct virtio_console *c, struct con_port *p)
{
    while (p->tx_len && p->client_fd >= 0) {
        ssize_t n = write(p->client_fd, p->tx, p->tx_len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            con_client_close(c, p);
            return;
        }
        memmove(p->tx, p->tx + n, p->tx_len - (size_t)n);
        p->tx_len -= (size_t)n;
    }
}

/* Guest output on port p. Stops taking buffers while the host client is behind. */
static void con_port_tx(struct virtio_console *c, struct con_port *p)
{
    struct virtq *vq = virtio_get_queue(c->vdev, port_rxq(p->id) + 1);
    static __thread struct virtq_req *req_site;
    struct virtq_req *req = virtq_req_for_thread(&req_site);
    bool pushed = false;

    if (!req || !virtq_ready(vq))
        return;
    con_tx_drain(c, p);
    while (p->tx_len < CON_TX_LIMIT && virtq_pop(vq, req) > 0) {
        size_t room = CON_TX_LIMIT - p->tx_len;
        size_t n = req->out_len < room ? req->out_len : room;

        if (p->client_fd >= 0) {
            virtq_req_read(req, 0, p->tx + p->tx_len, n);
            p->tx_len += n;
        }
        virtq_push(vq, req, 0);
        pushed = true;
        con_tx_drain(c, p);
    }
    if (pushed)
        virtio_notify_queue(c->vdev, vq);
    if (p->client_h)
        loop_mod_fd(c->loop, p->client_h, LOOP_IN | (p->tx_len ? LOOP_OUT : 0));
}

/* Host input on port p, straight into the guest's receive buffers. */
static void con_port_rx(struct virtio_console *c, struct con_port *p)
{
    struct virtq *vq = virtio_get_queue(c->vdev, port_rxq(p->id));
    static __thread struct virtq_req *req_site;
    struct virtq_req *req = virtq_req_for_thread(&req_site);
    bool pushed = false;

    if (!req || !virtq_ready(vq) || p->client_fd < 0)
        return;
    for (;;) {
        int r = virtq_pop(vq, req);
        ssize_t n;

        if (r <= 0) {
            /* No buffer: stop reading until the driver adds some (it kicks the rx queue). */
            loop_mod_fd(c->loop, p->client_h, p->tx_len ? LOOP_OUT : 0);
            break;
        }
        if (req->in_len == 0) {
            /* Nothing writable: readv would return 0, which must not read as the client's
             * end of file. Give the buffer back empty. */
            virtq_push(vq, req, 0);
            pushed = true;
            continue;
        }
        n = readv(p->client_fd, req->in, (int)req->nin);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            virtq_unpop(vq);
            loop_mod_fd(c->loop, p->client_h, LOOP_IN | (p->tx_len ? LOOP_OUT : 0));
            break;
        }
        if (n <= 0) {
            virtq_unpop(vq);
            con_client_close(c, p);
            break;
        }
        virtq_push(vq, req, (uint32_t)n);
        pushed = true;
    }
    if (pushed)
        virtio_notify_queue(c->vdev, vq);
}

/* Everything the device may have to do; loop thread, c->lock held. */
static void con_process_locked(struct virtio_console *c)
{
    if (!c->active || c->quiesced)
        return;
    if (c->multiport)
        con_ctrl_receive(c);
    for (unsigned i = 0; i < (c->multiport ? CON_NPORTS : 1u); i++) {
        con_port_tx(c, &c->ports[i]);
        con_port_rx(c, &c->ports[i]);
    }
    if (c->multiport)
        con_ctrl_flush(c);
}

static void con_on_kick(void *opaque)
{
    struct virtio_console *c = opaque;

    pthread_mutex_lock(&c->lock);
    con_process_locked(c);
    pthread_mutex_unlock(&c->lock);
}

static void con_on_client(void *opaque, int fd, unsigned revents)
{
    struct con_port *p = opaque;
    struct virtio_console *c =
        (struct virtio_console *)((char *)(p - p->id) - offsetof(struct virtio_console, ports));

    pthread_mutex_lock(&c->lock);
    if (!c->active || c->quiesced) {
        /* Before the driver is up or while quiesced: keep the connection, stop watching until
         * activate() or resume(). */
        if (revents & (LOOP_HUP | LOOP_ERR))
            con_client_close(c, p);
        else
            loop_mod_fd(c->loop, p->client_h, 0);
    } else {
        if (revents & LOOP_OUT)
            con_tx_drain(c, p);
        if (revents & (LOOP_IN | LOOP_HUP | LOOP_ERR))
            con_port_rx(c, p);
        con_process_locked(c);
    }
    pthread_mutex_unlock(&c->lock);
}

static void con_on_accept(void *opaque, int fd, unsigned revents)
{
    struct con_port *p = opaque;
    struct virtio_console *c =
        (struct virtio_console *)((char *)(p - p->id) - offsetof(struct virtio_console, ports));
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (cfd < 0)
        return;
    pthread_mutex_lock(&c->lock);
    if (p->client_fd >= 0) {
        /* One client at a time: a second connection is refused by closing it. */
        close(cfd);
    } else if (loop_add_fd(c->loop, cfd, c->active && !c->quiesced ? LOOP_IN : 0, con_on_client, p,
                           &p->client_h) == 0) {
        p->client_fd = cfd;
        if (p->name && p->guest_ready && c->active)
            con_ctrl_send(c, p->id, CON_PORT_OPEN, 1, NULL);
        con_process_locked(c);
    } else {
        close(cfd);
    }
    pthread_mutex_unlock(&c->lock);
}

static void con_queue_notify(void *dev, unsigned q)
{
    vdev_kick_signal(&((struct virtio_console *)dev)->kick);
}

static int con_activate(void *dev, uint64_t features)
{
    struct virtio_console *c = dev;

    pthread_mutex_lock(&c->lock);
    c->active = true;
    c->multiport = features & (1ull << VIRTIO_CONSOLE_F_MULTIPORT);
    for (unsigned i = 0; i < CON_NPORTS; i++) {
        if (c->ports[i].client_h)
            loop_mod_fd(c->loop, c->ports[i].client_h, LOOP_IN);
    }
    pthread_mutex_unlock(&c->lock);
    vdev_kick_signal(&c->kick);
    return 0;
}

static void con_reset(void *dev)
{
    struct virtio_console *c = dev;

    pthread_mutex_lock(&c->lock);
    c->active = false;
    c->nctrl = 0;
    for (unsigned i = 0; i < CON_NPORTS; i++) {
        c->ports[i].guest_ready = false;
        c->ports[i].guest_open = false;
        c->ports[i].tx_len = 0;
    }
    pthread_mutex_unlock(&c->lock);
}

/* Saving thread, register lock held; never the loop thread, which may be waiting for `lock`
 * in a callback (that callback then sees the flag). */
static void con_quiesce(void *dev)
{
    struct virtio_console *c = dev;

    pthread_mutex_lock(&c->lock);
    c->quiesced = true;
    pthread_mutex_unlock(&c->lock);
}

static void con_resume(void *dev)
{
    struct virtio_console *c = dev;

    pthread_mutex_lock(&c->lock);
    c->quiesced = false;
    for (unsigned i = 0; i < CON_NPORTS && c->active; i++) {
        struct con_port *p = &c->ports[i];

        if (p->client_h)
            loop_mod_fd(c->loop, p->client_h, LOOP_IN | (p->tx_len ? LOOP_OUT : 0));
    }
    pthread_mutex_unlock(&c->lock);
    vdev_kick_signal(&c->kick);
}

#define CON_STATE_VERSION 1

/* Version 1: u32 ports; per port bool guest_ready, bool guest_open, bool host_open (a client
 * is connected, which is what the guest has been or will be told); u32 pending control
 * messages, each u32 id, u16 event, u16 value, u32 name length, name bytes. */
static void con_save(void *dev, struct sbuf *out)
{
    struct virtio_console *c = dev;

    pthread_mutex_lock(&c->lock);
    sbuf_put_u32(out, CON_NPORTS);
    for (unsigned i = 0; i < CON_NPORTS; i++) {
        sbuf_put_bool(out, c->ports[i].guest_ready);
        sbuf_put_bool(out, c->ports[i].guest_open);
        sbuf_put_bool(out, c->ports[i].client_fd >= 0);
    }
    sbuf_put_u32(out, c->nctrl);
    for (unsigned i = 0; i < c->nctrl; i++) {
        sbuf_put_u32(out, c->ctrl[i].msg.id);
        sbuf_put_u16(out, c->ctrl[i].msg.event);
        sbuf_put_u16(out, c->ctrl[i].msg.value);
        sbuf_put_u32(out, (uint32_t)c->ctrl[i].name_len);
        sbuf_put_bytes(out, c->ctrl[i].name, c->ctrl[i].name_len);
    }
    pthread_mutex_unlock(&c->lock);
}

static int con_load(void *dev, struct scur *in, uint32_t version)
{
    struct virtio_console *c = dev;
    bool ready[CON_NPORTS], open[CON_NPORTS], host_open[CON_NPORTS];
    uint32_t nports = scur_get_u32(in), nctrl;

    if (scur_ok(in))
        return -1;
    if (nports != CON_NPORTS)
        return scur_fail(in, "ports: %" PRIu32 " saved, this device has %u", nports, CON_NPORTS);
    for (unsigned i = 0; i < CON_NPORTS; i++) {
        ready[i] = scur_get_bool(in);
        open[i] = scur_get_bool(in);
        host_open[i] = scur_get_bool(in);
    }
    nctrl = scur_get_u32(in);
    if (scur_ok(in))
        return -1;
    if (nctrl > CON_CTRL_MAX)
        return scur_fail(in, "control messages: %" PRIu32 " pending, at most %u", nctrl,
                         CON_CTRL_MAX);
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < nctrl; i++) {
        uint32_t id = scur_get_u32(in), name_len;
        uint16_t event = scur_get_u16(in), value = scur_get_u16(in);

        name_len = scur_get_u32(in);
        if (scur_ok(in))
            goto fail;
        /* Only what con_ctrl_send() queues: device-to-driver events (§5.3.6.2). */
        if (id >= CON_NPORTS || value > 1 ||
            (event != CON_DEVICE_ADD && event != CON_CONSOLE_PORT && event != CON_PORT_OPEN &&
             event != CON_PORT_NAME)) {
            scur_fail(in,
                      "control message %u: port %" PRIu32 ", event %u, value %u is not one "
                      "this device sends",
                      i, id, (unsigned)event, (unsigned)value);
            goto fail;
        }
        if (name_len > CON_NAME_MAX) {
            scur_fail(in, "control message %u: name of %" PRIu32 " bytes, at most %u", i, name_len,
                      CON_NAME_MAX);
            goto fail;
        }
        c->ctrl[i].msg = (struct con_ctrl_msg){id, event, value};
        scur_get_bytes(in, c->ctrl[i].name, name_len);
        c->ctrl[i].name_len = name_len;
    }
    if (scur_ok(in))
        goto fail;
    c->nctrl = nctrl;
    for (unsigned i = 0; i < CON_NPORTS; i++) {
        struct con_port *p = &c->ports[i];

        p->guest_ready = ready[i];
        p->guest_open = open[i];
        /* The host side here is not the one the guest was told about: correct it. */
        if (p->name && p->guest_ready && host_open[i] != (p->client_fd >= 0))
            con_ctrl_send(c, p->id, CON_PORT_OPEN, p->client_fd >= 0, NULL);
    }
    pthread_mutex_unlock(&c->lock);
    return 0;

fail:
    c->nctrl = 0;
    pthread_mutex_unlock(&c->lock);
    return -1;
}

static const struct virtio_device_ops con_ops = {
    .name = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .num_queues = CON_NQUEUES,
    .queue_max = CON_QUEUE_SIZE,
    .config_size = 12,
    .features = con_features,
    .config_read = con_config_read,
    .activate = con_activate,
    .queue_notify = con_queue_notify,
    .reset = con_reset,
    .quiesce = con_quiesce,
    .resume = con_resume,
    .state_version = CON_STATE_VERSION,
    .save = con_save,
    .load = con_load,
};

/* Listens on a unix socket at `path`, replacing a stale socket file (never another file). */
static int con_listen(const char *path, char *err, const char *what)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, VDEV_ERR_LEN, "%s %s: path is longer than %zu bytes", what, path,
                 sizeof(sa.sun_path) - 1);
        return -1;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, VDEV_ERR_LEN, "%s %s: exists and is not a socket", what, path);
            return -1;
        }
        unlink(path);
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
        snprintf(err, VDEV_ERR_LEN, "%s %s: cannot listen: %s", what, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void con_free(struct virtio_console *c)
{
    for (unsigned i = 0; i < CON_NPORTS; i++) {
        struct con_port *p = &c->ports[i];

        if (p->client_h)
            loop_remove_fd(c->loop, p->client_h);
        if (p->client_fd >= 0)
            close(p->client_fd);
        if (p->listen_h)
            loop_remove_fd(c->loop, p->listen_h);
        if (p->listen_fd >= 0) {
            close(p->listen_fd);
            hostfs_unlink(p->path);
        }
        free(p->path);
        free(p->tx);
    }
    vdev_kick_destroy(&c->kick);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* sun_path holds 108 bytes with the NUL (unix(7)). */
static const struct vdev_opt con_options[] = {
    {.key = "sock", .json = "sock", .kind = VDEV_OPT_STR, .max_len = 107},
    {.key = "agent", .json = "agent", .kind = VDEV_OPT_STR, .max_len = 107},
    {NULL},
};

static struct vdev_type con_type;

/* A clone listens in its own folder: the same socket names under dir. */
static int con_clone(json_t *conf, const char *dir, char *err)
{
    for (const struct vdev_opt *o = con_options; o->key; o++) {
        const char *old = json_string_value(json_object_get(conf, o->json));
        const char *base;
        char *path;
        int r;

        if (!old)
            continue;
        base = strrchr(old, '/') ? strrchr(old, '/') + 1 : old;
        if (asprintf(&path, "%s/%s", dir, base) < 0)
            return -ENOMEM;
        r = vdev_conf_set(&con_type, conf, o->json, json_string(path), err);
        free(path);
        if (r)
            return r;
    }
    return 0;
}

static int con_create(const struct vdev_env *env, const char *opts, void **dev,
                      const struct virtio_device_ops **ops, char *err)
{
    static const char *const what[CON_NPORTS] = {"--device console,sock=", "--agent-sock"};
    static const char *const keys[CON_NPORTS] = {"sock", "agent"};
    struct virtio_console *c;

    if (vdev_opts_check(&con_type, opts, err))
        return -EINVAL;
    if (!env->loop) {
        snprintf(err, VDEV_ERR_LEN, "--device console: no event loop");
        return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    c->loop = env->loop;
    c->kick.fd = -1;
    for (unsigned i = 0; i < CON_NPORTS; i++) {
        struct con_port *p = &c->ports[i];
        char path[108];

        p->id = i;
        p->name = i == 1 ? "org.tessera.agent.0" : NULL;
        p->listen_fd = p->client_fd = -1;
        p->tx = malloc(CON_TX_LIMIT);
        if (!p->tx)
            goto fail;
        switch (opt_get(opts, keys[i], path, sizeof(path))) {
        case 0: continue;
        case 1: break;
        default:
            snprintf(err, VDEV_ERR_LEN, "%s: the path is longer than %zu bytes", what[i],
                     sizeof(path) - 1);
            goto fail;
        }
        p->listen_fd = con_listen(path, err, what[i]);
        if (p->listen_fd < 0)
            goto fail;
        p->path = xstrdup(path);
        if (loop_add_fd(c->loop, p->listen_fd, LOOP_IN, con_on_accept, p, &p->listen_h))
            goto fail;
    }
    if (vdev_kick_init(&c->kick, c->loop, con_on_kick, c))
        goto fail;
    *dev = c;
    *ops = &con_ops;
    return 0;

fail:
    if (!err[0])
        snprintf(err, VDEV_ERR_LEN, "--device console: cannot set up: %s", strerror(errno));
    con_free(c);
    return -EINVAL;
}

static void con_attach(void *dev, struct virtio_dev *vdev)
{
    ((struct virtio_console *)dev)->vdev = vdev;
}

static void con_destroy(void *dev)
{
    con_free(dev);
}

static struct vdev_type con_type = {
    .name = "console",
    .summary = "virtio-console: hvc0 and the guest agent port, each on a host unix socket",
    .usage = "--device console[,sock=PATH][,agent=PATH]  (--agent-sock PATH adds the agent)",
    .create = con_create,
    .attach = con_attach,
    .destroy = con_destroy,
    .flag = "--device console",
    .options = con_options,
    .clone = con_clone,
};
VDEV_TYPE_REGISTER(con_type)
