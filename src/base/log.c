#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/time.h"

static enum log_level log_threshold = LOG_WARN;

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (level > log_threshold)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line so lines from several threads do not interleave. In raw terminal
     * mode "\n" alone does not return the carriage, hence "\r\n". */
    fprintf(stderr, "tessera: %s\r\n", line);
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
    const uint64_t interval_ns = 1000000000ull;
    uint64_t now = time_now_ns();

    /* Races between threads only make the limit approximate, never unsafe. */
    if (now - rl->last_ns > interval_ns) {
        rl->last_ns = now;
        rl->count = 0;
    }
    return rl->count++ < 5;
}

void *xzalloc(size_t size)
{
    void *p = calloc(1, size ? size : 1);

    if (!p) {
        fprintf(stderr, "tessera: out of memory allocating %zu bytes\n", size);
        exit(1);
    }
    return p;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);

    if (!p) {
        fprintf(stderr, "tessera: out of memory\n");
        exit(1);
    }
    return p;
}
