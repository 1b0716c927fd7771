/* The event loop: start/stop, fd watches (level-triggered, pause, hang-up while paused),
 * removal from inside callbacks and from other threads (the callback is not running after
 * return and never runs again), one-shot timers in deadline order with re-arming and deletion,
 * loop_call() ordering from several threads, and several loops in one process. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/loop.h"
#include "base/time.h"

#define MS 1000000ull

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Polls until *v reaches want or 2 s pass; returns true when it did. */
static bool wait_atleast(atomic_uint *v, unsigned want)
{
    for (int i = 0; i < 2000; i++) {
        if (atomic_load(v) >= want)
            return true;
        sleep_ms(1);
    }
    return atomic_load(v) >= want;
}

static void make_pipe(int p[2])
{
    CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
}

static void put_byte(int fd)
{
    CHECK(write(fd, "x", 1) == 1);
}

/* ---- start/stop ---- */

static void call_try_stop(void *opaque);

struct stop_probe {
    struct loop *loop;
    int r;
    atomic_uint done;
};

static void call_try_stop(void *opaque)
{
    struct stop_probe *p = opaque;

    p->r = loop_stop(p->loop);
    atomic_store(&p->done, 1);
}

static void test_start_stop(void)
{
    struct loop *loop = NULL;
    struct stop_probe probe = {0};

    CHECK(loop_create(&loop) == 0);
    CHECK(loop_stop(loop) == 0); /* not running: a no-op */
    CHECK(!loop_in_thread(loop));
    CHECK(loop_start(loop) == 0);
    CHECK(loop_start(loop) == -EALREADY);
    probe.loop = loop;
    CHECK(loop_call(loop, call_try_stop, &probe) == 0);
    CHECK(wait_atleast(&probe.done, 1));
    CHECK(probe.r == -EDEADLK);
    CHECK(loop_stop(loop) == 0);
    CHECK(loop_start(loop) == 0); /* restartable */
    CHECK(loop_stop(loop) == 0);
    loop_destroy(loop);
    loop_destroy(NULL);
}

/* ---- fd watches ---- */

struct reader {
    struct loop *loop;
    struct loop_fd *h;
    atomic_uint calls;
    atomic_uint bytes;
    atomic_uint hup;
    atomic_uint off_thread; /* callbacks that ran on some other thread */
    bool drain;             /* read the fd in the callback */
};

static void reader_cb(void *opaque, int fd, unsigned revents)
{
    struct reader *r = opaque;
    char buf[64];

    if (!loop_in_thread(r->loop))
        atomic_fetch_add(&r->off_thread, 1);
    atomic_fetch_add(&r->calls, 1);
    if (revents & LOOP_HUP)
        atomic_fetch_add(&r->hup, 1);
    if (r->drain && (revents & LOOP_IN)) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n > 0)
            atomic_fetch_add(&r->bytes, (unsigned)n);
    }
}

static void test_fd_basic(void)
{
    struct loop *loop;
    struct reader r = {.drain = true};
    int p[2];
    unsigned calls;

    CHECK(loop_create(&loop) == 0);
    r.loop = loop;
    make_pipe(p);
    CHECK(loop_add_fd(loop, p[0], 0x10, reader_cb, &r, &r.h) == -EINVAL);
    CHECK(loop_add_fd(loop, p[0], LOOP_IN, reader_cb, &r, &r.h) == 0);
    CHECK(loop_add_fd(loop, p[0], LOOP_IN, reader_cb, &r, &r.h) == -EEXIST ||
          !"second watch of one fd must fail");
    CHECK(loop_start(loop) == 0);

    put_byte(p[1]);
    CHECK(wait_atleast(&r.bytes, 1));
    put_byte(p[1]);
    put_byte(p[1]);
    CHECK(wait_atleast(&r.bytes, 3));
    CHECK_EQ_U64(atomic_load(&r.off_thread), 0);

    /* Paused: data waits, no callback, even after the writer hangs up (no spinning on HUP). */
    CHECK(loop_mod_fd(loop, r.h, 0) == 0);
    calls = atomic_load(&r.calls);
    put_byte(p[1]);
    close(p[1]);
    sleep_ms(50);
    CHECK_EQ_U64(atomic_load(&r.calls), calls);
    CHECK(loop_mod_fd(loop, r.h, 0x40) == -EINVAL);

    /* Resumed: the byte, then hang-up reported; stop watching on HUP. */
    r.drain = true;
    CHECK(loop_mod_fd(loop, r.h, LOOP_IN) == 0);
    CHECK(wait_atleast(&r.bytes, 4));
    CHECK(wait_atleast(&r.hup, 1));
    loop_remove_fd(loop, r.h);
    calls = atomic_load(&r.calls);
    sleep_ms(30);
    CHECK_EQ_U64(atomic_load(&r.calls), calls);

    CHECK(loop_stop(loop) == 0);
    loop_destroy(loop);
    close(p[0]);
}

