/* Saving and loading the virt board: the sections of every hart and device, the dirty-page
 * log, and freeing a machine config. The stream format itself is src/vmm/stream.c, reached
 * only through a struct state_sink (base/state.h); this file only decides what the board's
 * sections are. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/state.h"
#include "cpu/engine.h"
#include "hw/clint.h"
#include "hw/goldfish_rtc.h"
#include "hw/plic.h"
#include "hw/uart16550.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtio_blk.h"
#include "hw/virtio/virtio_mmio.h"
#include "machine/virt_int.h"

#define ROM_STATE_VERSION 1

/* Bits of m->loaded: which sections a restore has seen. */
#define LOADED_ROM    (1u << 0)
#define LOADED_CLINT  (1u << 1)
#define LOADED_PLIC   (1u << 2)
#define LOADED_UART   (1u << 3)
#define LOADED_CPU0   4  /* + hart index, VIRT_MAX_CPUS bits */
#define LOADED_VIRTIO 12 /* + slot, VIRT_VIRTIO_SLOTS bits */
#define LOADED_RTC    (1u << (LOADED_VIRTIO + VIRT_VIRTIO_SLOTS))

_Static_assert(LOADED_CPU0 + VIRT_MAX_CPUS <= LOADED_VIRTIO, "section bits overlap");
_Static_assert(LOADED_VIRTIO + VIRT_VIRTIO_SLOTS + 1 <= 32, "section bits overflow");

void virt_quiesce(struct virt_machine *m)
{
    for (unsigned i = 0; i < m->cfg.ndevices; i++)
        virtio_mmio_quiesce(m->vdevs[i].vdev);
}

void virt_unquiesce(struct virt_machine *m)
{
    for (unsigned i = 0; i < m->cfg.ndevices; i++)
        virtio_mmio_resume(m->vdevs[i].vdev);
}

struct guest_ram *virt_ram(struct virt_machine *m)
{
    return &m->ram;
}

void virt_dirty_log(struct virt_machine *m, bool on)
{
    if (on)
        dirty_log_start(&m->ram.dirty);
    else
        dirty_log_stop(&m->ram.dirty);
}

uint64_t virt_harvest_dirty(struct virt_machine *m, uint64_t *bitmap)
{
    uint64_t n = dirty_log_collect(&m->ram.dirty, bitmap);

    /* After the bits are taken: a hart that still maps a page writable from before would
     * write it unseen. Dropping the mappings makes the next store re-mark its page. */
    for (unsigned i = 0; i < m->cfg.cpus; i++)
        vcpu_dirty_rearm(m->harts[i]);
    return n;
}

void virt_set_device_opts(struct virt_machine *m, unsigned slot, const char *opts)
{
    char *copy = strdup(opts);

    if (!copy || slot >= m->cfg.ndevices) {
        free(copy);
        return;
    }
    pthread_mutex_lock(&m->lock);
    free(m->owned_opts[slot]);
    m->owned_opts[slot] = copy;
    m->cfg.devices[slot].opts = copy;
    pthread_mutex_unlock(&m->lock);
}

/* One section from a filled sbuf. */
static int put_section(const struct state_sink *w, const char *name, uint32_t version,
                       struct sbuf *b)
{
    int ret = b->oom ? -ENOMEM : state_sink_write(w, name, version, b->data, b->len);

    sbuf_free(b);
    return ret;
}

int virt_save_sections(struct virt_machine *m, const struct state_sink *w)
{
    char name[32];
    struct sbuf b;
    int ret;

    ret = state_sink_write(w, "rom", ROM_STATE_VERSION, m->rom, VIRT_ROM_SIZE);
    for (unsigned i = 0; i < m->cfg.cpus && !ret; i++) {
        sbuf_init(&b);
        vcpu_save(m->harts[i], &b);
        snprintf(name, sizeof(name), "cpu.%u", i);
        ret = put_section(w, name, vcpu_state_version(m->harts[i]), &b);
    }
    if (!ret) {
        /* The CLINT's clock runs on while the harts are paused; the guest's is frozen. */
        if (m->paused)
            clint_set_mtime(m->clint, m->paused_mtime);
        sbuf_init(&b);
        clint_save(m->clint, &b);
        ret = put_section(w, "clint", CLINT_STATE_VERSION, &b);
    }
    if (!ret) {
        sbuf_init(&b);
        plic_save(m->plic, &b);
        ret = put_section(w, "plic", PLIC_STATE_VERSION, &b);
    }
    if (!ret) {
        sbuf_init(&b);
        uart16550_save(m->uart, &b);
        ret = put_section(w, "uart", UART16550_STATE_VERSION, &b);
    }
    if (!ret) {
        sbuf_init(&b);
        goldfish_rtc_save(m->rtc, &b);
        ret = put_section(w, "rtc", GOLDFISH_RTC_STATE_VERSION, &b);
    }
    for (unsigned i = 0; i < m->cfg.ndevices && !ret; i++) {
        sbuf_init(&b);
        virtio_mmio_save(m->vdevs[i].vdev, &b);
        snprintf(name, sizeof(name), "virtio.%u", i);
        ret = put_section(w, name, VIRTIO_MMIO_STATE_VERSION, &b);
    }
    return ret;
}

