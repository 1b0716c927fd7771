/* The Goldfish RTC as a guest sees it through the bus: the time follows the host's wall clock,
 * TIME_LOW latches TIME_HIGH, setting the time keeps an offset, the alarm fires (at once when
 * due, later from the event loop) in guest time and raises the line only while enabled, and
 * illegal sizes and offsets never reach or upset the device. The saved state round-trips and a
 * damaged section is refused without changing anything. Times are checked by bracketing them
 * between host clock reads; the only timing assertions are generous upper bounds on "the
 * alarm fires". */
#include "test.h"
#include "fake_irq.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "base/loop.h"
#include "base/state.h"
#include "base/time.h"
#include "hw/bus.h"
#include "hw/goldfish_rtc.h"

#define BASE 0x101000ull

#define TIME_LOW        0x00
#define TIME_HIGH       0x04
#define ALARM_LOW       0x08
#define ALARM_HIGH      0x0c
#define IRQ_ENABLED     0x10
#define CLEAR_ALARM     0x14
#define ALARM_STATUS    0x18
#define CLEAR_INTERRUPT 0x1c

#define MS        1000000ull
#define SEC       1000000000ull
#define FIRE_WAIT 5000 /* ms: the upper bound for an alarm due in tens of ms */

/* One RTC on its own bus, with the line it drives. */
struct rig {
    struct bus bus;
    struct goldfish_rtc *rtc;
    struct fake_irq rx[1];
};

static struct loop *loop;

static uint64_t host_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static bool wait_level(struct fake_irq *f, bool want, unsigned limit_ms)
{
    uint64_t end = time_now_ns() + (uint64_t)limit_ms * MS;

    while (level(f) != want) {
        if (time_now_ns() > end)
            return false;
        sleep_ms(1);
    }
    return true;
}

static bool rig_init(struct rig *r)
{
    struct irq_line line = {fake_irq_set, r->rx, 0};

    memset(r, 0, sizeof(*r));
    if (goldfish_rtc_create(&line, loop, &r->rtc))
        return false;
    return bus_add(&r->bus, &(struct mmio_region){"rtc", BASE, GOLDFISH_RTC_MMIO_SIZE,
                                                  &goldfish_rtc_mmio_ops, r->rtc}) == 0;
}

static uint32_t rd(struct rig *r, uint64_t off)
{
    uint64_t v = 0xdeadbeefdeadull;

    CHECK(bus_read(&r->bus, BASE + off, 4, &v) == 0);
    CHECK(v <= UINT32_MAX);
    return (uint32_t)v;
}

static void wr(struct rig *r, uint64_t off, uint64_t v)
{
    CHECK(bus_write(&r->bus, BASE + off, 4, v) == 0);
}

/* The guest's way to read the time: TIME_LOW first (latches), then TIME_HIGH. */
static uint64_t rtc_time(struct rig *r)
{
    uint64_t lo = rd(r, TIME_LOW);

    return ((uint64_t)rd(r, TIME_HIGH) << 32) | lo;
}

/* Sets the time as Linux's driver could without a carry between the halves: low half 0
 * first, so the high write cannot be followed by a wrap of the low half (4 s away). */
static void set_time(struct rig *r, uint64_t t)
{
    wr(r, TIME_LOW, 0);
    wr(r, TIME_HIGH, t >> 32);
    wr(r, TIME_LOW, t & 0xffffffffu);
}

static void set_alarm(struct rig *r, uint64_t t)
{
    wr(r, ALARM_HIGH, t >> 32);
    wr(r, ALARM_LOW, t & 0xffffffffu); /* arms */
}

static void test_create_args(void)
{
    struct irq_line line = {0};
    struct goldfish_rtc *rtc = NULL;

    CHECK(goldfish_rtc_create(NULL, loop, &rtc) == -EINVAL);
    CHECK(goldfish_rtc_create(&line, NULL, &rtc) == -EINVAL);
    CHECK(goldfish_rtc_create(&line, loop, NULL) == -EINVAL);
    CHECK(rtc == NULL);
    goldfish_rtc_destroy(NULL);
}

/* A fresh RTC reads the host's wall clock; TIME_HIGH is the half latched with TIME_LOW. */
static void test_time_and_latch(struct rig *r)
{
    uint64_t before = host_ns(), t = rtc_time(r), after = host_ns();

    CHECK(before <= t && t <= after);
    CHECK(t > 1600000000ull * SEC); /* after 2020: really the wall clock, not uptime */

    /* Change the time's high half: TIME_HIGH still answers what the last TIME_LOW latched. */
    rd(r, TIME_LOW);
    uint32_t latched = rd(r, TIME_HIGH);
    wr(r, TIME_HIGH, latched + 5);
    CHECK_EQ_U64(rd(r, TIME_HIGH), latched);
    CHECK_EQ_U64(rd(r, TIME_HIGH), latched);
    rd(r, TIME_LOW); /* latches the new half */
    CHECK_EQ_U64(rd(r, TIME_HIGH), latched + 5);
    wr(r, TIME_HIGH, latched);
}

