/* fsdir: folder operations the daemon's state directory needs beyond single calls. Plain
 * system calls (no hostfs broker: the daemon is not sandboxed). Any thread. */
#ifndef TESSERA_BASE_FSDIR_H
#define TESSERA_BASE_FSDIR_H

/* Removes the folder dir and the entries in it, which must all be files, sockets or links (a
 * link is removed, never followed). For the daemon's own flat folders (a VM's, a network's).
 * A missing folder is no error. 0, or -errno of the first step that failed: a subfolder
 * makes the final rmdir fail with -ENOTEMPTY rather than being descended into. */
int fsdir_remove_flat(const char *dir);

#endif