static void test_fd_out(void)
{
    struct loop *loop;
    struct reader w = {.drain = false};
    int p[2];

    CHECK(loop_create(&loop) == 0);
    w.loop = loop;
    make_pipe(p);
    /* Registered paused, then asked for LOOP_OUT: an empty pipe is writable at once. */
    CHECK(loop_add_fd(loop, p[1], 0, reader_cb, &w, &w.h) == 0);
    CHECK(loop_start(loop) == 0);
    sleep_ms(20);
    CHECK_EQ_U64(atomic_load(&w.calls), 0);
    CHECK(loop_mod_fd(loop, w.h, LOOP_OUT) == 0);
    CHECK(wait_atleast(&w.calls, 1));
    CHECK(loop_mod_fd(loop, w.h, 0) == 0);
    loop_remove_fd(loop, w.h);
    loop_destroy(loop); /* stops the loop itself */
    close(p[0]);
    close(p[1]);
}

/* A watch that removes itself from its own callback and frees its opaque. The fd stays
 * readable, so a second call would be a use-after-free that ASan reports. */
struct self_remover {
    struct loop *loop;
    struct loop_fd *h;
    atomic_uint *calls;
};

static void self_remove_cb(void *opaque, int fd, unsigned revents)
{
    struct self_remover *s = opaque;

    atomic_fetch_add(s->calls, 1);
    loop_remove_fd(s->loop, s->h);
    free(s);
}

/* Two readable watches; whichever runs first removes the other: exactly one callback runs,
 * although both fds were in the same epoll batch. */
struct pair_member {
    struct loop *loop;
    struct loop_fd *h;
    struct pair_member *other;
    atomic_uint *calls;
};

static void pair_cb(void *opaque, int fd, unsigned revents)
{
    struct pair_member *m = opaque;
    char c;

    atomic_fetch_add(m->calls, 1);
    if (read(fd, &c, 1) < 0)
        return;
    if (m->other) {
        loop_remove_fd(m->loop, m->other->h);
        m->other->other = NULL;
        m->other = NULL;
    }
}

static void test_remove_inside(void)
{
    struct loop *loop;
    struct self_remover *s = calloc(1, sizeof(*s));
    atomic_uint self_calls = 0, pair_calls = 0;
    struct pair_member a = {0}, b = {0};
    int p[2], q1[2], q2[2];

    CHECK(loop_create(&loop) == 0);
    make_pipe(p);
    s->loop = loop;
    s->calls = &self_calls;
    CHECK(loop_add_fd(loop, p[0], LOOP_IN, self_remove_cb, s, &s->h) == 0);
    put_byte(p[1]);

    make_pipe(q1);
    make_pipe(q2);
    a = (struct pair_member){.loop = loop, .other = &b, .calls = &pair_calls};
    b = (struct pair_member){.loop = loop, .other = &a, .calls = &pair_calls};
    CHECK(loop_add_fd(loop, q1[0], LOOP_IN, pair_cb, &a, &a.h) == 0);
    CHECK(loop_add_fd(loop, q2[0], LOOP_IN, pair_cb, &b, &b.h) == 0);
    put_byte(q1[1]);
    put_byte(q2[1]);

    CHECK(loop_start(loop) == 0);
    CHECK(wait_atleast(&self_calls, 1));
    CHECK(wait_atleast(&pair_calls, 1));
    sleep_ms(50);
    CHECK_EQ_U64(atomic_load(&self_calls), 1);
    CHECK_EQ_U64(atomic_load(&pair_calls), 1);
    CHECK(loop_stop(loop) == 0);
    /* The survivor of the pair is still registered: loop_destroy frees it. */
    loop_destroy(loop);
    close(p[0]);
    close(p[1]);
    close(q1[0]);
    close(q1[1]);
    close(q2[0]);
    close(q2[1]);
}

