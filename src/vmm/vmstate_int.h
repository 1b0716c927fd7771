/* vmstate.c's helpers that the other users of the state stream share (migrate.c). Private to
 * src/vmm/. */
#ifndef TESSERA_VMM_VMSTATE_INT_H
#define TESSERA_VMM_VMSTATE_INT_H

#include <stddef.h>
#include <stdint.h>

struct stream_writer;
struct virt_machine;

#define OPTS_MAX 1024

/* Rebuilds device options "FIRST,key=value,..." with a new first word (NULL: keep it), without
 * the `drop` keys (NULL-terminated, may be NULL) and with `extra` appended (may be NULL), into
 * out (OPTS_MAX bytes). 0, or -1 when the result does not fit. */
int opts_rewrite(const char *opts, const char *first, const char *const *drop, const char *extra,
                 char *out);

/* The size of a dirty bitmap for m's RAM (one bit per 4 KiB page), and a zeroed one (NULL when
 * out of memory; free() it). */
size_t bitmap_bytes(struct virt_machine *m);
uint64_t *bitmap_alloc(struct virt_machine *m);

/* The end of a stream, written with the vCPUs stopped and the devices quiesced: the pages in
 * bits plus those dirtied since they were taken, or all of RAM when bits is NULL; every hart's
 * and device's section; the trailer. 0 or -EIO (the writer holds the message). */
int write_stopped_state(struct virt_machine *m, struct stream_writer *w, uint64_t *bits);

#endif
