/* The rate limits of a running VM's disks and NICs (docs/api.md, "Limits"): what
 * PUT /v1/vm/disks/{index}/limits and PUT /v1/vm/nics/{index}/limits change, and the limits in
 * force that GET /v1/vm/stats shows.
 *
 * A limit is a device option marked live in its type's table (hw/virtio/vdev.h: iops, bps,
 * rx_bps, ...), so a change is checked by that table, applied by the device's reconfigure()
 * and then recorded in the machine's device options: describe, snapshots and migration carry
 * the limits in force without any code of their own.
 *
 * Functions run on any thread (the API thread); the machine's lock orders them against a
 * snapshot worker that changes a disk's options. Two calls for the same device must not run
 * concurrently (the control API serialises its ops). */
#ifndef TESSERA_VMM_IOLIMITS_H
#define TESSERA_VMM_IOLIMITS_H

#include <jansson.h>

#define IOLIMITS_ERR_LEN 512

struct virt_machine;

/* Changes limits of the index-th device of `type` ("disk" or "net"): `changes` is an object of
 * live keys to values (an integer >= 0, a string with a suffix where the key takes bytes
 * ("10M"), or null; 0 and null mean unlimited); keys not named keep their value. 0 and in
 * *out a new object of every limit now in force; -ENODEV when there is no such device, or
 * -EINVAL with err naming the key and what was expected; -ENOMEM. */
int iolimits_set(struct virt_machine *m, const char *type, unsigned index, json_t *changes,
                 json_t **out, char *err);

/* The limits in force on the device in `slot` (a new object, {} for none or a device without
 * limits), or NULL when out of memory. */
json_t *iolimits_get(struct virt_machine *m, unsigned slot);

#endif
