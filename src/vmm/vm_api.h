/* The control API of one VM process (`tessera run --api-sock PATH`): serves src/vmm/control.c's
 * routes with operations on the machine. */
#ifndef TESSERA_VMM_VM_API_H
#define TESSERA_VMM_VM_API_H

#include "vmm/control.h"

struct virt_machine;

/* Listens on sock_path; 0 or <0 with err (CONTROL_ERR_LEN) naming the path and the problem. */
int vm_api_start(struct virt_machine *m, const char *sock_path, struct control **out, char *err);

#endif
