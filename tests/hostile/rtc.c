/* rtc: the goldfish RTC (0x10_1000, PLIC source 11) driven by a guest that does everything a
 * driver must not, and the alarm's interrupt followed through the PLIC to the hart. No virtio
 * device is needed; run.sh runs it with one configuration.
 *
 *   1      the time reads as nanoseconds since the epoch (after 2020) and runs forward
 *   2      1-, 2- and 8-byte and misaligned loads and stores at every register trap (the bus
 *          refuses them) and change nothing: IRQ_ENABLED and the alarm read as before
 *   3      every other 4-byte offset of the window reads 0 and ignores writes of all-ones
 *   4      the time set to 2^64 - 2 ms reads back near that and wraps past 2^64 without harm;
 *          set back, it reads the time it was given
 *   5      an alarm 20 ms ahead, enabled, with PLIC source 11 enabled for hart 0's M-mode
 *          context: MEIP rises within 2 s, not before the RTC reaches the alarm time; the
 *          claim returns 11; CLEAR_INTERRUPT and the completion lower MEIP
 *   6      alarms at 0 and at 2^64 - 1: the first fires at once, the second stays armed
 *   7      20000 ALARM_LOW writes alternating past and future, IRQ_ENABLED toggled, then
 *          CLEAR_ALARM and CLEAR_INTERRUPT: no interrupt afterwards, the RTC still answers
 *   8      the alarm still works after all of it */
#include "hostile.h"

#define RTC        0x101000UL
#define TIME_LOW   (RTC + 0x00)
#define TIME_HIGH  (RTC + 0x04)
#define ALARM_LOW  (RTC + 0x08)
#define ALARM_HIGH (RTC + 0x0c)
#define IRQ_EN     (RTC + 0x10)
#define CLR_ALARM  (RTC + 0x14)
#define STATUS     (RTC + 0x18)
#define CLR_IRQ    (RTC + 0x1c)
#define RTC_SIZE   0x1000UL
#define RTC_IRQ    11

#define PLIC         0xc000000UL
#define PLIC_PRIO(s) (PLIC + 4 * (s))
#define PLIC_ENABLE0 (PLIC + 0x2000) /* context 0: hart 0, M-mode */
#define PLIC_THRESH0 (PLIC + 0x200000)
#define PLIC_CLAIM0  (PLIC + 0x200004)
#define MIP_MEIP     (1UL << 11)
#define NS           1000000000ULL
#define Y2020        (1577836800ULL * NS)

static uint64_t rtc_time(void)
{
    uint64_t lo = rd32(TIME_LOW);

    return ((uint64_t)rd32(TIME_HIGH) << 32) | lo;
}

static void set_time(uint64_t t)
{
    wr32(TIME_LOW, 0); /* no carry between the halves for 4 s */
    wr32(TIME_HIGH, (uint32_t)(t >> 32));
    wr32(TIME_LOW, (uint32_t)t);
}

static void set_alarm(uint64_t t)
{
    wr32(ALARM_HIGH, (uint32_t)(t >> 32));
    wr32(ALARM_LOW, (uint32_t)t);
}

static int meip(void)
{
    uint64_t mip;

    __asm__ __volatile__("csrr %0, mip" : "=r"(mip));
    return (mip & MIP_MEIP) != 0;
}

/* Waits up to `us` for MEIP to reach `want`. */
static int wait_meip(int want, uint64_t us)
{
    uint64_t end = now_ticks() + US_TO_TICKS(us);

    while (meip() != want) {
        if (now_ticks() > end)
            return 0;
    }
    return 1;
}

