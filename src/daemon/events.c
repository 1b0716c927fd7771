/* The daemon's event bus (events.h). */
#include "daemon/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct events_slot {
    uint64_t seq;
    char tenant[STORE_NAME_LEN];
    char type[EVENTS_TYPE_LEN];
    char *data;
};

struct events_bus {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a publish, or events_wake() */
    uint64_t last;          /* the newest seq; slot seq % EVENTS_RING holds it */
    struct events_slot ring[EVENTS_RING];
};

int events_bus_new(struct events_bus **out)
{
    struct events_bus *bus = calloc(1, sizeof(*bus));
    pthread_condattr_t ca;

    *out = NULL;
    if (!bus)
        return -ENOMEM;
    /* Waits measure a relative timeout: on the monotonic clock, so a clock step cannot make
     * a heartbeat late. */
    if (pthread_condattr_init(&ca)) {
        free(bus);
        return -ENOMEM;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&bus->lock, NULL);
    pthread_cond_init(&bus->changed, &ca);
    pthread_condattr_destroy(&ca);
    *out = bus;
    return 0;
}

void events_bus_free(struct events_bus *bus)
{
    size_t i;

    if (!bus)
        return;
    for (i = 0; i < EVENTS_RING; i++)
        free(bus->ring[i].data);
    pthread_cond_destroy(&bus->changed);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

static bool type_valid(const char *type)
{
    size_t n = strlen(type);

    return n && n < EVENTS_TYPE_LEN && strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int events_publish(struct events_bus *bus, const char *tenant, const char *type, const char *data)
{
    struct events_slot *slot;
    size_t n = strlen(data);
    char *copy;

    /* One SSE "data:" line each (WHATWG HTML §9.2.6): a line break would end the field. */
    if (!type_valid(type) || strlen(tenant) >= STORE_NAME_LEN || !n || n > EVENTS_DATA_MAX ||
        strpbrk(data, "\r\n"))
        return -EINVAL;
    copy = malloc(n + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, data, n + 1);
    pthread_mutex_lock(&bus->lock);
    bus->last++;
    slot = &bus->ring[bus->last % EVENTS_RING];
    free(slot->data);
    slot->seq = bus->last;
    snprintf(slot->tenant, sizeof(slot->tenant), "%s", tenant);
    snprintf(slot->type, sizeof(slot->type), "%s", type);
    slot->data = copy;
    pthread_cond_broadcast(&bus->changed);
    pthread_mutex_unlock(&bus->lock);
    return 0;
}

uint64_t events_last_seq(struct events_bus *bus)
{
    uint64_t last;

    pthread_mutex_lock(&bus->lock);
    last = bus->last;
    pthread_mutex_unlock(&bus->lock);
    return last;
}

int events_next(struct events_bus *bus, uint64_t *cursor, const char *tenant, int timeout_ms,
                const atomic_bool *cancel, struct events_event *out, uint64_t *missed)
{
    struct events_slot *slot;
    struct timespec deadline;
    uint64_t oldest;
    int ret = 0;

    *missed = 0;
    memset(out, 0, sizeof(*out));
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&bus->lock);
    for (;;) {
        if (cancel && atomic_load(cancel)) {
            ret = -ECANCELED;
            break;
        }
        if (*cursor > bus->last)
            *cursor = bus->last;
        oldest = bus->last >= EVENTS_RING ? bus->last - EVENTS_RING + 1 : 1;
        if (*cursor + 1 < oldest) {
            *missed += oldest - (*cursor + 1);
            *cursor = oldest - 1;
        }
        while (*cursor < bus->last) {
            slot = &bus->ring[(*cursor + 1) % EVENTS_RING];
            *cursor = slot->seq;
            if (tenant && strcmp(tenant, slot->tenant))
                continue;
            out->data = strdup(slot->data);
            if (!out->data) {
                ret = -ENOMEM;
                goto unlock;
            }
            out->seq = slot->seq;
            memcpy(out->tenant, slot->tenant, sizeof(out->tenant));
            memcpy(out->type, slot->type, sizeof(out->type));
            goto unlock;
        }
        if (pthread_cond_timedwait(&bus->changed, &bus->lock, &deadline) == ETIMEDOUT) {
            ret = -ETIMEDOUT;
            break;
        }
    }
unlock:
    pthread_mutex_unlock(&bus->lock);
    return ret;
}

void events_wake(struct events_bus *bus)
{
    pthread_mutex_lock(&bus->lock);
    pthread_cond_broadcast(&bus->changed);
    pthread_mutex_unlock(&bus->lock);
}