/* Cross-thread removal while the callback runs: loop_remove_fd() waits for it to return. */
struct slow {
    struct loop *loop;
    atomic_uint in_cb;
    atomic_uint calls;
    unsigned sleep;
};

static void slow_cb(void *opaque, int fd, unsigned revents)
{
    struct slow *s = opaque;
    char c;

    atomic_store(&s->in_cb, 1);
    atomic_fetch_add(&s->calls, 1);
    sleep_ms(s->sleep);
    if (fd >= 0 && (revents & LOOP_IN) && read(fd, &c, 1) < 0)
        c = 0;
    atomic_store(&s->in_cb, 0);
}

static void test_remove_cross_thread(void)
{
    struct loop *loop;
    struct slow s = {.sleep = 100};
    struct loop_fd *h;
    int p[2];
    unsigned calls;

    CHECK(loop_create(&loop) == 0);
    s.loop = loop;
    make_pipe(p);
    CHECK(loop_add_fd(loop, p[0], LOOP_IN, slow_cb, &s, &h) == 0);
    CHECK(loop_start(loop) == 0);
    put_byte(p[1]);
    put_byte(p[1]); /* still readable after the first callback */
    CHECK(wait_atleast(&s.in_cb, 1));
    loop_remove_fd(loop, h);
    CHECK_EQ_U64(atomic_load(&s.in_cb), 0);
    calls = atomic_load(&s.calls);
    put_byte(p[1]);
    sleep_ms(50);
    CHECK_EQ_U64(atomic_load(&s.calls), calls);
    loop_destroy(loop);
    close(p[0]);
    close(p[1]);
}

/* Stress: a busy watch is added and removed from the main thread many times while it fires;
 * its opaque is freed right after each removal, so a late callback is caught by ASan and by
 * the `dead` flag. */
struct busy {
    atomic_uint dead;
    atomic_uint late;
    atomic_uint calls;
};

static void busy_cb(void *opaque, int fd, unsigned revents)
{
    struct busy *b = opaque;

    if (atomic_load(&b->dead))
        atomic_fetch_add(&b->late, 1);
    atomic_fetch_add(&b->calls, 1);
}

static void test_remove_stress(void)
{
    struct loop *loop;
    int p[2];
    unsigned late = 0, calls = 0;

    CHECK(loop_create(&loop) == 0);
    make_pipe(p);
    put_byte(p[1]); /* p[0] stays readable: its callback fires on every iteration */
    CHECK(loop_start(loop) == 0);
    for (int i = 0; i < 500; i++) {
        struct busy *b = calloc(1, sizeof(*b));
        struct loop_fd *h;

        CHECK(loop_add_fd(loop, p[0], LOOP_IN, busy_cb, b, &h) == 0);
        if (i % 50 == 0)
            wait_atleast(&b->calls, 1); /* some removals surely land while it fires, on a
                                           loaded host too */
        else if (i % 3 == 0)
            sched_yield();
        loop_remove_fd(loop, h);
        atomic_store(&b->dead, 1);
        late += atomic_load(&b->late);
        calls += atomic_load(&b->calls);
        free(b);
    }
    CHECK_EQ_U64(late, 0);
    CHECK(calls > 0);
    loop_destroy(loop);
    close(p[0]);
    close(p[1]);
}

/* ---- timers ---- */

struct tick {
    struct loop *loop;
    struct loop_timer *t;
    uint64_t deadline;
    atomic_uint fired;
    atomic_uint early;      /* fired before its deadline */
    atomic_uint off_thread; /* fired on another thread */
    int id;
    int *order; /* shared log of ids in firing order */
    atomic_uint *norder;
    unsigned rearm;   /* re-arm this many times from the callback */
    bool self_delete; /* once no re-arm is left, delete the timer from its own callback */
};

/* Holds the loop thread inside a timer callback until the test lets it go. */
struct hold {
    sem_t in, out;
};

static void hold_cb(void *opaque)
{
    struct hold *h = opaque;

    sem_post(&h->in);
    sem_wait(&h->out);
}

