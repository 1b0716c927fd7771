/* portsec.h: the table as nft's own syntax, loaded with `ip netns exec NS nft -f FILE`. */
#include "daemon/net/portsec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What may go into the file: the tap names and MACs the daemon made, checked again here so a
 * damaged document can never add a statement. */
static int portsec_check(const struct portsec_port *p)
{
    size_t n = strlen(p->tap);

    if (n == 0 || n >= 16 || strspn(p->tap, "abcdefghijklmnopqrstuvwxyz0123456789") != n)
        return -EINVAL;
    if (strlen(p->mac) != 17 || strspn(p->mac, "0123456789abcdef:") != 17)
        return -EINVAL;
    n = p->ip ? strlen(p->ip) : 0;
    if (p->ip && (n < 7 || n > 15 || strspn(p->ip, "0123456789.") != n))
        return -EINVAL;
    return 0;
}

int portsec_apply(const char *ns, const char *dir, const struct portsec_port *ports, size_t n,
                  char *err)
{
    char path[PATH_MAX], *text = NULL;
    size_t i, len = 0;
    FILE *f;
    int ret;

    for (i = 0; i < n; i++) {
        if (portsec_check(&ports[i])) {
            snprintf(err, NETCMD_ERR_LEN, "port security: port %zu (%.20s, %.20s) is malformed", i,
                     ports[i].tap, ports[i].mac);
            return -EINVAL;
        }
    }
    f = open_memstream(&text, &len);
    if (!f) {
        snprintf(err, NETCMD_ERR_LEN, "port security: out of memory");
        return -ENOMEM;
    }
    /* "table" then "delete table": the delete never fails, whether the table existed or
     * not; the new table follows in the same transaction. */
    fprintf(f, "table bridge tessera\n"
               "delete table bridge tessera\n"
               "table bridge tessera {\n"
               "    chain ports {\n"
               "        type filter hook prerouting priority -200; policy accept;\n");
    for (i = 0; i < n; i++) {
        fprintf(f,
                "        iifname \"%s\" ether saddr != %s drop\n"
                "        iifname \"%s\" arp saddr ether != %s drop\n",
                ports[i].tap, ports[i].mac, ports[i].tap, ports[i].mac);
        if (ports[i].ip)
            fprintf(f,
                    "        iifname \"%s\" ip saddr != { 0.0.0.0, %s } drop\n"
                    "        iifname \"%s\" arp saddr ip != { 0.0.0.0, %s } drop\n",
                    ports[i].tap, ports[i].ip, ports[i].tap, ports[i].ip);
    }
    fprintf(f, "    }\n}\n");
    if (fclose(f)) {
        free(text);
        snprintf(err, NETCMD_ERR_LEN, "port security: out of memory");
        return -ENOMEM;
    }
    snprintf(path, sizeof(path), "%s/ports.nft", dir);
    ret = netcmd_nft_apply(ns, path, text, err);
    free(text);
    return ret;
}