/* Alarm `ahead_ns` from the RTC's time now, routed to hart 0: it must interrupt, not early. */
static void alarm_interrupts(unsigned n, uint64_t ahead_ns)
{
    uint64_t at = rtc_time() + ahead_ns;

    wr32(IRQ_EN, 1);
    set_alarm(at);
    CHECK(n, rd32(STATUS) == 1);
    CHECK(n, wait_meip(1, 2000000));
    CHECK(n, rtc_time() >= at);
    CHECK(n, rd32(STATUS) == 0);
    CHECK(n, rd32(PLIC_CLAIM0) == RTC_IRQ);
    wr32(CLR_IRQ, 1);
    wr32(PLIC_CLAIM0, RTC_IRQ); /* complete */
    CHECK(n, wait_meip(0, 100000));
}

int main(void)
{
    static const unsigned sizes[] = {1, 2, 8};
    uint64_t t0, t1, v;

    hostile_set_context("goldfish rtc");
    wr32(PLIC_PRIO(RTC_IRQ), 1);
    wr32(PLIC_ENABLE0, 1u << RTC_IRQ);
    wr32(PLIC_THRESH0, 0);

    t0 = rtc_time();
    delay_us(1000);
    t1 = rtc_time();
    CHECK(1, t0 > Y2020 && t1 > t0);

    wr32(IRQ_EN, 0);
    set_alarm(t1 + 3600 * NS);
    for (uintptr_t off = 0; off < 0x20; off += 4) {
        for (unsigned i = 0; i < 3; i++) {
            CHECK(2, guard_load(RTC + off, sizes[i], &v) != 0);
            CHECK(2, guard_store(RTC + off, sizes[i], 1) != 0);
        }
        CHECK(2, guard_load(RTC + off + 2, 4, &v) != 0);
        CHECK(2, guard_store(RTC + off + 1, 4, 0) != 0);
    }
    CHECK(2, rd32(IRQ_EN) == 0 && rd32(STATUS) == 1);
    CHECK(2, rd32(ALARM_LOW) == (uint32_t)(t1 + 3600 * NS));

    for (uintptr_t off = 0x20; off < RTC_SIZE; off += 4) {
        wr32(RTC + off, 0xffffffff);
        CHECK(3, rd32(RTC + off) == 0);
    }
    CHECK(3, rd32(IRQ_EN) == 0 && rd32(STATUS) == 1 && !meip());

    t0 = rtc_time();
    set_time(~0ULL - 2000000);
    v = rtc_time();
    CHECK(4, v >= ~0ULL - 2000000 || v < 1000 * NS);
    delay_us(5000);
    CHECK(4, rtc_time() < 1000 * NS); /* wrapped */
    set_time(t0);
    v = rtc_time();
    CHECK(4, v >= t0 && v - t0 < 60 * NS);
    wr32(CLR_ALARM, 1); /* the alarm an hour after t1 went past while the time wrapped */
    wr32(CLR_IRQ, 1);

    alarm_interrupts(5, 20000000);

    wr32(IRQ_EN, 1);
    set_alarm(0);
    CHECK(6, rd32(STATUS) == 0 && wait_meip(1, 100000));
    CHECK(6, rd32(PLIC_CLAIM0) == RTC_IRQ);
    wr32(CLR_IRQ, 1);
    wr32(PLIC_CLAIM0, RTC_IRQ);
    set_alarm(~0ULL);
    CHECK(6, rd32(STATUS) == 1 && wait_meip(0, 100000));

    for (unsigned i = 0; i < 20000; i++) {
        wr32(ALARM_HIGH, (i & 1) ? 0 : 0xffffffff);
        wr32(ALARM_LOW, i * 0x9e3779b9u);
        wr32(IRQ_EN, i & 2 ? 1 : 0);
    }
    wr32(CLR_ALARM, 1);
    wr32(CLR_IRQ, 1);
    while (rd32(PLIC_CLAIM0) == RTC_IRQ) /* a claim taken while the storm raised it */
        wr32(PLIC_CLAIM0, RTC_IRQ);
    delay_us(50000);
    CHECK(7, !meip() && rd32(STATUS) == 0);
    CHECK(7, rtc_time() > Y2020);

    alarm_interrupts(8, 10000000);
    return 0;
}