static void tick_cb(void *opaque)
{
    struct tick *k = opaque;

    if (time_now_ns() < k->deadline)
        atomic_fetch_add(&k->early, 1);
    if (!loop_in_thread(k->loop))
        atomic_fetch_add(&k->off_thread, 1);
    if (k->order)
        k->order[atomic_fetch_add(k->norder, 1)] = k->id;
    if (k->rearm) {
        k->rearm--;
        k->deadline = time_now_ns() + 2 * MS;
        loop_mod_timer(k->loop, k->t, k->deadline);
    } else if (k->self_delete) {
        loop_del_timer(k->loop, k->t);
        k->t = NULL;
    }
    atomic_fetch_add(&k->fired, 1);
}

static void test_timers(void)
{
    struct loop *loop;
    struct tick k[3] = {0}, off = {0}, gone = {0}, periodic = {0}, past = {0};
    int order[8] = {0};
    atomic_uint norder = 0;
    uint64_t now;

    CHECK(loop_create(&loop) == 0);
    CHECK(loop_start(loop) == 0);

    /* Deadline order, not insertion order; none fires early; all on the loop thread. */
    now = time_now_ns();
    for (int i = 0; i < 3; i++) {
        static const unsigned ms[3] = {30, 10, 20};

        k[i] = (struct tick){.loop = loop, .id = i, .order = order, .norder = &norder};
        k[i].deadline = now + ms[i] * MS;
        CHECK(loop_add_timer(loop, k[i].deadline, tick_cb, &k[i], &k[i].t) == 0);
    }
    /* Disarmed, and deleted before it could fire: neither fires. `gone` is already due when
     * it is added, so only the deletion keeps it from firing; the loop thread is held in a
     * callback meanwhile, so that the deletion is sure to come first on a loaded host. */
    off.loop = gone.loop = loop;
    CHECK(loop_add_timer(loop, LOOP_TIMER_OFF, tick_cb, &off, &off.t) == 0);
    {
        struct hold h;
        struct loop_timer *ht;

        sem_init(&h.in, 0, 0);
        sem_init(&h.out, 0, 0);
        CHECK(loop_add_timer(loop, time_now_ns(), hold_cb, &h, &ht) == 0);
        sem_wait(&h.in); /* the loop thread is inside hold_cb */
        CHECK(loop_add_timer(loop, time_now_ns(), tick_cb, &gone, &gone.t) == 0);
        loop_del_timer(loop, gone.t);
        sem_post(&h.out);
        loop_del_timer(loop, ht);
        sem_destroy(&h.in);
        sem_destroy(&h.out);
    }
    CHECK(wait_atleast(&k[0].fired, 1));
    CHECK_EQ_U64(atomic_load(&norder), 3);
    CHECK_EQ_U64(order[0], 1);
    CHECK_EQ_U64(order[1], 2);
    CHECK_EQ_U64(order[2], 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_U64(atomic_load(&k[i].early), 0);
        CHECK_EQ_U64(atomic_load(&k[i].off_thread), 0);
    }
    sleep_ms(20);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_U64(atomic_load(&k[i].fired), 1); /* one-shot */
    CHECK_EQ_U64(atomic_load(&off.fired), 0);
    CHECK_EQ_U64(atomic_load(&gone.fired), 0);

    /* A fired timer can be re-armed from outside; a disarmed one armed later fires. */
    k[1].deadline = time_now_ns() + 3 * MS;
    loop_mod_timer(loop, k[1].t, k[1].deadline);
    off.deadline = time_now_ns() + 4 * MS;
    loop_mod_timer(loop, off.t, off.deadline);
    CHECK(wait_atleast(&k[1].fired, 2));
    CHECK(wait_atleast(&off.fired, 1));
    /* Disarming with LOOP_TIMER_OFF. */
    k[2].deadline = time_now_ns() + 5 * MS;
    loop_mod_timer(loop, k[2].t, k[2].deadline);
    loop_mod_timer(loop, k[2].t, LOOP_TIMER_OFF);
    sleep_ms(20);
    CHECK_EQ_U64(atomic_load(&k[2].fired), 1);

    /* Periodic by re-arming from the callback, then deleting itself from the callback. */
    periodic = (struct tick){.loop = loop, .rearm = 4, .self_delete = true};
    periodic.deadline = time_now_ns() + MS;
    CHECK(loop_add_timer(loop, periodic.deadline, tick_cb, &periodic, &periodic.t) == 0);
    CHECK(wait_atleast(&periodic.fired, 5));
    sleep_ms(10);
    CHECK_EQ_U64(atomic_load(&periodic.fired), 5);
    CHECK(periodic.t == NULL);
    CHECK_EQ_U64(atomic_load(&periodic.early), 0);

    /* Deadline 0 (long past) fires at once. */
    past = (struct tick){.loop = loop, .deadline = 0, .order = order, .norder = &norder};
    CHECK(loop_add_timer(loop, 0, tick_cb, &past, &past.t) == 0);
    CHECK(wait_atleast(&past.fired, 1));

    for (int i = 0; i < 3; i++)
        loop_del_timer(loop, k[i].t);
    loop_del_timer(loop, off.t);
    loop_del_timer(loop, past.t);
    loop_destroy(loop);
}

