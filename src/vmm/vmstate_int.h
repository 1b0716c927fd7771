/* vmstate.c's helpers that the other users of the state stream share (migrate.c, snapshot.c).
 * Private to src/vmm/. */
#ifndef TESSERA_VMM_VMSTATE_INT_H
#define TESSERA_VMM_VMSTATE_INT_H

#include <stddef.h>
#include <stdint.h>

struct stream_writer;
struct virt_machine;

struct vmconfig;

/* A stream header's config document for the machine as it runs now, after `edit` (may be
 * NULL) changed it. malloc'd, or NULL with one line in err (VMSTATE_ERR_LEN). */
char *header_config(struct virt_machine *m,
                    int (*edit)(struct vmconfig *vc, void *opaque, char *err), void *opaque,
                    char *err);

/* Sets a string key of device `slot`'s options through its type's table (vdev.h); NULL
 * removes it. 0, or -EINVAL with err. */
int conf_set_str(struct vmconfig *vc, unsigned slot, const char *key, const char *value, char *err);

/* The size of a dirty bitmap for m's RAM (one bit per 4 KiB page), and a zeroed one (NULL when
 * out of memory; free() it). */
size_t bitmap_bytes(struct virt_machine *m);
uint64_t *bitmap_alloc(struct virt_machine *m);

/* The end of a stream, written with the vCPUs stopped and the devices quiesced: the pages in
 * bits plus those dirtied since they were taken, or all of RAM when bits is NULL; every hart's
 * and device's section; the trailer. 0 or -EIO (the writer holds the message). */
int write_stopped_state(struct virt_machine *m, struct stream_writer *w, uint64_t *bits);

#endif
