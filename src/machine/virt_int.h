/* The virt board's private state, shared by virt.c (building and running the machine) and
 * virt_state.c (saving and loading it). Nothing outside src/machine/ includes this. */
#ifndef TESSERA_MACHINE_VIRT_INT_H
#define TESSERA_MACHINE_VIRT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/bus.h"
#include "hw/guest_mem.h"
#include "machine/loader.h"
#include "machine/virt.h"

#define VIRT_ROM_BASE 0x1000ull
#define VIRT_ROM_SIZE 0x1000ull
#define VIRT_FDT_MAX  0x10000

struct clint;
struct plic;
struct uart16550;
struct sifive_test;
struct goldfish_rtc;
struct vcpu;
struct loop;
struct vdev_type;
struct virtio_dev;

enum virt_event { VIRT_EV_NONE, VIRT_EV_EXIT, VIRT_EV_RESET, VIRT_EV_PAUSE };

struct virt_machine {
    struct virt_config cfg;
    struct guest_ram ram;
    uint8_t *rom;
    struct bus bus;
    struct clint *clint;
    struct plic *plic;
    struct uart16550 *uart;
    struct sifive_test *test;
    struct goldfish_rtc *rtc;
    struct vcpu *harts[VIRT_MAX_CPUS]; /* through the engine seam, src/cpu/engine.h */
    struct loop *loop;                 /* host I/O for the devices: sockets, timers, backends */
    struct virt_vdev {
        const struct vdev_type *type;
        void *dev;
        struct virtio_dev *vdev;
    } vdevs[VIRT_VIRTIO_SLOTS];
    pthread_t threads[VIRT_MAX_CPUS];
    char *owned_opts[VIRT_VIRTIO_SLOTS]; /* virt_set_device_opts() copies */
    uint32_t loaded; /* restore: bit per section kind seen, see virt_load_section */

    /* The images, kept so a reset can restore RAM's boot contents as QEMU does. */
    struct loader_file bios, kernel, initrd;
    gpa_t fdt_addr;
    uint8_t fdt[VIRT_FDT_MAX];

    pthread_mutex_t lock; /* protects event, exit_status and cfg.devices[].opts */
    pthread_cond_t cond;
    enum virt_event event;
    int exit_status;
    bool paused;     /* harts stopped by virt_pause(), waiting for virt_resume() */
    bool resume_req; /* virt_resume() asked while paused */
    uint64_t paused_mtime;
    uint64_t start_ns;
};

#endif
