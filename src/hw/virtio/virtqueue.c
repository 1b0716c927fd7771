/* Split virtqueue, device side. See virtqueue.h for the contract, the threads and the barriers. */
#include "hw/virtio/virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* A descriptor as read from the guest: one copy, taken once, then checked. */
struct virtq_desc_copy {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/* Copies descriptor `p` (any alignment: indirect tables need not be aligned) out of guest RAM.
 * The compiler barrier after the copy keeps the compiler from re-reading guest memory in place
 * of the copy, so the checks made on the copy hold for the values used (no double fetch). */
static void virtq_read_desc(const uint8_t *p, struct virtq_desc_copy *d)
{
    struct virtq_desc raw;

    memcpy(&raw, p, sizeof(raw));
    __asm__ __volatile__("" ::: "memory");
    d->addr = le64toh(raw.addr);
    d->len = le32toh(raw.len);
    d->flags = le16toh(raw.flags);
    d->next = le16toh(raw.next);
}

/* Ring fields are naturally aligned (checked by virtq_setup()) and shared with the driver's
 * CPUs: single-copy atomic accesses, so each is read or written exactly once and untorn. */
static uint16_t virtq_load16(const uint16_t *p, int order)
{
    return le16toh(__atomic_load_n(p, order));
}

static void virtq_store16(uint16_t *p, uint16_t v, int order)
{
    __atomic_store_n(p, htole16(v), order);
}

/* True while the dirty-page log of the queue's RAM is on: the one load and branch that ring and
 * buffer writes cost when logging is off. Read after the write it is about (never before), so
 * a write is either marked or was made before logging started, when dirty_log_start() marked
 * every page anyway. */
static bool virtq_logging(const struct virtq *vq)
{
    return atomic_load_explicit(&vq->ram->dirty.on, memory_order_acquire);
}

/* Marks [p, p + len) of the queue's RAM dirty if logging is on. */
static void virtq_mark(const struct virtq *vq, const void *p, uint64_t len)
{
    if (virtq_logging(vq))
        guest_ram_mark_dirty(vq->ram, p, len);
}

/* used_event lives just past the avail ring, avail_event just past the used ring (§2.7.10). */
static uint16_t virtq_used_event(const struct virtq *vq)
{
    return virtq_load16(&vq->avail->ring[vq->num], __ATOMIC_RELAXED);
}

static void virtq_set_avail_event(struct virtq *vq, uint16_t v)
{
    uint16_t *p = (uint16_t *)&vq->used->ring[vq->num];

    virtq_store16(p, v, __ATOMIC_RELAXED);
    virtq_mark(vq, p, sizeof(*p));
}

/* used->flags (§2.7.8: VIRTQ_USED_F_NO_NOTIFY without EVENT_IDX). */
static void virtq_set_used_flags(struct virtq *vq, uint16_t v)
{
    virtq_store16(&vq->used->flags, v, __ATOMIC_RELAXED);
    virtq_mark(vq, &vq->used->flags, sizeof(vq->used->flags));
}

/* The guest broke the rules on this queue: mark it broken, log once per episode (rate-limited
 * across all queues), tell the transport. Returns -EINVAL for the caller to pass on. */
static int virtq_fail(struct virtq *vq, const char *why, uint64_t a, uint64_t b)
{
    if (!vq->broken) {
        vq->broken = true;
        log_guest("%s queue %u: %s (0x%" PRIx64 ", 0x%" PRIx64 "); device needs reset", vq->name,
                  vq->index, why, a, b);
        if (vq->on_error)
            vq->on_error(vq->error_opaque);
    }
    return -EINVAL;
}

void virtq_init(struct virtq *vq, const char *name, unsigned index, void (*on_error)(void *),
                void *opaque)
{
    memset(vq, 0, sizeof(*vq));
    vq->name = name ? name : "virtio";
    vq->index = index;
    vq->on_error = on_error;
    vq->error_opaque = opaque;
    atomic_init(&vq->ready, false);
}

/* Host pointer for [gpa, gpa+len) if it is in RAM and both the guest address and the host
 * address are `align`-aligned (the host check keeps our typed accesses defined even for an odd
 * RAM base), else NULL. */
static void *virtq_map_area(const struct guest_ram *ram, gpa_t gpa, uint64_t len, unsigned align)
{
    void *p;

    if (gpa % align)
        return NULL;
    p = guest_ram_ptr(ram, gpa, len);
    if (p && (uintptr_t)p % align)
        return NULL;
    return p;
}

int virtq_setup(struct virtq *vq, const struct guest_ram *ram, const struct virtq_config *cfg)
{
    uint32_t n = cfg->num;
    void *desc, *avail, *used;

    virtq_reset(vq);
    if (n == 0 || n > 32768 || (n & (n - 1)))
        return -EINVAL;
    desc = virtq_map_area(ram, cfg->desc, VIRTQ_DESC_SIZE(n), VIRTQ_DESC_ALIGN);
    avail = virtq_map_area(ram, cfg->avail, VIRTQ_AVAIL_SIZE(n), VIRTQ_AVAIL_ALIGN);
    used = virtq_map_area(ram, cfg->used, VIRTQ_USED_SIZE(n), VIRTQ_USED_ALIGN);
    if (!desc || !avail || !used)
        return -EINVAL;

    vq->ram = ram;
    vq->num = (uint16_t)n;
    vq->event_idx = cfg->event_idx;
    vq->indirect = cfg->indirect;
    vq->desc = desc;
    vq->avail = avail;
    vq->used = used;
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled_used = 0;
    vq->notify_off = false;
    vq->broken = false;
    atomic_store_explicit(&vq->ready, true, memory_order_release);
    return 0;
}

void virtq_get_state(const struct virtq *vq, struct virtq_state *st)
{
    *st = (struct virtq_state){0};
    if (!virtq_ready(vq))
        return;
    st->last_avail = vq->last_avail;
    st->used_idx = vq->used_idx;
    st->signalled_used = vq->signalled_used;
    st->signalled_valid = vq->signalled_valid;
    st->notify_off = vq->notify_off;
    st->broken = vq->broken;
}

void virtq_set_state(struct virtq *vq, const struct virtq_state *st)
{
    if (!virtq_ready(vq))
        return;
    vq->last_avail = st->last_avail;
    vq->used_idx = st->used_idx;
    vq->signalled_used = st->signalled_used;
    vq->signalled_valid = st->signalled_valid;
    vq->notify_off = st->notify_off;
    vq->broken = st->broken;
}

void virtq_reset(struct virtq *vq)
{
    atomic_store_explicit(&vq->ready, false, memory_order_release);
    vq->ram = NULL;
    vq->num = 0;
    vq->desc = NULL;
    vq->avail = NULL;
    vq->used = NULL;
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled_used = 0;
    vq->notify_off = false;
    vq->broken = false;
}

bool virtq_ready(const struct virtq *vq)
{
    return atomic_load_explicit(&vq->ready, memory_order_acquire);
}

/* Follows the chain starting at `head` (< num) into req. Every descriptor is copied once and
 * checked before use. Termination: each step either adds a buffer (at most VIRTQ_MAX_SEGS) or
 * enters the one indirect table allowed; `seen` additionally catches loops within a table
 * before they produce that many buffers (§2.7.5.3.1: a chain is never longer than its table). */
static int virtq_walk(struct virtq *vq, uint16_t head, struct virtq_req *req)
{
    const uint8_t *table = vq->desc;
    uint32_t table_len = vq->num;
    uint32_t idx = head, seen = 0;
    bool in_indirect = false;
    unsigned nseg = 0, nout = 0;
    uint64_t out_len = 0, in_len = 0;

    for (;;) {
        struct virtq_desc_copy d;
        void *p;

        if (seen++ >= table_len)
            return virtq_fail(vq, "descriptor chain loops", head, idx);
        virtq_read_desc(table + (size_t)idx * sizeof(struct virtq_desc), &d);

        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            /* §2.7.5.3: only with the feature, never nested, never with NEXT; the WRITE flag
             * of the pointing descriptor is ignored (§2.7.5.3.2). */
            if (!vq->indirect)
                return virtq_fail(vq, "indirect descriptor without the feature", head, idx);
            if (in_indirect)
                return virtq_fail(vq, "nested indirect descriptor", head, idx);
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return virtq_fail(vq, "indirect descriptor with NEXT", head, idx);
            if (d.len == 0 || d.len % sizeof(struct virtq_desc))
                return virtq_fail(vq, "bad indirect table length", head, d.len);
            p = guest_ram_ptr(vq->ram, d.addr, d.len);
            if (!p)
                return virtq_fail(vq, "indirect table outside RAM", d.addr, d.len);
            table = p;
            table_len = d.len / sizeof(struct virtq_desc);
            idx = 0;
            seen = 0;
            in_indirect = true;
            continue;
        }

        p = guest_ram_ptr(vq->ram, d.addr, d.len);
        if (!p)
            return virtq_fail(vq, "buffer outside RAM", d.addr, d.len);
        if (nseg == VIRTQ_MAX_SEGS)
            return virtq_fail(vq, "chain has too many buffers", head, nseg);
        if (d.flags & VIRTQ_DESC_F_WRITE) {
            in_len += d.len;
        } else {
            /* §2.7.4.2: readable descriptors precede writable ones. */
            if (nseg > nout)
                return virtq_fail(vq, "readable buffer after a writable one", head, idx);
            nout++;
            out_len += d.len;
        }
        /* §2.7.4.2: a chain holds at most 2^32 bytes. */
        if (out_len + in_len > (UINT64_C(1) << 32))
            return virtq_fail(vq, "chain longer than 4 GiB", out_len, in_len);
        req->iov[nseg].iov_base = p;
        req->iov[nseg].iov_len = d.len;
        nseg++;

        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            break;
        if (d.next >= table_len)
            return virtq_fail(vq, "next descriptor out of range", idx, d.next);
        idx = d.next;
    }

