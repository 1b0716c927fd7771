/* `tessera`: the entry point; dispatches to a verb. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "cli/client.h"

struct cli_verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct cli_verb verbs[] = {
    {"run", cli_run, "run a virtual machine in the foreground (see `tessera run --help`)"},
    {"vm", cli_vm, "control a running VM through its API socket"},
    {"console", cli_console, "attach to a VM's console socket (`tessera run --console sock=`)"},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: tessera COMMAND [OPTIONS]\n\n"
                 "Tessera runs virtual machines. Commands:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(out, "  %-8s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(out, "\nThe host daemon's commands (`tessera --host URL NOUN VERB`; see `tessera NOUN "
                 "--help`):\n  tenant user token audit vm template volume quota pool host "
                 "operation\n");
    fprintf(out, "\n  tessera --help      this text\n"
                 "\nWith no options, `tessera run` boots the default guest (build it with "
                 "guest/build.sh).\n"
                 "TESSERA_LOG=error|warn|info|debug sets how much goes to stderr (warn).\n");
}

/* Whether argv goes to the daemon's client: it starts with an option (--host, --token, ...) or
 * one of the daemon's nouns. `tessera vm ... --api-sock PATH` stays the VMM's own command. */
static bool is_client(int argc, char **argv)
{
    if (!strncmp(argv[1], "--", 2))
        return true;
    if (!client_is_noun(argv[1]))
        return false;
    for (int i = 2; strcmp(argv[1], "vm") == 0 && i < argc; i++) {
        if (!strncmp(argv[i], "--api-sock", 10))
            return false;
    }
    return true;
}

/* TESSERA_LOG=error|warn|info|debug sets how much goes to stderr (warn by default). */
static void log_level_from_env(void)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *v = getenv("TESSERA_LOG");

    for (unsigned i = 0; v && i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(v, names[i])) {
            log_set_level((enum log_level)i);
            return;
        }
    }
    if (v && *v)
        fprintf(stderr, "tessera: TESSERA_LOG='%s' is not error, warn, info or debug\n", v);
}

int main(int argc, char **argv)
{
    log_level_from_env();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (is_client(argc, argv))
        return cli_client(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (!strcmp(argv[1], verbs[i].name))
            return verbs[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "tessera: unknown command '%s' (try `tessera --help`)\n", argv[1]);
    return 2;
}