/* A timer that always re-arms itself in the past must not starve fd watches. */
struct spinner {
    struct loop *loop;
    struct loop_timer *t;
    atomic_uint fired;
};

static void spinner_cb(void *opaque)
{
    struct spinner *s = opaque;

    atomic_fetch_add(&s->fired, 1);
    loop_mod_timer(s->loop, s->t, 0);
}

static void test_timer_no_starve(void)
{
    struct loop *loop;
    struct spinner sp = {0};
    struct reader r = {.drain = true};
    int p[2];

    CHECK(loop_create(&loop) == 0);
    sp.loop = r.loop = loop;
    make_pipe(p);
    CHECK(loop_add_timer(loop, 0, spinner_cb, &sp, &sp.t) == 0);
    CHECK(loop_add_fd(loop, p[0], LOOP_IN, reader_cb, &r, &r.h) == 0);
    CHECK(loop_start(loop) == 0);
    CHECK(wait_atleast(&sp.fired, 100));
    put_byte(p[1]);
    CHECK(wait_atleast(&r.bytes, 1));
    loop_del_timer(loop, sp.t);
    loop_remove_fd(loop, r.h);
    loop_destroy(loop);
    close(p[0]);
    close(p[1]);
}

/* Cross-thread deletion of a timer whose callback is running. */
struct slow_timer {
    atomic_uint in_cb;
    atomic_uint calls;
};

static void slow_timer_cb(void *opaque)
{
    struct slow_timer *s = opaque;

    atomic_store(&s->in_cb, 1);
    atomic_fetch_add(&s->calls, 1);
    sleep_ms(80);
    atomic_store(&s->in_cb, 0);
}

static void test_timer_del_cross_thread(void)
{
    struct loop *loop;
    struct slow_timer *s = calloc(1, sizeof(*s));
    struct loop_timer *t;

    CHECK(loop_create(&loop) == 0);
    CHECK(loop_start(loop) == 0);
    CHECK(loop_add_timer(loop, time_now_ns(), slow_timer_cb, s, &t) == 0);
    CHECK(wait_atleast(&s->in_cb, 1));
    loop_del_timer(loop, t);
    CHECK_EQ_U64(atomic_load(&s->in_cb), 0);
    CHECK_EQ_U64(atomic_load(&s->calls), 1);
    free(s); /* the callback must never touch it again */
    sleep_ms(20);
    /* A timer left registered at destroy is freed by loop_destroy without firing. */
    CHECK(loop_add_timer(loop, time_now_ns() + 10000 * MS, slow_timer_cb, NULL, &t) == 0);
    loop_destroy(loop);
}

/* ---- loop_call ---- */

struct call_log {
    struct loop *loop;
    pthread_mutex_t lock;
    unsigned seen[4]; /* next expected sequence number per producer */
    atomic_uint total;
    atomic_uint bad_order;
    atomic_uint off_thread;
};

struct call_arg {
    struct call_log *log;
    unsigned producer, seq;
};

static void call_fn(void *opaque)
{
    struct call_arg *a = opaque;
    struct call_log *log = a->log;

    if (!loop_in_thread(log->loop))
        atomic_fetch_add(&log->off_thread, 1);
    /* Only the loop thread runs calls, so no lock is needed for seen[]. */
    if (log->seen[a->producer] != a->seq)
        atomic_fetch_add(&log->bad_order, 1);
    log->seen[a->producer] = a->seq + 1;
    atomic_fetch_add(&log->total, 1);
    free(a);
}

struct producer {
    struct call_log *log;
    unsigned id, n;
};

static void *producer_main(void *opaque)
{
    struct producer *p = opaque;

    for (unsigned i = 0; i < p->n; i++) {
        struct call_arg *a = malloc(sizeof(*a));

        *a = (struct call_arg){.log = p->log, .producer = p->id, .seq = i};
        if (loop_call(p->log->loop, call_fn, a) != 0)
            free(a);
    }
    return NULL;
}