    req->head = head;
    req->nout = nout;
    req->nin = nseg - nout;
    req->out = req->iov;
    req->in = req->iov + nout;
    req->out_len = out_len;
    req->in_len = in_len;
    return 0;
}

int virtq_pop(struct virtq *vq, struct virtq_req *req)
{
    uint16_t avail_idx, pending, head;
    int rc;

    if (!virtq_ready(vq))
        return 0;
    if (vq->broken)
        return -EINVAL;

    /* Acquire: the ring entry and descriptors are read only after the index that published
     * them (§2.7.13.3 is the driver's matching write barrier). */
    avail_idx = virtq_load16(&vq->avail->idx, __ATOMIC_ACQUIRE);
    pending = (uint16_t)(avail_idx - vq->last_avail);
    if (pending == 0) {
        if (!vq->event_idx || vq->notify_off)
            return 0;
        /* Ask for a kick at the next entry, then look again: the driver may have added one
         * after our read but seen the old avail_event and skipped the kick. */
        virtq_set_avail_event(vq, vq->last_avail);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        avail_idx = virtq_load16(&vq->avail->idx, __ATOMIC_ACQUIRE);
        pending = (uint16_t)(avail_idx - vq->last_avail);
        if (pending == 0)
            return 0;
    }
    if (pending > vq->num)
        return virtq_fail(vq, "available index ran ahead", avail_idx, vq->last_avail);

    head = virtq_load16(&vq->avail->ring[vq->last_avail & (vq->num - 1)], __ATOMIC_RELAXED);
    if (head >= vq->num)
        return virtq_fail(vq, "head descriptor out of range", vq->last_avail, head);
    rc = virtq_walk(vq, head, req);
    if (rc < 0)
        return rc;

    vq->last_avail++;
    if (vq->event_idx && !vq->notify_off)
        virtq_set_avail_event(vq, vq->last_avail);
    return 1;
}

