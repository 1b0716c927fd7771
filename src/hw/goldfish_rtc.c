/* Goldfish RTC. See goldfish_rtc.h for the registers, the clock, the alarm and the locking. */
#include "hw/goldfish_rtc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "base/log.h"
#include "base/loop.h"
#include "base/state.h"
#include "base/time.h"

#define RTC_TIME_LOW        0x00
#define RTC_TIME_HIGH       0x04
#define RTC_ALARM_LOW       0x08
#define RTC_ALARM_HIGH      0x0c
#define RTC_IRQ_ENABLED     0x10
#define RTC_CLEAR_ALARM     0x14
#define RTC_ALARM_STATUS    0x18
#define RTC_CLEAR_INTERRUPT 0x1c

#define NS_PER_SEC 1000000000ull
#define LOW32      0xffffffffull

struct goldfish_rtc {
    /* Immutable after goldfish_rtc_create(). */
    struct irq_line irq;
    struct loop *loop;
    struct loop_timer *timer; /* the alarm; LOOP_TIMER_OFF while no alarm is armed */

    /* Everything below is protected by `lock`. */
    pthread_mutex_t lock;
    uint64_t offset;    /* guest time = host CLOCK_REALTIME ns + offset (mod 2^64) */
    uint64_t alarm;     /* guest time at which the alarm fires */
    bool alarm_armed;   /* ALARM_STATUS */
    bool irq_pending;   /* the alarm fired and CLEAR_INTERRUPT has not been written since */
    bool irq_enabled;   /* IRQ_ENABLED bit 0 */
    bool line;          /* the level last set on `irq` */
    uint32_t time_high; /* TIME_HIGH, latched by TIME_LOW reads */
};

/* The host's wall clock in ns since the epoch (mod 2^64, so a clock before 1970 still gives a
 * defined value). */
static uint64_t rtc_host_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Caller holds r->lock. */
static uint64_t rtc_now_locked(const struct goldfish_rtc *r)
{
    return rtc_host_ns() + r->offset;
}

/* Caller holds r->lock. Sets the line to pending && enabled; calls it only on a change unless
 * `force` (reset and load: the receiver may believe anything). The PLIC's lock is taken below
 * ours, as plic.h's lock order says. */
static void rtc_update_irq_locked(struct goldfish_rtc *r, bool force)
{
    bool level = r->irq_pending && r->irq_enabled;

    if (level != r->line || force) {
        r->line = level;
        irq_set(&r->irq, level);
    }
}

/* Caller holds r->lock. Fires an armed alarm whose time has come (alarm <= time now, unsigned,
 * as QEMU compares), or (re)plans the loop timer for it: at the alarm's distance from the
 * guest's time now, at most GOLDFISH_RTC_MAX_WAIT_S away, on CLOCK_MONOTONIC. A disarmed alarm
 * disarms the timer. */
static void rtc_plan_locked(struct goldfish_rtc *r)
{
    uint64_t now, until;

    if (!r->alarm_armed) {
        loop_mod_timer(r->loop, r->timer, LOOP_TIMER_OFF);
        return;
    }
    now = rtc_now_locked(r);
    until = r->alarm - now;
    if (r->alarm <= now) {
        r->alarm_armed = false;
        r->irq_pending = true;
        rtc_update_irq_locked(r, false);
        loop_mod_timer(r->loop, r->timer, LOOP_TIMER_OFF);
        return;
    }
    if (until > GOLDFISH_RTC_MAX_WAIT_S * NS_PER_SEC)
        until = GOLDFISH_RTC_MAX_WAIT_S * NS_PER_SEC;
    loop_mod_timer(r->loop, r->timer, time_now_ns() + until);
}

/* The alarm timer, on the loop thread: fires the alarm if its time has come by the wall
 * clock, else sleeps again (woken early by a host clock set back, or a capped wait). An alarm
 * disarmed meanwhile is left alone. */
static void rtc_timer_fire(void *opaque)
{
    struct goldfish_rtc *r = opaque;

    pthread_mutex_lock(&r->lock);
    if (r->alarm_armed)
        rtc_plan_locked(r);
    pthread_mutex_unlock(&r->lock);
}

int goldfish_rtc_create(const struct irq_line *irq, struct loop *loop, struct goldfish_rtc **out)
{
    struct goldfish_rtc *r;
    int err;

    if (!irq || !loop || !out)
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->irq = *irq;
    r->loop = loop;
    err = -pthread_mutex_init(&r->lock, NULL);
    if (err)
        goto err_free;
    err = loop_add_timer(loop, LOOP_TIMER_OFF, rtc_timer_fire, r, &r->timer);
    if (err)
        goto err_mutex;
    *out = r;
    return 0;

err_mutex:
    pthread_mutex_destroy(&r->lock);
err_free:
    free(r);
    return err;
}

