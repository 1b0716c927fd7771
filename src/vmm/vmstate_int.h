/* What vmstate.c shares with the other users of device option strings in src/vmm/ (the
 * snapshot writer, snapshot.c). Nothing outside src/vmm/ includes this. */
#ifndef TESSERA_VMM_VMSTATE_INT_H
#define TESSERA_VMM_VMSTATE_INT_H

#define OPTS_MAX 1024 /* a device's option string, with its NUL */

/* Rebuilds device options "FIRST,key=value,..." into out (OPTS_MAX bytes) with a new first
 * word (NULL: keep it), dropping the keys in the NULL-terminated `drop` (may be NULL) and
 * appending `extra` (may be NULL). Returns 0, or -1 when the result does not fit OPTS_MAX. */
int opts_rewrite(const char *opts, const char *first, const char *const *drop, const char *extra,
                 char *out);

#endif