void virtq_unpop(struct virtq *vq)
{
    if (!virtq_ready(vq))
        return;
    vq->last_avail--;
    if (vq->event_idx && !vq->notify_off)
        virtq_set_avail_event(vq, vq->last_avail);
}

void virtq_push(struct virtq *vq, const struct virtq_req *req, uint32_t written)
{
    struct virtq_used_elem *e;

    if (!virtq_ready(vq))
        return;
    if (written > req->in_len) {
        log_guest("%s queue %u: device reports %" PRIu32 " bytes written into %zu", vq->name,
                  vq->index, written, req->in_len);
        written = (uint32_t)req->in_len;
    }
    e = &vq->used->ring[vq->used_idx & (vq->num - 1)];
    __atomic_store_n(&e->id, htole32((uint32_t)req->head), __ATOMIC_RELAXED);
    __atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
    vq->used_idx++;
    /* Release: the buffer contents and the element become visible before the index
     * (§2.7.8.2 in reverse: the driver reads idx, then the element). */
    virtq_store16(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
    /* After the writes, so that a harvest which misses a mark sees the bytes (virtqueue.h). */
    if (virtq_logging(vq)) {
        for (unsigned i = 0; i < req->nin; i++)
            guest_ram_mark_dirty(vq->ram, req->in[i].iov_base, req->in[i].iov_len);
        guest_ram_mark_dirty(vq->ram, e, sizeof(*e));
        guest_ram_mark_dirty(vq->ram, vq->used, offsetof(struct virtq_used, ring));
    }
}

bool virtq_needs_notify(struct virtq *vq)
{
    uint16_t old, now;

    if (!virtq_ready(vq))
        return false;
    /* Our used->idx store must be visible before we read the driver's suppression state, or we
     * could read a stale used_event/flag while the driver reads our stale idx and sleeps. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    old = vq->signalled_used;
    now = vq->used_idx;
    vq->signalled_used = now;
    if (old == now)
        return false;
    if (vq->event_idx) {
        /* §2.7.10: notify when used->idx steps past used_event, i.e. used_event lies in
         * [old, now) in modulo-2^16 order. The flag is ignored (§2.7.10 device req.). */
        uint16_t event = virtq_used_event(vq);

        return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
    }
    return !(virtq_load16(&vq->avail->flags, __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

void virtq_disable_notify(struct virtq *vq)
{
    if (!virtq_ready(vq))
        return;
    vq->notify_off = true;
    if (!vq->event_idx)
        virtq_set_used_flags(vq, VIRTQ_USED_F_NO_NOTIFY);
}

bool virtq_enable_notify(struct virtq *vq)
{
    if (!virtq_ready(vq))
        return false;
    vq->notify_off = false;
    if (vq->event_idx)
        virtq_set_avail_event(vq, vq->last_avail);
    else
        virtq_set_used_flags(vq, 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return virtq_load16(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail;
}

size_t virtq_req_read(const struct virtq_req *req, size_t off, void *buf, size_t len)
{
    uint8_t *dst = buf;
    size_t done = 0;

    for (unsigned i = 0; i < req->nout && done < len; i++) {
        size_t seg = req->out[i].iov_len, n;

        if (off >= seg) {
            off -= seg;
            continue;
        }
        n = seg - off < len - done ? seg - off : len - done;
        memcpy(dst + done, (const uint8_t *)req->out[i].iov_base + off, n);
        done += n;
        off = 0;
    }
    return done;
}

size_t virtq_req_write(const struct virtq_req *req, size_t off, const void *buf, size_t len)
{
    const uint8_t *src = buf;
    size_t done = 0;

    for (unsigned i = 0; i < req->nin && done < len; i++) {
        size_t seg = req->in[i].iov_len, n;

        if (off >= seg) {
            off -= seg;
            continue;
        }
        n = seg - off < len - done ? seg - off : len - done;
        memcpy((uint8_t *)req->in[i].iov_base + off, src + done, n);
        done += n;
        off = 0;
    }
    return done;
}

/* The requests virtq_req_for_thread() made for one thread, freed when it exits. */
#define VIRTQ_REQ_SITES 16

struct req_sites {
    struct virtq_req *req[VIRTQ_REQ_SITES];
    unsigned n;
};

static pthread_key_t req_key;
static pthread_once_t req_once = PTHREAD_ONCE_INIT;
static bool req_key_ok;

static void req_sites_free(void *p)
{
    struct req_sites *s = p;

    for (unsigned i = 0; i < s->n; i++)
        free(s->req[i]);
    free(s);
}

static void req_key_create(void)
{
    req_key_ok = pthread_key_create(&req_key, req_sites_free) == 0;
}

struct virtq_req *virtq_req_for_thread(struct virtq_req **site)
{
    struct req_sites *s;

    if (*site)
        return *site;
    pthread_once(&req_once, req_key_create);
    if (!req_key_ok)
        return NULL;
    s = pthread_getspecific(req_key);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || pthread_setspecific(req_key, s)) {
            free(s);
            log_error("virtio: no memory for a thread's requests");
            return NULL;
        }
    }
    if (s->n == VIRTQ_REQ_SITES) {
        log_error("virtio: more than %u request sites on one thread", VIRTQ_REQ_SITES);
        return NULL;
    }
    *site = calloc(1, sizeof(**site));
    if (!*site) {
        log_error("virtio: no memory for a request");
        return NULL;
    }
    s->req[s->n++] = *site;
    return *site;
}
