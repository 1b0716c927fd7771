/* The `tessera` command's verbs. Each takes the arguments after its name (argv[0] is the
 * verb) and returns the process exit status. */
#ifndef TESSERA_CLI_CLI_H
#define TESSERA_CLI_CLI_H

int cli_run(int argc, char **argv);
int cli_vm(int argc, char **argv);
int cli_console(int argc, char **argv);

/* The daemon's client (client.h): argv[0] is the first word after `tessera` that is not the
 * program's name, e.g. "vm" or "--host"; all of argv is the client's command line. */
int cli_client(int argc, char **argv);

#endif
