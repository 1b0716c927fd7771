/* Logging and fatal-error helpers shared by every module.
 *
 * log_error() and friends write one line to stderr prefixed with "tessera: ". They are
 * thread-safe (one fprintf per line). log_ratelimited() is for guest-triggered conditions:
 * a hostile guest must not be able to flood the host's terminal or log. */
#ifndef TESSERA_BASE_LOG_H
#define TESSERA_BASE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A rate limiter for one call site: at most `burst` messages, then one per `interval_ns`. */
struct log_ratelimit {
    uint64_t last_ns;
    uint32_t count;
};

/* Returns true when a message from the call site owning `rl` may be printed now. */
bool log_ratelimit_ok(struct log_ratelimit *rl);

#define log_guest(...)                      \
    do {                                    \
        static struct log_ratelimit rl_;    \
        if (log_ratelimit_ok(&rl_))         \
            log_msg(LOG_WARN, __VA_ARGS__); \
    } while (0)

/* Start-up allocation helpers: print a message and exit(1) on failure. Only for set-up paths,
 * never for anything a guest can drive. */
void *xzalloc(size_t size);
char *xstrdup(const char *s);

#endif
