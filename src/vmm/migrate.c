/* Both ends of the migration wire (migrate.h). */
#include "vmm/migrate.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/time.h"
#include "block/block.h"
#include "hw/guest_mem.h"
#include "machine/virt.h"
#include "vmm/stream.h"
#include "vmm/vmconfig.h"
#include "vmm/vmstate_int.h"

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, VM_MIGRATE_ERR_LEN, fmt, ap);
    va_end(ap);
}

int vm_migrate_parse_uri(const char *uri, bool *tls, char host[VM_URI_HOST_MAX],
                         char port[VM_URI_PORT_MAX])
{
    const char *colon;
    size_t hl;

    if (strncmp(uri, "tcp:", 4) && strncmp(uri, "tls:", 4))
        return -EINVAL;
    colon = strrchr(uri + 4, ':');
    if (!colon || !colon[1] || strlen(colon + 1) >= VM_URI_PORT_MAX ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -EINVAL;
    *tls = uri[1] == 'l';
    hl = (size_t)(colon - (uri + 4));
    if (hl >= 2 && uri[4] == '[' && colon[-1] == ']') { /* [IPv6 address] */
        uri++;
        hl -= 2;
    }
    if (hl >= VM_URI_HOST_MAX)
        return -EINVAL;
    memcpy(host, uri + 4, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, strlen(colon + 1) + 1);
    return 0;
}

/* Checks the TLS files against the scheme: none for tcp:, all three (and loadable) for tls:.
 * `api`: name them as the API's fields (tls_cert) in err, else as options (--tls-cert). */
static int check_tls(bool tls, const struct transport_tls *f, const char *uri, bool api, char *err)
{
    char terr[TRANSPORT_ERR_LEN];
    bool any = f->cert || f->key || f->ca, all = f->cert && f->key && f->ca;

    if (!tls && any) {
        set_err(err, "'%s' is plain TCP: the TLS files apply to tls:HOST:PORT", uri);
        return -EINVAL;
    }
    if (tls && !all) {
        set_err(err, "'%s' needs %s", uri,
                api ? "tls_cert, tls_key and tls_ca" : "--tls-cert, --tls-key and --tls-ca");
        return -EINVAL;
    }
    if (tls && transport_tls_check(f, terr)) {
        set_err(err, "%s", terr);
        return -EINVAL;
    }
    return 0;
}

/* ---- source side ---- */

#define MIG_FILE_MAX PATH_MAX

struct vm_migration {
    struct virt_machine *m;
    pthread_t thread;
    pthread_t throttler;
    bool throttler_running;
    enum vm_migrate_mode mode;
    unsigned downtime_ms;
    bool copy_disks;
    struct disk_copy *disks; /* copy_disks: one per disk device */
    unsigned ndisks;
    char host[VM_URI_HOST_MAX], port[VM_URI_PORT_MAX];
    char uri[8 + VM_URI_HOST_MAX + VM_URI_PORT_MAX];
    bool tls;
    char cert[MIG_FILE_MAX], key[MIG_FILE_MAX], ca[MIG_FILE_MAX];
    unsigned timeout_s; /* progress timeout */

    pthread_mutex_t lock; /* the fields below, and the right to pause the machine */
    pthread_mutex_t pause_lock;
    enum { MIG_ACTIVE, MIG_COMPLETED, MIG_FAILED } status;
    int fd;              /* the connection's socket once made, else -1 */
    struct transport *t; /* ... and its transport; the thread owns both, cancel only cuts */
    bool cancelled;      /* cancel or free asked; the thread fails at its next step */
    bool final;          /* in the stop-and-copy: cancel is refused */
    unsigned rounds;
    unsigned throttle_pct;
    bool stop_throttle;
    bool reported; /* a status query has seen the outcome */
    uint64_t bytes, remaining, start_ns, total_ns, downtime_ns;
    char error[VM_MIGRATE_ERR_LEN];
};

static const char *const mode_names[] = {"live", "suspend", "cold"};

/* A stop-and-copy expected to take less than this is not worth another round. */
#define MIG_DOWNTIME_FLOOR_MS 10

static void mig_fail(struct vm_migration *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void mig_fail(struct vm_migration *g, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&g->lock);
    if (!g->error[0]) {
        va_start(ap, fmt);
        vsnprintf(g->error, sizeof(g->error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&g->lock);
}

/* ---- block migration, source side ----
 *
 * Each disk's writes are tracked in a dirty log of 4 KiB blocks from the start (everything
 * marked, so the first pass sends the whole disk). Every round sends the blocks written since
 * the last one, read under the disk's device lock while the guest runs; the stop-and-copy
 * sends the rest with the devices quiesced. The target writes them into new images, so the
 * source's disks are never handed over: on failure the VM runs on with them untouched. */

#define DISK_BLOCK_SHIFT 12

struct disk_copy {
    unsigned slot;
    struct virt_disk_info info; /* its image: path and format, for errors and the header */
    uint64_t length;
    struct dirty_log log;
    uint64_t *bits; /* blocks selected for the next send */
    bool sent_once; /* the first pass skips zeroes: the target's new image reads as zero */
};

static uint64_t disk_blocks(const struct disk_copy *d)
{
    return (d->length + (1u << DISK_BLOCK_SHIFT) - 1) >> DISK_BLOCK_SHIFT;
}

/* Starts tracking every disk's writes. 0, or -1 with the reason in g->error. */
static int disks_track(struct vm_migration *g)
{
    const struct virt_config *cfg = virt_get_config(g->m);

    g->disks = calloc(VIRT_VIRTIO_SLOTS, sizeof(*g->disks));
    if (!g->disks) {
        mig_fail(g, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < cfg->ndevices; i++) {
        struct disk_copy *d = &g->disks[g->ndisks];

        if (virt_disk_info(g->m, i, &d->info))
            continue;
        d->slot = i;
        d->length = d->info.length;
        if (dirty_log_init(&d->log, disk_blocks(d)) ||
            !(d->bits = calloc((disk_blocks(d) + 63) / 64, sizeof(uint64_t)))) {
            dirty_log_destroy(&d->log);
            mig_fail(g, "out of memory for the dirty map of %s", d->info.path);
            return -1;
        }
        virt_disk_track_writes(g->m, i, &d->log);
        dirty_log_start(&d->log); /* after: a write in between is covered by the full mark */
        g->ndisks++;
    }
    return 0;
}

static void disks_untrack(struct vm_migration *g)
{
    for (unsigned k = 0; k < g->ndisks; k++) {
        struct disk_copy *d = &g->disks[k];

        virt_disk_track_writes(g->m, d->slot, NULL);
        dirty_log_destroy(&d->log);
        free(d->bits);
    }
    free(g->disks);
    g->disks = NULL;
    g->ndisks = 0;
}

/* Takes the blocks written since the last call into each disk's selection; returns how many
 * bytes are selected in all. */
static uint64_t disks_collect(struct vm_migration *g)
{
    uint64_t blocks = 0;

    for (unsigned k = 0; k < g->ndisks; k++)
        blocks += dirty_log_collect(&g->disks[k].log, g->disks[k].bits);
    return blocks << DISK_BLOCK_SHIFT;
}

/* Sends the selected blocks of every disk, in runs of up to STREAM_DISK_CHUNK, each read under
 * the device lock; clears the selection. 0 or -1 (the writer or g->error says why). */
static int disks_send(struct vm_migration *g, struct stream_writer *w, uint8_t *buf)
{
    const uint64_t per_chunk = STREAM_DISK_CHUNK >> DISK_BLOCK_SHIFT;

    for (unsigned k = 0; k < g->ndisks; k++) {
        struct disk_copy *d = &g->disks[k];
        uint64_t n = disk_blocks(d), b = 0;

        while (b < n) {
            uint64_t first, off, len;
            int ret;

            if (!d->bits[b / 64]) {
                b = (b / 64 + 1) * 64;
                continue;
            }
            if (!(d->bits[b / 64] >> (b % 64) & 1)) {
                b++;
                continue;
            }
            for (first = b; b < n && b - first < per_chunk && (d->bits[b / 64] >> (b % 64) & 1);
                 b++)
                d->bits[b / 64] &= ~(UINT64_C(1) << (b % 64));
            off = first << DISK_BLOCK_SHIFT;
            len = ((b - first) << DISK_BLOCK_SHIFT);
            if (len > d->length - off)
                len = d->length - off;
            ret = virt_disk_read(g->m, d->slot, off, buf, (size_t)len);
            if (ret < 0) {
                mig_fail(g, "%s: reading %" PRIu64 "+%" PRIu64 " for the target failed: %s",
                         d->info.path, off, len, strerror(-ret));
                return -1;
            }
            if (!d->sent_once && buf[0] == 0 && !memcmp(buf, buf + 1, (size_t)len - 1))
                continue; /* zero, as the target's new image already reads */
            if (stream_write_disk(w, d->slot, off, buf, (size_t)len))
                return -1;
        }
        d->sent_once = true;
    }
    return 0;
}

/* The header document of a migration that copies the disks: each disk names its format. */
static int copy_disks_edit(struct vmconfig *vc, void *opaque, char *err)
{
    struct vm_migration *g = opaque;

    for (unsigned k = 0; k < g->ndisks; k++) {
        struct disk_copy *d = &g->disks[k];

        if (conf_set_str(vc, d->slot, "format", d->info.format, err))
            return -EINVAL;
    }
    return 0;
}

/* Reads one line ("OK", "ERR why", "READY") into line, waiting up to `secs` for each byte.
 * Returns its length (0 when none came). */
static size_t mig_read_line(struct vm_migration *g, unsigned secs, char line[VM_MIGRATE_ERR_LEN])
{
    size_t n = 0;
    struct timeval tv = {(time_t)secs, 0};

    setsockopt(g->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (n < VM_MIGRATE_ERR_LEN - 1) {
        if (transport_read(g->t, line + n, 1) <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    return n;
}

/* Connects to the target with the progress timeout on every socket operation and, for tls:,
 * runs the handshake and waits for the target's READY. 0 with g->t set, or -1 with the reason
 * in g->error. */
static int mig_connect(struct vm_migration *g)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    struct timeval tv = {(time_t)g->timeout_s, 0};
    struct transport *t = NULL;
    char terr[TRANSPORT_ERR_LEN], line[VM_MIGRATE_ERR_LEN];
    int fd = -1, e = getaddrinfo(g->host, g->port, &hints, &res), ret;

    if (e) {
        mig_fail(g, "%s: %s", g->uri, gai_strerror(e));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        /* SO_SNDTIMEO bounds connect() too (socket(7)). */
        if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
            connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        e = errno == EINPROGRESS ? ETIMEDOUT : errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        mig_fail(g, "%s: cannot connect: %s (is `tessera run --incoming` listening?)", g->uri,
                 strerror(e));
        return -1;
    }
    pthread_mutex_lock(&g->lock);
    g->fd = fd;
    pthread_mutex_unlock(&g->lock);
    if (g->tls) {
        struct transport_tls files = {g->cert, g->key, g->ca};

        ret = transport_tls_client(fd, &files, g->host, &t, terr);
        if (ret) {
            pthread_mutex_lock(&g->lock);
            g->fd = -1; /* before the number can be reused: cancel shuts g->fd down */
            pthread_mutex_unlock(&g->lock);
            close(fd);
            mig_fail(g, "%s: %s", g->uri, terr);
            return -1;
        }
    } else if (transport_plain(fd, true, &t)) {
        close(fd);
        pthread_mutex_lock(&g->lock);
        g->fd = -1;
        pthread_mutex_unlock(&g->lock);
        mig_fail(g, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&g->lock);
    g->t = t;
    if (g->cancelled)
        transport_shutdown(t);
    pthread_mutex_unlock(&g->lock);
    /* Over TLS 1.3 the client's handshake ends before the server has checked the client's
     * certificate: READY says it has. */
    if (g->tls && (mig_read_line(g, g->timeout_s, line), strcmp(line, "READY"))) {
        if (!strncmp(line, "ERR ", 4))
            mig_fail(g, "%s: the target refused: %s", g->uri, line + 4);
        else
            mig_fail(g,
                     "%s: the target did not accept our certificate (%s; is it from the CA the "
                     "target trusts?)",
                     g->uri, line[0] ? line : "the connection closed");
        return -1;
    }
    return 0;
}

/* Auto-converge: while throttle_pct > 0, keeps the vCPUs stopped that share of every 20 ms. */
static void *mig_throttle_thread(void *opaque)
{
    struct vm_migration *g = opaque;

    for (;;) {
        unsigned pct;
        bool stop;
        struct timespec ts;

        pthread_mutex_lock(&g->lock);
        pct = g->throttle_pct;
        stop = g->stop_throttle;
        pthread_mutex_unlock(&g->lock);
        if (stop)
            break;
        if (pct) {
            pthread_mutex_lock(&g->pause_lock);
            if (virt_pause(g->m) == 0) {
                ts = (struct timespec){0, (long)pct * 200000L};
                nanosleep(&ts, NULL);
                virt_resume(g->m);
            }
            pthread_mutex_unlock(&g->pause_lock);
        }
        ts = (struct timespec){0, (long)(100 - (pct ? pct : 50)) * 200000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void mig_stop_throttle(struct vm_migration *g)
{
    if (!g->throttler_running)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop_throttle = true;
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->throttler, NULL);
    g->throttler_running = false;
}

/* Waits up to 60 s for the target's verdict on the whole stream. */
static int mig_await_ack(struct vm_migration *g)
{
    char line[VM_MIGRATE_ERR_LEN];
    size_t n;

    transport_end_writes(g->t);
    n = mig_read_line(g, 60, line);
    if (!strcmp(line, "OK"))
        return 0;
    if (!strncmp(line, "ERR ", 4))
        mig_fail(g, "the target refused the stream: %s", line + 4);
    else
        mig_fail(g, "the target did not confirm (%s)", n ? line : "connection closed");
    return -1;
}

/* True once cancel or free has asked this migration to stop. */
static bool mig_cancelled(struct vm_migration *g)
{
    bool c;

    pthread_mutex_lock(&g->lock);
    c = g->cancelled;
    pthread_mutex_unlock(&g->lock);
    return c;
}

static void *mig_thread(void *opaque)
{
    struct vm_migration *g = opaque;
    struct virt_machine *m = g->m;
    struct stream_writer *w = NULL;
    struct virt_disk_info released[VIRT_VIRTIO_SLOTS] = {{0}}; /* path set: handed over */
    char *json = NULL, herr[VMSTATE_ERR_LEN];
    uint64_t *bits = bitmap_alloc(m), t_pause = 0;
    uint8_t *dbuf = NULL;
    bool paused = false, quiesced = false, logging = false;

    if (!bits) {
        mig_fail(g, "out of memory");
        goto failed;
    }
    if (mig_connect(g) || stream_writer_create_on(g->t, "migration stream", 1, &w))
        goto io_failed;
    if (g->copy_disks) {
        if (disks_track(g) || !(dbuf = malloc(STREAM_DISK_CHUNK)))
            goto failed;
        json = header_config(m, copy_disks_edit, g, herr);
    } else {
        json = header_config(m, NULL, NULL, herr);
    }
    if (!json)
        log_error("migration: %s", herr);
    if (!json || stream_write_header(w, json, g->copy_disks ? STREAM_F_DISKS : 0))
        goto io_failed;
    for (unsigned k = 0; k < g->ndisks; k++) {
        if (stream_write_disk_size(w, g->disks[k].slot, g->disks[k].length))
            goto io_failed;
    }

    if (g->mode == VM_MIGRATE_LIVE) {
        uint64_t prev_dirty = UINT64_MAX;

        pthread_mutex_lock(&g->pause_lock);
        if (virt_pause(m)) {
            pthread_mutex_unlock(&g->pause_lock);
            mig_fail(g, "the VM cannot be paused now");
            goto failed;
        }
        virt_dirty_log(m, true);
        logging = true;
        virt_harvest_dirty(m, bits);
        virt_resume(m);
        pthread_mutex_unlock(&g->pause_lock);
        g->throttler_running = !pthread_create(&g->throttler, NULL, mig_throttle_thread, g);
        for (;;) {
            uint64_t t0 = time_now_ns(), b0 = stream_bytes_written(w), sent = 0, dirty, disk_bytes;
            double ns_per_byte, est_ms;

            uint64_t b_ram;

            disks_collect(g);
            if (disks_send(g, w, dbuf))
                goto io_failed;
            b_ram = stream_bytes_written(w);
            if (stream_write_ram(w, virt_ram(m), bits, &sent, NULL) || stream_flush(w))
                goto io_failed;
            pthread_mutex_lock(&g->lock);
            g->rounds++;
            g->bytes = stream_bytes_written(w);
            pthread_mutex_unlock(&g->lock);
            ns_per_byte = (double)(time_now_ns() - t0) / (double)(g->bytes - b0 + 1);

            pthread_mutex_lock(&g->pause_lock);
            virt_pause(m);
            t_pause = time_now_ns();
            memset(bits, 0, bitmap_bytes(m)); /* this round's pages are sent */
            dirty = virt_harvest_dirty(m, bits);
            disk_bytes = disks_collect(g);
            /* Expected stop-and-copy time at this round's cost per byte sent. */
            est_ms = ((double)dirty * ((double)(g->bytes - b_ram) / (double)(sent ? sent : 1)) +
                      (double)disk_bytes) *
                     ns_per_byte / 1e6;
            pthread_mutex_lock(&g->lock);
            g->remaining = dirty;
            pthread_mutex_unlock(&g->lock);
            log_info("migration: round %u sent %" PRIu64 " pages, %" PRIu64
                     " dirty now and %" PRIu64 " KiB of disk (about %.0f ms to copy), "
                     "throttle %u%%",
                     g->rounds, sent, dirty, disk_bytes >> 10, est_ms, g->throttle_pct);
            /* Stop once the rest fits the limit, unless another round still pays: the dirty
             * set fell to half of what this round sent, so the next stop is shorter. */
            if ((est_ms <= g->downtime_ms &&
                 (dirty * 2 > sent || est_ms < MIG_DOWNTIME_FLOOR_MS || g->rounds >= 30)) ||
                g->rounds >= 60) {
                paused = true; /* stop-and-copy: keep the vCPUs stopped */
                pthread_mutex_unlock(&g->pause_lock);
                break;
            }
            virt_resume(m);
            pthread_mutex_unlock(&g->pause_lock);
            if (mig_cancelled(g))
                goto io_failed;
            /* Not converging: the guest dirties pages about as fast as we send them. */
            dirty += disk_bytes >> DISK_BLOCK_SHIFT;
            if (g->rounds >= 2 && dirty * 4 > prev_dirty * 3) {
                pthread_mutex_lock(&g->lock);
                g->throttle_pct = g->throttle_pct ? g->throttle_pct + 10 : 30;
                if (g->throttle_pct > 95)
                    g->throttle_pct = 95;
                pthread_mutex_unlock(&g->lock);
            }
            prev_dirty = dirty;
        }
        mig_stop_throttle(g);
    } else {
        pthread_mutex_lock(&g->pause_lock);
        if (virt_pause(m)) {
            pthread_mutex_unlock(&g->pause_lock);
            mig_fail(g, "the VM cannot be paused now");
            goto failed;
        }
        pthread_mutex_unlock(&g->pause_lock);
        paused = true;
        t_pause = time_now_ns();
        pthread_mutex_lock(&g->lock);
        g->rounds = g->mode == VM_MIGRATE_SUSPEND; /* one pass over RAM */
        pthread_mutex_unlock(&g->lock);
    }

    /* Stop-and-copy: devices finish what they hold, the last dirty pages, the disks' locks
     * handed over, then the device state. From here the target may get the whole stream, so
     * only the progress timeout or the process's end cuts it. */
    pthread_mutex_lock(&g->lock);
    g->final = !g->cancelled;
    pthread_mutex_unlock(&g->lock);
    if (!g->final)
        goto io_failed;
    virt_quiesce(m);
    quiesced = true;
    /* The devices are quiet: the disks' last writes go out, or (shared storage) their locks
     * are handed to the target before it opens them. */
    disks_collect(g);
    if (disks_send(g, w, dbuf))
        goto io_failed;
    for (unsigned i = 0; i < virt_get_config(m)->ndevices && !g->copy_disks; i++) {
        struct virt_disk_info *r = &released[i];

        if (virt_disk_info(m, i, r) == 0 && !r->readonly) {
            int e = virt_disk_release(m, i);

            if (e < 0) {
                mig_fail(g, "%s: flush failed: %s", r->path, strerror(-e));
                goto failed;
            }
        }
    }
    log_debug("migration: +%.1f ms devices quiet, disks handed over",
              (double)(time_now_ns() - t_pause) / 1e6);
    if (g->mode == VM_MIGRATE_COLD
            ? stream_write_end(w)
            : write_stopped_state(m, w, g->mode == VM_MIGRATE_LIVE ? bits : NULL))
        goto io_failed;
    pthread_mutex_lock(&g->lock);
    g->bytes = stream_bytes_written(w);
    pthread_mutex_unlock(&g->lock);
    log_debug("migration: +%.1f ms stream sent", (double)(time_now_ns() - t_pause) / 1e6);
    if (mig_await_ack(g))
        goto failed;
    disks_untrack(g); /* before this VM exits and its devices go */

    pthread_mutex_lock(&g->lock);
    g->status = MIG_COMPLETED;
    g->downtime_ns = time_now_ns() - t_pause;
    g->total_ns = time_now_ns() - g->start_ns;
    g->remaining = 0;
    pthread_mutex_unlock(&g->lock);
    log_info("migration: completed in %" PRIu64 " ms, downtime %" PRIu64 " ms, %" PRIu64
             " MiB sent, %u rounds; this VM now exits",
             g->total_ns / 1000000, g->downtime_ns / 1000000, g->bytes >> 20, g->rounds);
    /* The guest lives on the target now; this process must never run it again. It stays
     * (paused) until a status query has seen the outcome, 5 s at most, so the client that
     * started the migration learns it, then exits. */
    for (int i = 0; i < 100; i++) {
        struct timespec ts = {0, 50000000L};
        bool seen;

        pthread_mutex_lock(&g->lock);
        seen = g->reported || g->cancelled;
        pthread_mutex_unlock(&g->lock);
        if (seen)
            break;
        nanosleep(&ts, NULL);
    }
    virt_request_exit(m, 0);
    goto out;

io_failed:
    if (mig_cancelled(g)) {
        mig_fail(g, "cancelled");
    } else if (g->t && w) {
        /* A target that refused the stream said why before it hung up. */
        char line[VM_MIGRATE_ERR_LEN];

        if (mig_read_line(g, 1, line) && !strncmp(line, "ERR ", 4))
            mig_fail(g, "the target refused the stream: %s", line + 4);
    }
    if (w && stream_writer_error(w) && strstr(stream_writer_error(w), "no byte moved"))
        mig_fail(g,
                 "no progress for %u s (progress_timeout_s) after %" PRIu64
                 " bytes: the target stopped reading",
                 g->timeout_s, stream_bytes_written(w));
    mig_fail(g, "%s", w && stream_writer_error(w) ? stream_writer_error(w) : "out of memory");
failed:
    mig_stop_throttle(g);
    /* The source goes on as if nothing happened: disks back, devices and vCPUs running. */
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++) {
        char berr[BLOCK_ERR_LEN];

        if (released[i].path[0] && !released[i].readonly &&
            virt_disk_reopen(m, i, released[i].path, released[i].format, berr) < 0)
            log_error("migration: cannot take back the disk: %s", berr);
    }
    disks_untrack(g);
    if (logging)
        virt_dirty_log(m, false);
    if (quiesced)
        virt_unquiesce(m);
    if (paused)
        virt_resume(m);
    pthread_mutex_lock(&g->lock);
    g->status = MIG_FAILED;
    g->total_ns = time_now_ns() - g->start_ns;
    pthread_mutex_unlock(&g->lock);
    log_error("migration failed: %s; the VM keeps running here", g->error);
out:
    stream_writer_destroy(w);
    pthread_mutex_lock(&g->lock);
    transport_close(g->t);
    g->t = NULL;
    g->fd = -1;
    pthread_mutex_unlock(&g->lock);
    free(json);
    free(bits);
    free(dbuf);
    return NULL;
}

int vm_migrate_start(struct virt_machine *m, const char *uri, const struct vm_migrate_opts *o,
                     struct vm_migration **mig, char *err)
{
    char host[VM_URI_HOST_MAX], port[VM_URI_PORT_MAX];
    struct vm_migration *g;
    bool tls;
    int ret;

    if (*mig && vm_migrate_active(*mig)) {
        set_err(err, "a migration is already running");
        return -EBUSY;
    }
    if (vm_migrate_parse_uri(uri, &tls, host, port) || !host[0]) {
        set_err(err, "migration target '%s': expected tcp:HOST:PORT or tls:HOST:PORT", uri);
        return -EINVAL;
    }
    ret = check_tls(tls, &o->tls, uri, true, err);
    if (ret)
        return ret;
    if (tls && (strlen(o->tls.cert) >= MIG_FILE_MAX || strlen(o->tls.key) >= MIG_FILE_MAX ||
                strlen(o->tls.ca) >= MIG_FILE_MAX)) {
        set_err(err, "a TLS file name is longer than %d bytes", MIG_FILE_MAX - 1);
        return -EINVAL;
    }
    if (o->progress_timeout_s > VM_MIGRATE_TIMEOUT_MAX_S) {
        set_err(err, "progress timeout %u s: expected 1 to %d", o->progress_timeout_s,
                VM_MIGRATE_TIMEOUT_MAX_S);
        return -EINVAL;
    }
    vm_migrate_free(*mig);
    *mig = NULL;
    g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->m = m;
    g->mode = o->mode;
    g->downtime_ms = o->downtime_ms ? o->downtime_ms : VM_MIGRATE_DOWNTIME_DEFAULT_MS;
    g->copy_disks = o->copy_disks;
    g->timeout_s = o->progress_timeout_s ? o->progress_timeout_s : VM_MIGRATE_TIMEOUT_DEFAULT_S;
    g->tls = tls;
    if (tls) {
        snprintf(g->cert, sizeof(g->cert), "%s", o->tls.cert);
        snprintf(g->key, sizeof(g->key), "%s", o->tls.key);
        snprintf(g->ca, sizeof(g->ca), "%s", o->tls.ca);
    }
    memcpy(g->host, host, sizeof(host));
    memcpy(g->port, port, sizeof(port));
    snprintf(g->uri, sizeof(g->uri), "%s", uri);
    g->fd = -1;
    g->status = MIG_ACTIVE;
    g->start_ns = time_now_ns();
    pthread_mutex_init(&g->lock, NULL);
    pthread_mutex_init(&g->pause_lock, NULL);
    log_info("migration: %s to %s started%s", mode_names[g->mode], uri,
             g->copy_disks ? ", copying the disks" : "");
    if (pthread_create(&g->thread, NULL, mig_thread, g)) {
        pthread_mutex_destroy(&g->lock);
        pthread_mutex_destroy(&g->pause_lock);
        free(g);
        set_err(err, "cannot start the migration thread");
        return -EAGAIN;
    }
    *mig = g;
    return 0;
}

/* Marks g cancelled and cuts its connection: any read or write blocked on it returns, and the
 * thread fails at its next step (or, completed, stops waiting for a status query). Called with
 * g->lock held. */
static void mig_cut(struct vm_migration *g)
{
    g->cancelled = true;
    if (g->t)
        transport_shutdown(g->t);
    else if (g->fd >= 0)
        shutdown(g->fd, SHUT_RDWR);
}

int vm_migrate_cancel(struct vm_migration *g, char *err)
{
    int ret = 0;

    if (!g) {
        set_err(err, "no migration is running");
        return -EALREADY;
    }
    pthread_mutex_lock(&g->lock);
    if (g->status != MIG_ACTIVE) {
        set_err(err, "no migration is running (the last one %s)",
                g->status == MIG_COMPLETED ? "completed" : "failed");
        ret = -EALREADY;
    } else if (g->final) {
        set_err(err,
                "the migration is in its stop-and-copy (the VM is stopped and the target may hold "
                "the whole stream): it completes or fails on its own within %u s",
                g->timeout_s);
        ret = -EBUSY;
    } else {
        mig_cut(g);
    }
    pthread_mutex_unlock(&g->lock);
    if (!ret)
        log_info("migration to %s: cancelled", g->uri);
    return ret;
}

bool vm_migrate_active(struct vm_migration *g)
{
    bool active;

    pthread_mutex_lock(&g->lock);
    active = g->status == MIG_ACTIVE;
    pthread_mutex_unlock(&g->lock);
    return active;
}

json_t *vm_migrate_status(struct vm_migration *g)
{
    static const char *const names[] = {"active", "completed", "failed"};
    json_t *o;
    uint64_t total, bytes;

    pthread_mutex_lock(&g->lock);
    total = g->status == MIG_ACTIVE ? time_now_ns() - g->start_ns : g->total_ns;
    /* Inside a round: what the connection has taken so far, so a stall shows. */
    bytes = g->bytes;
    if (g->t && transport_bytes_written(g->t) > bytes)
        bytes = transport_bytes_written(g->t);
    o = json_pack("{s:s, s:s, s:s, s:b, s:i, s:I, s:I, s:I, s:I, s:i, s:i}", "status",
                  names[g->status], "mode", mode_names[g->mode], "uri", g->uri, "copy_disks",
                  g->copy_disks, "rounds", (int)g->rounds, "bytes", (json_int_t)bytes, "total_ms",
                  (json_int_t)(total / 1000000), "downtime_ms",
                  (json_int_t)(g->downtime_ns / 1000000), "remaining_pages",
                  (json_int_t)g->remaining, "throttle_pct", (int)g->throttle_pct,
                  "progress_timeout_s", (int)g->timeout_s);
    if (o && g->error[0])
        json_object_set_new(o, "error", json_string(g->error));
    if (g->status != MIG_ACTIVE)
        g->reported = true;
    pthread_mutex_unlock(&g->lock);
    return o;
}

void vm_migrate_free(struct vm_migration *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    mig_cut(g);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->lock);
    pthread_mutex_destroy(&g->pause_lock);
    free(g);
}

/* ---- target side ---- */

/* After a refusal: reads (and drops) what the source still sends for up to a second before
 * the connection closes, so that the close does not reset it and the source reads our "ERR"
 * line rather than only "connection reset". */
static void drain_briefly(struct transport *t, int fd)
{
    uint64_t end = time_now_ns() + 1000000000ull;
    char buf[65536];

    transport_end_writes(t);
    while (time_now_ns() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        int wait_ms = (int)((end - time_now_ns()) / 1000000) + 1;

        if (poll(&p, 1, wait_ms) <= 0 || transport_read(t, buf, sizeof(buf)) <= 0)
            break;
    }
}

/* Binds and listens on host:port. The socket, or -1 with err. */
static int incoming_listen(const char *uri, const char *host, const char *port, char *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res = NULL;
    int lfd, one = 1, e = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);

    if (e) {
        set_err(err, "%s: %s", uri, gai_strerror(e));
        return -1;
    }
    lfd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, res->ai_addr, res->ai_addrlen) < 0 || listen(lfd, 1) < 0) {
        set_err(err, "%s: %s", uri, strerror(errno));
        if (lfd >= 0)
            close(lfd);
        lfd = -1;
    }
    freeaddrinfo(res);
    return lfd;
}

/* Accepts connections on lfd until one is a source we accept: over TLS, one that passes the
 * handshake (it is told READY); others are logged and dropped. 0 and *out (owning the
 * connection), or -errno with err. */
static int incoming_accept(int lfd, const char *uri, bool tls, const struct vm_incoming_opts *o,
                           struct transport **out, int *fd_out, char *err)
{
    unsigned secs = o->progress_timeout_s ? o->progress_timeout_s : VM_MIGRATE_TIMEOUT_DEFAULT_S;
    struct timeval tv = {(time_t)secs, 0};

    for (;;) {
        char terr[TRANSPORT_ERR_LEN];
        int fd, ret;

        do
            fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0) {
            ret = -errno;
            set_err(err, "%s: accept: %s", uri, strerror(errno));
            return ret;
        }
        /* No byte for the progress timeout: the source is gone or stuck. */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (!tls) {
            ret = transport_plain(fd, true, out);
            if (ret) {
                close(fd);
                set_err(err, "out of memory");
                return ret;
            }
            *fd_out = fd;
            return 0;
        }
        ret = transport_tls_server(fd, &o->tls, out, terr);
        if (ret)
            close(fd);
        if (ret == 0) {
            ret = transport_write_all(*out, "READY\n", 6);
            if (ret == 0) {
                *fd_out = fd;
                return 0;
            }
            snprintf(terr, sizeof(terr), "it went away after the handshake: %s",
                     transport_error(*out, ret));
            transport_close(*out);
        }
        /* Someone who is not a source we trust: no state was read; wait for the next. */
        log_warn("migration: refused a connection on %s: %s; still waiting", uri, terr);
        *out = NULL;
    }
}

int vm_migrate_incoming(const char *uri, const struct vm_incoming_opts *o, struct virt_machine **m,
                        char *err)
{
    char host[VM_URI_HOST_MAX], port[VM_URI_PORT_MAX];
    char rerr[VMSTATE_ERR_LEN], line[VMSTATE_ERR_LEN + 8];
    struct transport *t = NULL;
    int lfd, fd = -1, ret;
    bool tls, cloned;

    *m = NULL;
    if (vm_migrate_parse_uri(uri, &tls, host, port)) {
        set_err(err, "'%s': expected tcp:HOST:PORT or tls:HOST:PORT", uri);
        return -EINVAL;
    }
    ret = check_tls(tls, &o->tls, uri, false, err);
    if (ret)
        return ret;
    if (o->progress_timeout_s > VM_MIGRATE_TIMEOUT_MAX_S) {
        set_err(err, "progress timeout %u s: expected 1 to %d", o->progress_timeout_s,
                VM_MIGRATE_TIMEOUT_MAX_S);
        return -EINVAL;
    }
    lfd = incoming_listen(uri, host, port, err);
    if (lfd < 0)
        return -EIO;
    log_info("waiting for a migration on %s", uri);
    ret = incoming_accept(lfd, uri, tls, o, &t, &fd, err);
    close(lfd);
    if (ret)
        return ret;
    if (vm_restore(t, "migration stream", &o->restore, m, &cloned, rerr)) {
        set_err(err, "%s", rerr);
        snprintf(line, sizeof(line), "ERR %s\n", rerr);
        if (transport_write_all(t, line, strlen(line)) < 0)
            log_warn("could not tell the source why: %s", strerror(errno));
        drain_briefly(t, fd);
        ret = -EPROTO;
        goto out;
    }
    if (transport_write_all(t, "OK\n", 3)) {
        /* The source cannot learn that we have the VM: it keeps running it; so must not we. */
        set_err(err, "the source went away before the handover");
        virt_destroy(*m);
        *m = NULL;
        ret = -EPIPE;
        goto out;
    }
    log_info("migration received; the VM runs here now");
out:
    transport_close(t);
    return ret;
}
