/* Runs the host's network tools (iproute2's `ip`, dnsmasq) for the virtual networks
 * (docs/networks.md): one fork and exec, never a shell, so no argument is ever parsed twice.
 *
 * Contract: argv is a NULL-terminated vector whose argv[0] is looked up in PATH; the child gets
 * stdin /dev/null and no descriptor of ours but a pipe for its stderr. Returns 0 when it exited
 * with status 0, -ENOENT when the program is not installed, else -EIO with err (NETCMD_ERR_LEN)
 * holding the command's first words and the first line of what it said on stderr.
 * The program starts with no blocked signal and every disposition at its default, whatever
 * the calling thread had (a daemon it starts, dnsmasq, must obey SIGTERM).
 * Threads: any; it blocks until the program exits (each `ip` call takes milliseconds). */
#ifndef TESSERA_DAEMON_NET_NETCMD_H
#define TESSERA_DAEMON_NET_NETCMD_H

#include <sys/types.h>

#define NETCMD_ERR_LEN 512

int netcmd_run(const char *const argv[], char *err);
/* netcmd_run() that also collects what the program prints on stdout: on 0, *out is a
 * NUL-terminated string the caller frees. More than NETCMD_OUT_MAX bytes is -E2BIG. */
#define NETCMD_OUT_MAX (4 << 20)
int netcmd_output(const char *const argv[], char **out, char *err);

/* Writes text (a whole nftables ruleset change) to path (0600, not through a link: the
 * network's or router's folder keeps the last one applied, for people to read) and applies it
 * in namespace ns with `nft -f` as one transaction. 0 or -errno with err. */
int netcmd_nft_apply(const char *ns, const char *path, const char *text, char *err);

/* Reads at most len - 1 bytes of the file path (not following a final link) into buf and
 * NUL-terminates them: the byte count, or -errno. */
ssize_t netcmd_read_small(const char *path, char *buf, size_t len);

/* The pid a daemon we started wrote to pidfile, when /proc says that process still is ours:
 * its argv[0] is prog and one of its arguments is arg exactly (so a reused pid is never taken
 * for ours); 0 otherwise. */
pid_t netcmd_pidfile_pid(const char *pidfile, const char *prog, const char *arg);
/* Whether the program `name` is found in PATH (as netcmd_run() would find it). */
int netcmd_have(const char *name);

#endif