struct nested {
    struct loop *loop;
    atomic_uint step;  /* 1: outer ran, 2: inner ran after the outer returned */
    atomic_int call_r; /* what loop_call() returned inside the outer call */
};

static void nested_inner(void *opaque)
{
    struct nested *n = opaque;

    if (atomic_load(&n->step) == 1)
        atomic_store(&n->step, 2);
}

static void nested_outer(void *opaque)
{
    struct nested *n = opaque;

    /* CHECK() is for the main thread only: the harness counters are not atomic. */
    atomic_store(&n->call_r, loop_call(n->loop, nested_inner, n));
    sleep_ms(5); /* the inner call must not run inline */
    atomic_store(&n->step, 1);
}

static void test_calls(void)
{
    struct loop *loop;
    struct call_log log = {0};
    struct producer prod[4];
    pthread_t th[4];
    struct nested nest = {0};

    CHECK(loop_create(&loop) == 0);
    log.loop = loop;
    /* Queued before the thread starts: they wait and then run in order. */
    prod[3] = (struct producer){.log = &log, .id = 3, .n = 10};
    producer_main(&prod[3]);
    sleep_ms(5);
    CHECK_EQ_U64(atomic_load(&log.total), 0);
    CHECK(loop_start(loop) == 0);
    CHECK(wait_atleast(&log.total, 10));
    /* Three producer threads at once: per-producer FIFO order. */
    for (unsigned i = 0; i < 3; i++) {
        prod[i] = (struct producer){.log = &log, .id = i, .n = 2000};
        CHECK(pthread_create(&th[i], NULL, producer_main, &prod[i]) == 0);
    }
    for (unsigned i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    CHECK(wait_atleast(&log.total, 6010));
    CHECK_EQ_U64(atomic_load(&log.bad_order), 0);
    CHECK_EQ_U64(atomic_load(&log.off_thread), 0);
    /* A call queued from the loop thread runs after the current callback. */
    nest.loop = loop;
    CHECK(loop_call(loop, nested_outer, &nest) == 0);
    CHECK(wait_atleast(&nest.step, 2));
    CHECK_EQ_U64(atomic_load(&nest.call_r), 0);
    loop_destroy(loop);
}

/* Calls left queued at destroy are discarded (and their memory is the caller's problem: here
 * opaque is a stack object). */
static void test_calls_discarded(void)
{
    struct loop *loop;
    struct nested n = {0};

    CHECK(loop_create(&loop) == 0);
    n.loop = loop;
    CHECK(loop_call(loop, nested_inner, &n) == 0);
    loop_destroy(loop);
    CHECK_EQ_U64(atomic_load(&n.step), 0);
}

/* ---- several loops ---- */

struct which {
    struct loop *a, *b;
    atomic_uint on_a, on_b, done;
};

static void which_fn(void *opaque)
{
    struct which *w = opaque;

    if (loop_in_thread(w->a))
        atomic_fetch_add(&w->on_a, 1);
    if (loop_in_thread(w->b))
        atomic_fetch_add(&w->on_b, 1);
    atomic_fetch_add(&w->done, 1);
}

static void test_two_loops(void)
{
    struct which w = {0};

    CHECK(loop_create(&w.a) == 0);
    CHECK(loop_create(&w.b) == 0);
    CHECK(loop_start(w.a) == 0);
    CHECK(loop_start(w.b) == 0);
    CHECK(loop_call(w.a, which_fn, &w) == 0);
    CHECK(wait_atleast(&w.done, 1));
    CHECK(loop_call(w.b, which_fn, &w) == 0);
    CHECK(loop_call(w.b, which_fn, &w) == 0);
    CHECK(wait_atleast(&w.done, 3));
    CHECK_EQ_U64(atomic_load(&w.on_a), 1);
    CHECK_EQ_U64(atomic_load(&w.on_b), 2);
    loop_destroy(w.a);
    loop_destroy(w.b);
}

int main(void)
{
    test_start_stop();
    test_fd_basic();
    test_fd_out();
    test_remove_inside();
    test_remove_cross_thread();
    test_remove_stress();
    test_timers();
    test_timer_no_starve();
    test_timer_del_cross_thread();
    test_calls();
    test_calls_discarded();
    test_two_loops();
    return test_finish("loop");
}
