/*
 * `tessera-agent seed`: applies a cloud-init NoCloud seed disk at boot (run once by rcS,
 * before the network comes up). See guest/agent/README.md, "Seed".
 */
#ifndef TESSERA_AGENT_SEED_H
#define TESSERA_AGENT_SEED_H

#include <stddef.h>
#include <sys/types.h>

/* Finds a virtio disk holding an ISO 9660 volume labelled cidata, reads it with cidata.c and
 * applies it: host name, /root/.ssh/authorized_keys, a static network, and the user-data
 * script started in the background. Prints one line to stdout (the console) saying what it
 * did. Returns the process exit status: 0 (also when there is no seed disk), 1 on error. */
int seed_main(void);

/* Writes `len` bytes to `path` through a temporary file renamed over it, with `mode`
 * (tessera-agent.c; the seed and the agent's own commands share it). 0 or -errno. */
int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);

#endif