/* Setting the time keeps an offset from the host clock: the guest's clock goes on from the
 * value written, at the host's pace, in either direction and across 2^64. */
static void test_offset(struct rig *r)
{
    static const uint64_t times[] = {946684800ull * SEC, /* 2000-01-01 */
                                     4102444800ull * SEC, 0, UINT64_MAX - 3 * MS};

    for (unsigned i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        uint64_t t = times[i], before = host_ns(), got, after;

        set_time(r, t);
        got = rtc_time(r);
        after = host_ns();
        CHECK(got - t <= after - before); /* mod 2^64: at most the time that passed */
        sleep_ms(5);
        CHECK(rtc_time(r) - t >= 5 * MS); /* it runs on */
    }
    /* Back to the host's time: the offset goes back to about 0. */
    set_time(r, host_ns());
    {
        uint64_t before = host_ns(), t = rtc_time(r), after = host_ns();

        CHECK(t + 100 * MS >= before && t <= after);
    }
}

/* An alarm at or before the time now fires inside the ALARM_LOW write; the line follows
 * pending && enabled, and CLEAR_INTERRUPT lowers it. */
static void test_alarm_due_now(struct rig *r)
{
    uint64_t now = rtc_time(r);
    unsigned sets;

    wr(r, IRQ_ENABLED, 0);
    set_alarm(r, now - SEC);
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 0);
    CHECK(!level(&r->rx[0])); /* pending, not enabled */
    wr(r, IRQ_ENABLED, 1);
    CHECK_EQ_U64(rd(r, IRQ_ENABLED), 1);
    CHECK(level(&r->rx[0]));
    wr(r, IRQ_ENABLED, 0);
    CHECK(!level(&r->rx[0]));
    wr(r, IRQ_ENABLED, 0xfffffffe); /* only bit 0 counts */
    CHECK_EQ_U64(rd(r, IRQ_ENABLED), 0);
    wr(r, IRQ_ENABLED, 1);
    CHECK(level(&r->rx[0]));
    wr(r, CLEAR_INTERRUPT, 1);
    CHECK(!level(&r->rx[0]));
    sets = r->rx[0].sets;
    wr(r, CLEAR_INTERRUPT, 1); /* nothing pending: no change, no call */
    CHECK_EQ_U64(r->rx[0].sets, sets);

    /* The alarm registers read back what was written. */
    set_alarm(r, 0x123456789abcdef0ull); /* in the past of a 2020s clock: fires */
    CHECK_EQ_U64(rd(r, ALARM_LOW), 0x9abcdef0);
    CHECK_EQ_U64(rd(r, ALARM_HIGH), 0x12345678);
    CHECK(level(&r->rx[0]));
    wr(r, CLEAR_INTERRUPT, 0);
    CHECK(!level(&r->rx[0]));

    /* The furthest alarm there is stays armed (times compare unsigned, as QEMU's). */
    set_alarm(r, UINT64_MAX);
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 1);
    CHECK(!level(&r->rx[0]));
    wr(r, CLEAR_ALARM, 1);
}

/* An alarm in the future fires from the event loop once its time has come, never before. */
static void test_alarm_fires_later(struct rig *r)
{
    uint64_t at = rtc_time(r) + 30 * MS;

    wr(r, IRQ_ENABLED, 1);
    set_alarm(r, at);
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 1);
    CHECK(wait_level(&r->rx[0], true, FIRE_WAIT));
    CHECK(rtc_time(r) >= at);
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 0);
    wr(r, CLEAR_INTERRUPT, 1);
    CHECK(!level(&r->rx[0]));

    /* CLEAR_ALARM disarms it: nothing fires after its time. */
    set_alarm(r, rtc_time(r) + 20 * MS);
    wr(r, CLEAR_ALARM, 1);
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 0);
    sleep_ms(80);
    CHECK(!level(&r->rx[0]));
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 0);
}

/* The alarm is in the guest's time: with the clock set back to 2000, an alarm at the host's
 * "now" is 20-odd years away; one 20 ms after the guest's time fires. Setting the time past an
 * armed alarm fires it at once. */
