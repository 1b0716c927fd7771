/* The control API of one VM process (`tessera run --api-sock PATH`): serves src/vmm/control.c's
 * routes with operations on the machine. */
#ifndef TESSERA_VMM_VM_API_H
#define TESSERA_VMM_VM_API_H

#include "vmm/control.h"

struct virt_machine;
struct vm_api;

/* Listens on sock_path; 0 or <0 with err (CONTROL_ERR_LEN) naming the path and the problem. */
/* console_sock and console_log (may be NULL) are where the serial console is served and
 * logged (vmm/console_server.h): describe shows them in the VM's config document. */
int vm_api_start(struct virt_machine *m, const char *sock_path, const char *console_sock,
                 const char *console_log, struct vm_api **out, char *err);

/* Stops serving and cancels a pending shutdown fallback. After return nothing of the API
 * touches the machine. NULL is allowed. */
void vm_api_stop(struct vm_api *a);

#endif
