/* netcmd.h: fork, exec, collect stderr, wait. */
#include "daemon/net/netcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int netcmd_have(const char *name)
{
    const char *path = getenv("PATH");
    char buf[4096], *dir, *save = NULL, file[4200];
    struct stat st;

    snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
    for (dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(file, sizeof(file), "%s/%s", dir, name);
        if (!stat(file, &st) && S_ISREG(st.st_mode) && !access(file, X_OK))
            return 1;
    }
    return 0;
}

/* The command as one line for messages: its first few words. */
static void netcmd_describe(const char *const argv[], char *out, size_t len)
{
    size_t n = 0, i;

    out[0] = '\0';
    for (i = 0; argv[i] && i < 8 && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? " " : "", argv[i]);
}

int netcmd_run(const char *const argv[], char *err)
{
    char what[160], msg[256];
    int pipefd[2], status, devnull;
    ssize_t got = 0, r;
    pid_t pid;

    if (!netcmd_have(argv[0])) {
        snprintf(err, NETCMD_ERR_LEN, "%s is not installed (scripts/install-deps.sh)", argv[0]);
        return -ENOENT;
    }
    if (pipe2(pipefd, O_CLOEXEC))
        goto fail_errno;
    pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        goto fail_errno;
    }
    if (pid == 0) {
        sigset_t none;

        /* tesserad's threads block the signals its main thread waits for; a program inherits
         * the mask through exec, and a dnsmasq that blocks SIGTERM would ignore its stop. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                signal(sig, SIG_DFL);
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(pipefd[1], 2) < 0)
            _exit(127);
        /* Every other descriptor of the daemon is O_CLOEXEC: the exec drops them. */
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    while (got < (ssize_t)sizeof(msg) - 1 &&
           (r = read(pipefd[0], msg + got, sizeof(msg) - 1 - (size_t)got)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        got += r;
    }
    msg[got] = '\0';
    /* Whatever more it says is drained by its exit: the pipe closes with it. */
    while (read(pipefd[0], what, sizeof(what)) > 0)
        ;
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            goto fail_errno;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    msg[strcspn(msg, "\n")] = '\0';
    netcmd_describe(argv, what, sizeof(what));
    snprintf(err, NETCMD_ERR_LEN, "'%s' failed (%s %d): %s", what,
             WIFEXITED(status) ? "status" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
             msg[0] ? msg : "no message");
    return -EIO;
fail_errno:
    status = errno;
    snprintf(err, NETCMD_ERR_LEN, "running %s: %s", argv[0], strerror(status));
    return -status;
}