void goldfish_rtc_destroy(struct goldfish_rtc *r)
{
    if (!r)
        return;
    /* Without our lock: the callback being removed may be waiting for it. */
    loop_del_timer(r->loop, r->timer);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void goldfish_rtc_reset(struct goldfish_rtc *r)
{
    pthread_mutex_lock(&r->lock);
    r->alarm = 0;
    r->alarm_armed = false;
    r->irq_pending = false;
    r->irq_enabled = false;
    r->time_high = 0;
    rtc_plan_locked(r);
    rtc_update_irq_locked(r, true);
    pthread_mutex_unlock(&r->lock);
}

void goldfish_rtc_save(struct goldfish_rtc *r, struct sbuf *out)
{
    pthread_mutex_lock(&r->lock);
    sbuf_put_u64(out, r->offset);
    sbuf_put_u64(out, r->alarm);
    sbuf_put_bool(out, r->alarm_armed);
    sbuf_put_bool(out, r->irq_pending);
    sbuf_put_bool(out, r->irq_enabled);
    sbuf_put_u32(out, r->time_high);
    pthread_mutex_unlock(&r->lock);
}

int goldfish_rtc_load(struct goldfish_rtc *r, struct scur *in, uint32_t version)
{
    uint64_t offset, alarm;
    bool armed, pending, enabled;
    uint32_t time_high;

    if (version != GOLDFISH_RTC_STATE_VERSION)
        return scur_fail(in, "section version %" PRIu32 " is not supported (this build reads %u)",
                         version, GOLDFISH_RTC_STATE_VERSION);
    offset = scur_get_u64(in);
    alarm = scur_get_u64(in);
    armed = scur_get_bool(in);
    pending = scur_get_bool(in);
    enabled = scur_get_bool(in);
    time_high = scur_get_u32(in);
    if (scur_finish(in))
        return -1;

    pthread_mutex_lock(&r->lock);
    r->offset = offset;
    r->alarm = alarm;
    r->alarm_armed = armed;
    r->irq_pending = pending;
    r->irq_enabled = enabled;
    r->time_high = time_high;
    rtc_plan_locked(r); /* may fire an alarm that came due while the state was stored */
    rtc_update_irq_locked(r, true);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* vCPU thread; takes the RTC lock. The bus passes only 4-byte aligned accesses in the window. */
static int rtc_mmio_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct goldfish_rtc *r = opaque;

    *value = 0;
    pthread_mutex_lock(&r->lock);
    switch (offset) {
    case RTC_TIME_LOW: {
        uint64_t now = rtc_now_locked(r);

        r->time_high = (uint32_t)(now >> 32);
        *value = now & LOW32;
        break;
    }
    case RTC_TIME_HIGH: *value = r->time_high; break;
    case RTC_ALARM_LOW: *value = r->alarm & LOW32; break;
    case RTC_ALARM_HIGH: *value = r->alarm >> 32; break;
    case RTC_IRQ_ENABLED: *value = r->irq_enabled; break;
    case RTC_ALARM_STATUS: *value = r->alarm_armed; break;
    case RTC_CLEAR_ALARM:
    case RTC_CLEAR_INTERRUPT: break; /* write-only */
    default:
        log_guest("goldfish_rtc: read of offset 0x%" PRIx64 ", which is no register", offset);
        break;
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* vCPU thread; takes the RTC lock, sets the line and re-plans the loop timer under it. */
static int rtc_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct goldfish_rtc *r = opaque;
    uint64_t v = value & LOW32;

    pthread_mutex_lock(&r->lock);
    switch (offset) {
    case RTC_TIME_LOW:
    case RTC_TIME_HIGH: {
        uint64_t now = rtc_now_locked(r);
        uint64_t want = offset == RTC_TIME_LOW ? (now & ~LOW32) | v : (now & LOW32) | (v << 32);

        r->offset += want - now;
        rtc_plan_locked(r); /* an armed alarm is now nearer, further, or due */
        break;
    }
    case RTC_ALARM_LOW:
        r->alarm = (r->alarm & ~LOW32) | v;
        r->alarm_armed = true;
        rtc_plan_locked(r);
        break;
    case RTC_ALARM_HIGH: r->alarm = (r->alarm & LOW32) | (v << 32); break;
    case RTC_IRQ_ENABLED:
        r->irq_enabled = v & 1;
        rtc_update_irq_locked(r, false);
        break;
    case RTC_CLEAR_ALARM:
        r->alarm_armed = false;
        rtc_plan_locked(r);
        break;
    case RTC_CLEAR_INTERRUPT:
        r->irq_pending = false;
        rtc_update_irq_locked(r, false);
        break;
    default:
        log_guest("goldfish_rtc: write of 0x%" PRIx64 " to offset 0x%" PRIx64 " ignored", value,
                  offset);
        break;
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
}

const struct mmio_ops goldfish_rtc_mmio_ops = {
    .read = rtc_mmio_read,
    .write = rtc_mmio_write,
    .min_size = 4,
    .max_size = 4,
};