static void test_alarm_guest_time(struct rig *r)
{
    uint64_t y2000 = 946684800ull * SEC;

    wr(r, IRQ_ENABLED, 1);
    set_time(r, y2000);
    set_alarm(r, host_ns());
    sleep_ms(50);
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 1);
    CHECK(!level(&r->rx[0]));

    set_alarm(r, rtc_time(r) + 20 * MS);
    CHECK(wait_level(&r->rx[0], true, FIRE_WAIT));
    wr(r, CLEAR_INTERRUPT, 1);

    set_alarm(r, y2000 + 3600 * SEC);
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 1);
    set_time(r, y2000 + 3601 * SEC);
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 0);
    CHECK(level(&r->rx[0]));
    wr(r, CLEAR_INTERRUPT, 1);
    set_time(r, host_ns());
}

/* The bus refuses sizes other than 4 and misaligned accesses before the device sees them; the
 * rest of the window reads 0 and ignores writes; past the window is no device at all. */
static void test_bad_access(struct rig *r)
{
    static const unsigned sizes[] = {1, 2, 8};
    uint64_t v = 7;

    for (unsigned i = 0; i < 3; i++) {
        CHECK(bus_read(&r->bus, BASE + TIME_LOW, sizes[i], &v) == -1);
        CHECK_EQ_U64(v, 0);
        CHECK(bus_write(&r->bus, BASE + ALARM_LOW, sizes[i], 0) == -1);
    }
    CHECK(bus_read(&r->bus, BASE + 2, 4, &v) == -1);
    CHECK(bus_write(&r->bus, BASE + IRQ_ENABLED + 1, 4, 1) == -1);
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 0); /* the refused 1-, 2- and 8-byte arms did nothing */
    CHECK_EQ_U64(rd(r, IRQ_ENABLED), 1);

    for (uint64_t off = 0x20; off < GOLDFISH_RTC_MMIO_SIZE; off += 0x1f4) {
        wr(r, off, 0xffffffff);
        CHECK_EQ_U64(rd(r, off), 0);
    }
    wr(r, GOLDFISH_RTC_MMIO_SIZE - 4, 0xffffffff);
    CHECK_EQ_U64(rd(r, GOLDFISH_RTC_MMIO_SIZE - 4), 0);
    wr(r, ALARM_STATUS, 1); /* read-only: ignored */
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 0);
    CHECK_EQ_U64(rd(r, CLEAR_ALARM), 0);
    CHECK_EQ_U64(rd(r, CLEAR_INTERRUPT), 0);
    CHECK(bus_read(&r->bus, BASE + GOLDFISH_RTC_MMIO_SIZE, 4, &v) == -1);
    CHECK(!level(&r->rx[0]));
}

/* Reset disarms and disables, lowers the line, and keeps the time the guest set. */
static void test_reset(struct rig *r)
{
    uint64_t y2000 = 946684800ull * SEC;

    wr(r, IRQ_ENABLED, 1);
    set_alarm(r, 0);
    CHECK(level(&r->rx[0]));
    set_time(r, y2000);
    set_alarm(r, y2000 + 3600 * SEC);
    goldfish_rtc_reset(r->rtc);
    CHECK(!level(&r->rx[0]));
    CHECK_EQ_U64(rd(r, ALARM_STATUS), 0);
    CHECK_EQ_U64(rd(r, IRQ_ENABLED), 0);
    CHECK_EQ_U64(rd(r, TIME_HIGH), 0);
    CHECK(rtc_time(r) - y2000 < 60 * SEC);
    wr(r, IRQ_ENABLED, 1);
    CHECK(!level(&r->rx[0])); /* the pending interrupt went with the reset */
    set_time(r, host_ns());
}