/* Parses "<prefix>.<index>" with index < limit; -1 when name is not of that form. */
static int section_index(const char *name, const char *prefix, unsigned limit)
{
    size_t n = strlen(prefix);
    char *end;
    unsigned long v;

    if (strncmp(name, prefix, n) || name[n] != '.' || name[n + 1] < '0' || name[n + 1] > '9')
        return -1;
    v = strtoul(name + n + 1, &end, 10);
    if (*end || v >= limit || (name[n + 1] == '0' && name[n + 2]))
        return -1;
    return (int)v;
}

int virt_load_section(struct virt_machine *m, const char *name, uint32_t version,
                      const uint8_t *payload, size_t len, char *err)
{
    struct scur c;
    uint32_t bit;
    int idx, ret;

    scur_init(&c, payload, len, name);
    if (!strcmp(name, "rom")) {
        bit = LOADED_ROM;
        if (version != ROM_STATE_VERSION || len != VIRT_ROM_SIZE)
            ret = scur_fail(&c, "version %" PRIu32 " of %zu bytes, expected version %d of %llu",
                            version, len, ROM_STATE_VERSION, VIRT_ROM_SIZE);
        else
            ret = (scur_get_bytes(&c, m->rom, VIRT_ROM_SIZE), scur_ok(&c));
    } else if (!strcmp(name, "clint")) {
        bit = LOADED_CLINT;
        ret = clint_load(m->clint, &c, version);
    } else if (!strcmp(name, "plic")) {
        bit = LOADED_PLIC;
        ret = plic_load(m->plic, &c, version);
    } else if (!strcmp(name, "uart")) {
        bit = LOADED_UART;
        ret = uart16550_load(m->uart, &c, version);
    } else if (!strcmp(name, "rtc")) {
        bit = LOADED_RTC;
        ret = goldfish_rtc_load(m->rtc, &c, version);
    } else if ((idx = section_index(name, "cpu", VIRT_MAX_CPUS)) >= 0) {
        bit = 1u << (LOADED_CPU0 + idx);
        ret = (unsigned)idx < m->cfg.cpus ? vcpu_load(m->harts[idx], &c, version)
                                          : scur_fail(&c, "this machine has %u harts", m->cfg.cpus);
    } else if ((idx = section_index(name, "virtio", VIRT_VIRTIO_SLOTS)) >= 0) {
        bit = 1u << (LOADED_VIRTIO + idx);
        ret = (unsigned)idx < m->cfg.ndevices
                  ? virtio_mmio_load(m->vdevs[idx].vdev, &c, version)
                  : scur_fail(&c, "this machine has %u virtio devices", m->cfg.ndevices);
    } else {
        snprintf(err, STATE_LOAD_ERR_LEN, "section '%s' is unknown to this tessera", name);
        return -1;
    }
    if (!ret && (m->loaded & bit))
        ret = scur_fail(&c, "appears twice");
    if (!ret)
        ret = scur_finish(&c);
    if (ret) {
        snprintf(err, STATE_LOAD_ERR_LEN, "%s", c.err);
        return -1;
    }
    m->loaded |= bit;
    return 0;
}

/* "rtc" is not required: a stream written before the board had an RTC lacks it, and its guest,
 * booted from a device tree without one, never looks at the fresh RTC it gets here. */
int virt_load_finish(struct virt_machine *m, char *err)
{
    uint32_t want = LOADED_ROM | LOADED_CLINT | LOADED_PLIC | LOADED_UART;
    uint32_t missing;

    for (unsigned i = 0; i < m->cfg.cpus; i++)
        want |= 1u << (LOADED_CPU0 + i);
    for (unsigned i = 0; i < m->cfg.ndevices; i++)
        want |= 1u << (LOADED_VIRTIO + i);
    missing = want & ~m->loaded;
    if (!missing)
        return 0;
    {
        static const char *const fixed[] = {"rom", "clint", "plic", "uart"};
        unsigned b = (unsigned)__builtin_ctz(missing);

        if (b < LOADED_CPU0)
            snprintf(err, STATE_LOAD_ERR_LEN, "the stream lacks section '%s'", fixed[b]);
        else if (b < LOADED_VIRTIO)
            snprintf(err, STATE_LOAD_ERR_LEN, "the stream lacks section 'cpu.%u'", b - LOADED_CPU0);
        else
            snprintf(err, STATE_LOAD_ERR_LEN, "the stream lacks section 'virtio.%u'",
                     b - LOADED_VIRTIO);
    }
    return -1;
}

/* ---- the machine config ---- */

void virt_config_free(struct virt_config *cfg)
{
    free((char *)cfg->bios);
    free((char *)cfg->kernel);
    free((char *)cfg->initrd);
    free((char *)cfg->append);
    for (unsigned i = 0; i < cfg->ndevices; i++) {
        free((char *)cfg->devices[i].type);
        free((char *)cfg->devices[i].opts);
    }
    memset(cfg, 0, sizeof(*cfg));
}
