/* Single-use console tickets (ticket.h). */
#include "daemon/ticket.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/token.h"

void ticket_table_init(struct ticket_table *tab)
{
    memset(tab->t, 0, sizeof(tab->t));
    pthread_mutex_init(&tab->lock, NULL);
}

void ticket_table_destroy(struct ticket_table *tab)
{
    explicit_bzero(tab->t, sizeof(tab->t));
    pthread_mutex_destroy(&tab->lock);
}

int64_t ticket_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Compares every byte whatever the first difference, so that the time a guess takes tells
 * nothing of how much of it was right. */
static bool same_text(const char *a, const char *b)
{
    unsigned char diff = 0;
    size_t i;

    for (i = 0; i < TICKET_TEXT_LEN; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static void expire(struct ticket_table *tab, int64_t now)
{
    size_t i;

    for (i = 0; i < TICKET_MAX; i++)
        if (tab->t[i].expires && tab->t[i].expires <= now)
            explicit_bzero(&tab->t[i], sizeof(tab->t[i]));
}

int ticket_issue(struct ticket_table *tab, const struct api_caller *caller, const char *vm,
                 int64_t now, char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[TICKET_TEXT_LEN / 2];
    struct ticket *t = NULL;
    size_t i;
    int ret;

    ret = token_random(raw, sizeof(raw));
    if (ret)
        return ret;
    for (i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[TICKET_TEXT_LEN] = '\0';
    explicit_bzero(raw, sizeof(raw));
    pthread_mutex_lock(&tab->lock);
    expire(tab, now);
    for (i = 0; i < TICKET_MAX && !t; i++)
        if (!tab->t[i].expires)
            t = &tab->t[i];
    if (t) {
        memcpy(t->text, out, TICKET_TEXT_LEN + 1);
        t->caller = *caller;
        snprintf(t->vm, sizeof(t->vm), "%s", vm);
        t->expires = now + TICKET_TTL_S;
    }
    pthread_mutex_unlock(&tab->lock);
    return t ? 0 : -EAGAIN;
}

int ticket_redeem(struct ticket_table *tab, const char *text, const char *vm, int64_t now,
                  struct api_caller *caller)
{
    int ret = -EACCES;
    size_t i;

    if (strlen(text) != TICKET_TEXT_LEN)
        return -EACCES;
    pthread_mutex_lock(&tab->lock);
    expire(tab, now);
    for (i = 0; i < TICKET_MAX; i++) {
        struct ticket *t = &tab->t[i];

        if (!t->expires || !same_text(t->text, text))
            continue;
        if (!strcmp(t->vm, vm)) {
            *caller = t->caller;
            explicit_bzero(t, sizeof(*t));
            ret = 0;
        }
        break;
    }
    pthread_mutex_unlock(&tab->lock);
    return ret;
}