static bool same_bytes(const struct sbuf *a, const struct sbuf *b)
{
    return !a->oom && !b->oom && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static int load_bytes(struct goldfish_rtc *rtc, const void *p, size_t len, uint32_t version)
{
    struct scur c;

    scur_init(&c, p, len, "rtc");
    return goldfish_rtc_load(rtc, &c, version);
}

/* Byte offsets of the version-1 section's fields (goldfish_rtc.h). */
#define AT_ARMED   16
#define AT_PENDING 17
#define AT_ENABLED 18
#define STATE_LEN  23

/* A busy RTC (time set back, interrupt pending and enabled, a far alarm armed, a latch held)
 * saved and loaded into a fresh one: the same bytes, and the guest sees the same RTC. */
static void test_save_load(struct rig *a)
{
    uint64_t y2000 = 946684800ull * SEC, at = y2000 + 7200 * SEC;
    struct sbuf sa, sb;
    struct rig b;

    wr(a, IRQ_ENABLED, 1);
    set_alarm(a, 0); /* pending */
    set_time(a, y2000);
    set_alarm(a, at);
    rd(a, TIME_LOW); /* latches y2000's high half (its low half is 2.9 s from a carry) */
    sbuf_init(&sa);
    goldfish_rtc_save(a->rtc, &sa);
    CHECK_EQ_U64(sa.len, STATE_LEN);

    CHECK(rig_init(&b));
    if (!b.rtc)
        goto free_a;
    CHECK(load_bytes(b.rtc, sa.data, sa.len, GOLDFISH_RTC_STATE_VERSION) == 0);
    sbuf_init(&sb);
    goldfish_rtc_save(b.rtc, &sb);
    CHECK(same_bytes(&sa, &sb));
    sbuf_free(&sb);
    CHECK(level(&b.rx[0]));
    CHECK_EQ_U64(rd(&b, ALARM_STATUS), 1);
    CHECK_EQ_U64(rd(&b, ALARM_LOW), at & 0xffffffffu);
    CHECK_EQ_U64(rd(&b, ALARM_HIGH), at >> 32);
    CHECK_EQ_U64(rd(&b, TIME_HIGH), y2000 >> 32);

    /* Damaged sections: every truncation, a bool that is not 0/1, a byte too many, another
     * version. Each is refused and b keeps what it had. */
    for (size_t len = 0; len < sa.len; len++)
        CHECK(load_bytes(b.rtc, sa.data, len, GOLDFISH_RTC_STATE_VERSION) == -1);
    {
        static const size_t bools[] = {AT_ARMED, AT_PENDING, AT_ENABLED};
        uint8_t bad[STATE_LEN + 1] = {0};

        for (unsigned i = 0; i < 3; i++) {
            memcpy(bad, sa.data, STATE_LEN);
            bad[bools[i]] = 2;
            CHECK(load_bytes(b.rtc, bad, STATE_LEN, GOLDFISH_RTC_STATE_VERSION) == -1);
        }
        memcpy(bad, sa.data, STATE_LEN);
        CHECK(load_bytes(b.rtc, bad, STATE_LEN + 1, GOLDFISH_RTC_STATE_VERSION) == -1);
        CHECK(load_bytes(b.rtc, bad, STATE_LEN, GOLDFISH_RTC_STATE_VERSION + 1) == -1);
        CHECK(load_bytes(b.rtc, bad, STATE_LEN, 0) == -1);
    }
    {
        struct scur c;

        scur_init(&c, sa.data, 5, "rtc");
        CHECK(goldfish_rtc_load(b.rtc, &c, GOLDFISH_RTC_STATE_VERSION) == -1);
        CHECK(strstr(c.err, "rtc") != NULL);
    }
    sbuf_init(&sb);
    goldfish_rtc_save(b.rtc, &sb);
    CHECK(same_bytes(&sa, &sb));
    CHECK(level(&b.rx[0]));
    sbuf_free(&sb);
    CHECK(rtc_time(&b) - y2000 < 60 * SEC); /* the offset came along */

    /* An armed alarm whose time passed while the state was stored fires on load. */
    wr(a, CLEAR_INTERRUPT, 1);
    set_alarm(a, y2000 + 3600 * SEC);
    set_time(a, y2000);
    sbuf_free(&sa);
    sbuf_init(&sa);
    goldfish_rtc_save(a->rtc, &sa);
    goldfish_rtc_reset(b.rtc);
    set_time(&b, host_ns());
    CHECK(!level(&b.rx[0]));
    if (sa.len == STATE_LEN) {
        uint64_t offset = 0;

        for (unsigned i = 0; i < 8; i++)
            offset |= (uint64_t)sa.data[i] << (8 * i);
        offset += 7200 * SEC; /* the guest's clock two hours later: past the alarm */
        for (unsigned i = 0; i < 8; i++)
            sa.data[i] = (uint8_t)(offset >> (8 * i));
        CHECK(load_bytes(b.rtc, sa.data, sa.len, GOLDFISH_RTC_STATE_VERSION) == 0);
        CHECK_EQ_U64(rd(&b, ALARM_STATUS), 0);
        CHECK(level(&b.rx[0]));
    }
    goldfish_rtc_destroy(b.rtc);
free_a:
    sbuf_free(&sa);
    goldfish_rtc_reset(a->rtc);
    set_time(a, host_ns());
}

int main(void)
{
    struct rig r;

    if (loop_create(&loop) || loop_start(loop)) {
        CHECK(!"cannot start an event loop");
        return test_finish("hw_goldfish_rtc");
    }
    test_create_args();
    CHECK(rig_init(&r));
    if (r.rtc) {
        test_time_and_latch(&r);
        test_offset(&r);
        test_alarm_due_now(&r);
        test_alarm_fires_later(&r);
        test_alarm_guest_time(&r);
        test_bad_access(&r);
        test_reset(&r);
        test_save_load(&r);
        goldfish_rtc_destroy(r.rtc);
    }
    loop_destroy(loop);
    return test_finish("hw_goldfish_rtc");
}
