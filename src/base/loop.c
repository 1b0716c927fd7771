/* The host event loop. See loop.h for the contracts.
 *
 * Design. One epoll set holds the caller's fds (data.ptr = their struct loop_fd) and two fds
 * of the loop's own: an eventfd that wakes the thread for loop_call() and loop_stop()
 * (data.ptr = the loop), and a timerfd armed, TFD_TIMER_ABSTIME on CLOCK_MONOTONIC, at the
 * earliest timer deadline (data.ptr = &loop->timerfd). Timers live in a binary min-heap, so
 * arming one from another thread only re-arms the timerfd: no wake-up is needed and deadlines
 * keep nanosecond resolution.
 *
 * Removal. epoll_wait() hands out a batch of data.ptr values; a watch removed while a batch is
 * in flight may still sit in it. So while the loop thread is "busy" (from just before
 * epoll_wait() until it has dispatched the whole batch) removed watches are not freed but put
 * on a zombie list that the loop thread frees after the batch; dispatch skips watches marked
 * removed. The watch or timer whose callback runs is recorded in `running`; a remover on
 * another thread waits on `cond` until it is no longer running. Timers are never in a batch
 * (the heap is read under the lock), so they are freed at once. */
#include "base/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/time.h"

#define LOOP_BATCH      64
#define LOOP_HEAP_NONE  SIZE_MAX
#define LOOP_EVENT_BITS (LOOP_IN | LOOP_OUT)

struct loop_fd {
    /* Immutable after loop_add_fd(). */
    int fd;
    loop_fd_fn cb;
    void *opaque;
    /* Under loop->lock. */
    unsigned events; /* what the caller asks for; 0 = paused (not in the epoll set) */
    bool in_epoll;
    bool removed;
    struct loop_fd *prev, *next; /* loop->fds, or loop->zombies (next only) once removed */
};

struct loop_timer {
    loop_timer_fn cb; /* immutable */
    void *opaque;     /* immutable */
    /* Under loop->lock. */
    uint64_t deadline;  /* LOOP_TIMER_OFF while not in the heap */
    uint64_t armed_seq; /* loop->seq when last armed: see loop_run_timers() */
    size_t heap_idx;    /* LOOP_HEAP_NONE while not in the heap */
    struct loop_timer *prev, *next;
};

struct loop_call_node {
    loop_call_fn fn;
    void *opaque;
    struct loop_call_node *next;
};

struct loop {
    /* Immutable after loop_create(). */
    int epfd;
    int wakefd;
    int timerfd;

    /* Everything below is protected by `lock`. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* broadcast whenever `running` is cleared */
    pthread_t thread;
    bool thread_live; /* created and not yet joined */
    pthread_t tid;    /* set by the loop thread itself, valid while tid_valid */
    bool tid_valid;
    bool stop;
    bool busy;           /* the loop thread holds an epoll batch */
    const void *running; /* the struct loop_fd or loop_timer whose callback runs now */
    struct loop_fd *fds; /* live watches */
    struct loop_fd *zombies;
    struct loop_timer *timers; /* every timer, armed or not */
    struct loop_timer **heap;
    size_t nheap, heap_cap;
    uint64_t seq;         /* timer pass counter */
    uint64_t timerfd_set; /* the deadline the timerfd is armed at; LOOP_TIMER_OFF if none */
    struct loop_call_node *calls, **calls_tail;
};

/* Called with loop->lock held. */
static bool loop_on_thread_locked(const struct loop *loop)
{
    return loop->tid_valid && pthread_equal(loop->tid, pthread_self());
}

bool loop_in_thread(struct loop *loop)
{
    bool r;

    pthread_mutex_lock(&loop->lock);
    r = loop_on_thread_locked(loop);
    pthread_mutex_unlock(&loop->lock);
    return r;
}

static void loop_wake(struct loop *loop)
{
    uint64_t one = 1;

    /* EAGAIN means the counter is saturated: the loop is woken anyway. */
    if (write(loop->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_error("loop: eventfd write failed: %s", strerror(errno));
}

/* ---- timers: min-heap on deadline ---- */

static void loop_heap_swap(struct loop *loop, size_t a, size_t b)
{
    struct loop_timer *t = loop->heap[a];

    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_idx = a;
    loop->heap[b]->heap_idx = b;
}

static void loop_heap_up(struct loop *loop, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (loop->heap[parent]->deadline <= loop->heap[i]->deadline)
            break;
        loop_heap_swap(loop, i, parent);
        i = parent;
    }
}

static void loop_heap_down(struct loop *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < loop->nheap && loop->heap[l]->deadline < loop->heap[m]->deadline)
            m = l;
        if (r < loop->nheap && loop->heap[r]->deadline < loop->heap[m]->deadline)
            m = r;
        if (m == i)
            return;
        loop_heap_swap(loop, i, m);
        i = m;
    }
}

/* Called with loop->lock held; t is in the heap. */
static void loop_heap_remove(struct loop *loop, struct loop_timer *t)
{
    size_t i = t->heap_idx, last = loop->nheap - 1;

    if (i != last) {
        loop_heap_swap(loop, i, last);
        loop->nheap--;
        loop_heap_down(loop, i);
        loop_heap_up(loop, i);
    } else {
        loop->nheap--;
    }
    t->heap_idx = LOOP_HEAP_NONE;
    t->deadline = LOOP_TIMER_OFF;
}

/* Called with loop->lock held; t is not in the heap; the heap has room. */
static void loop_heap_insert(struct loop *loop, struct loop_timer *t, uint64_t deadline)
{
    t->deadline = deadline;
    t->armed_seq = loop->seq;
    t->heap_idx = loop->nheap;
    loop->heap[loop->nheap++] = t;
    loop_heap_up(loop, t->heap_idx);
}

/* Called with loop->lock held: arms the timerfd at the earliest deadline. */
static void loop_timerfd_update_locked(struct loop *loop)
{
    uint64_t top = loop->nheap ? loop->heap[0]->deadline : LOOP_TIMER_OFF;
    struct itimerspec its = {0};

    if (top == loop->timerfd_set)
        return;
    if (top != LOOP_TIMER_OFF) {
        /* An all-zero it_value would disarm the timerfd: deadline 0 becomes 1 ns, which is in
         * the past all the same. */
        uint64_t d = top ? top : 1;

        its.it_value.tv_sec = (time_t)(d / 1000000000u);
        its.it_value.tv_nsec = (long)(d % 1000000000u);
    }
    if (timerfd_settime(loop->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
        log_error("loop: timerfd_settime failed: %s", strerror(errno));
        return;
    }
    loop->timerfd_set = top;
}

/* Called with loop->lock held. Arms t at `deadline` (or disarms it), growing the heap if
 * needed. Returns 0 or -ENOMEM (t is then left disarmed). */
static int loop_timer_arm_locked(struct loop *loop, struct loop_timer *t, uint64_t deadline)
{
    if (t->heap_idx != LOOP_HEAP_NONE)
        loop_heap_remove(loop, t);
    if (deadline != LOOP_TIMER_OFF) {
        if (loop->nheap == loop->heap_cap) {
            size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
            struct loop_timer **h = realloc(loop->heap, cap * sizeof(*h));

            if (!h) {
                loop_timerfd_update_locked(loop);
                return -ENOMEM;
            }
            loop->heap = h;
            loop->heap_cap = cap;
        }
        loop_heap_insert(loop, t, deadline);
    }
    loop_timerfd_update_locked(loop);
    return 0;
}

/* Loop thread, on timerfd readiness. A pass runs the due timers in deadline order but only
 * those armed before the pass began (armed_seq < seq), so a callback that re-arms its timer in
 * the past cannot keep the pass going forever; that timer keeps the timerfd in the past and
 * runs on the next iteration. */
static void loop_run_timers(struct loop *loop)
{
    uint64_t expirations, seq;

    /* The read only clears readiness; EAGAIN (a spurious wake) is fine. */
    if (read(loop->timerfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        log_error("loop: timerfd read failed: %s", strerror(errno));
    pthread_mutex_lock(&loop->lock);
    loop->timerfd_set = LOOP_TIMER_OFF; /* a one-shot timerfd is disarmed once it expired */
    seq = ++loop->seq;
    while (loop->nheap && !loop->stop) {
        struct loop_timer *t = loop->heap[0];
        loop_timer_fn cb = t->cb;
        void *opaque = t->opaque;

        if (t->deadline > time_now_ns() || t->armed_seq >= seq)
            break;
        loop_heap_remove(loop, t);
        loop->running = t;
        pthread_mutex_unlock(&loop->lock);
        cb(opaque);
        pthread_mutex_lock(&loop->lock);
        loop->running = NULL;
        pthread_cond_broadcast(&loop->cond);
    }
    loop_timerfd_update_locked(loop);
    pthread_mutex_unlock(&loop->lock);
}

/* ---- queued calls ---- */

/* Loop thread, on eventfd readiness. */
static void loop_run_calls(struct loop *loop)
{
    struct loop_call_node *list, *next;
    uint64_t count;

    if (read(loop->wakefd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        log_error("loop: eventfd read failed: %s", strerror(errno));
    pthread_mutex_lock(&loop->lock);
    if (loop->stop) {
        pthread_mutex_unlock(&loop->lock);
        return;
    }
    list = loop->calls;
    loop->calls = NULL;
    loop->calls_tail = &loop->calls;
    pthread_mutex_unlock(&loop->lock);
    for (; list; list = next) {
        next = list->next;
        list->fn(list->opaque);
        free(list);
    }
}

int loop_call(struct loop *loop, loop_call_fn fn, void *opaque)
{
    struct loop_call_node *n = malloc(sizeof(*n));
    bool was_empty;

    if (!n)
        return -ENOMEM;
    n->fn = fn;
    n->opaque = opaque;
    n->next = NULL;
    pthread_mutex_lock(&loop->lock);
    /* loop_run_calls() reads the eventfd before it takes the list, so a non-empty list always
     * has a wake-up pending: only the first call of a batch needs to write the eventfd. */
    was_empty = loop->calls == NULL;
    *loop->calls_tail = n;
    loop->calls_tail = &n->next;
    pthread_mutex_unlock(&loop->lock);
    if (was_empty)
        loop_wake(loop);
    return 0;
}

/* ---- fd watches ---- */

static uint32_t loop_epoll_events(unsigned events)
{
    return (events & LOOP_IN ? EPOLLIN : 0) | (events & LOOP_OUT ? EPOLLOUT : 0);
}

/* Loop thread: one epoll event for a caller's watch. */
static void loop_dispatch_fd(struct loop *loop, struct loop_fd *h, uint32_t ev)
{
    unsigned revents = 0;
    loop_fd_fn cb;
    void *opaque;
    int fd;

    pthread_mutex_lock(&loop->lock);
    if (h->removed || !h->events || loop->stop) {
        pthread_mutex_unlock(&loop->lock);
        return;
    }
    /* The batch may predate a loop_mod_fd(): report only what the watch asks for now. */
    if ((ev & (EPOLLIN | EPOLLPRI)) && (h->events & LOOP_IN))
        revents |= LOOP_IN;
    if ((ev & EPOLLOUT) && (h->events & LOOP_OUT))
        revents |= LOOP_OUT;
    if (ev & EPOLLERR)
        revents |= LOOP_ERR;
    if (ev & (EPOLLHUP | EPOLLRDHUP))
        revents |= LOOP_HUP;
    if (!revents) {
        pthread_mutex_unlock(&loop->lock);
        return;
    }
    cb = h->cb;
    opaque = h->opaque;
    fd = h->fd;
    loop->running = h;
    pthread_mutex_unlock(&loop->lock);

    cb(opaque, fd, revents);

    pthread_mutex_lock(&loop->lock);
    loop->running = NULL;
    pthread_cond_broadcast(&loop->cond);
    pthread_mutex_unlock(&loop->lock);
}

int loop_add_fd(struct loop *loop, int fd, unsigned events, loop_fd_fn cb, void *opaque,
                struct loop_fd **out)
{
    struct loop_fd *h;
    int r = 0;

    if ((events & ~LOOP_EVENT_BITS) || fd < 0 || !cb)
        return -EINVAL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->fd = fd;
    h->cb = cb;
    h->opaque = opaque;
    h->events = events;
    pthread_mutex_lock(&loop->lock);
    if (events) {
        struct epoll_event ev = {.events = loop_epoll_events(events), .data.ptr = h};

        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            r = -errno;
            goto err_unlock;
        }
        h->in_epoll = true;
    }
    h->next = loop->fds;
    if (loop->fds)
        loop->fds->prev = h;
    loop->fds = h;
    /* Published under the lock: the callback, which runs only after taking it, sees it. */
    *out = h;
    pthread_mutex_unlock(&loop->lock);
    return 0;

err_unlock:
    pthread_mutex_unlock(&loop->lock);
    free(h);
    return r;
}

int loop_mod_fd(struct loop *loop, struct loop_fd *h, unsigned events)
{
    int r = 0;

    if (events & ~LOOP_EVENT_BITS)
        return -EINVAL;
    pthread_mutex_lock(&loop->lock);
    if (h->removed) {
        /* A callback changing its own watch while another thread removes it: the removal wins,
         * and the fd must not go back into the epoll set. */
        pthread_mutex_unlock(&loop->lock);
        return 0;
    }
    if (!events) {
        /* Paused watches leave the epoll set: epoll reports EPOLLERR/EPOLLHUP even for an
         * empty event mask, and a level-triggered hang-up would otherwise spin the loop. */
        if (h->in_epoll && epoll_ctl(loop->epfd, EPOLL_CTL_DEL, h->fd, NULL) < 0)
            r = -errno;
        else
            h->in_epoll = false;
    } else {
        struct epoll_event ev = {.events = loop_epoll_events(events), .data.ptr = h};

        if (epoll_ctl(loop->epfd, h->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, h->fd, &ev) < 0)
            r = -errno;
        else
            h->in_epoll = true;
    }
    if (!r)
        h->events = events;
    pthread_mutex_unlock(&loop->lock);
    return r;
}

void loop_remove_fd(struct loop *loop, struct loop_fd *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&loop->lock);
    h->removed = true;
    /* EBADF/ENOENT: the caller closed the fd early, which removed it from the set already. */
    if (h->in_epoll)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, h->fd, NULL);
    h->in_epoll = false;
    if (h->prev)
        h->prev->next = h->next;
    else
        loop->fds = h->next;
    if (h->next)
        h->next->prev = h->prev;
    if (!loop_on_thread_locked(loop)) {
        while (loop->running == h)
            pthread_cond_wait(&loop->cond, &loop->lock);
    }
    if (loop->busy) {
        h->prev = NULL;
        h->next = loop->zombies;
        loop->zombies = h;
    } else {
        free(h);
    }
    pthread_mutex_unlock(&loop->lock);
}

/* ---- timers: public ---- */

int loop_add_timer(struct loop *loop, uint64_t deadline_ns, loop_timer_fn cb, void *opaque,
                   struct loop_timer **out)
{
    struct loop_timer *t;
    int r;

    if (!cb)
        return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->cb = cb;
    t->opaque = opaque;
    t->deadline = LOOP_TIMER_OFF;
    t->heap_idx = LOOP_HEAP_NONE;
    pthread_mutex_lock(&loop->lock);
    r = loop_timer_arm_locked(loop, t, deadline_ns);
    if (r < 0) {
        pthread_mutex_unlock(&loop->lock);
        free(t);
        return r;
    }
    t->next = loop->timers;
    if (loop->timers)
        loop->timers->prev = t;
    loop->timers = t;
    /* Published under the lock: the callback, which runs only after taking it, sees it. */
    *out = t;
    pthread_mutex_unlock(&loop->lock);
    return 0;
}

void loop_mod_timer(struct loop *loop, struct loop_timer *t, uint64_t deadline_ns)
{
    pthread_mutex_lock(&loop->lock);
    /* The heap only grows here when it is full; realloc failing leaves the timer disarmed,
     * which is logged because the caller has no way to be told. */
    if (loop_timer_arm_locked(loop, t, deadline_ns) < 0)
        log_error("loop: out of memory arming a timer");
    pthread_mutex_unlock(&loop->lock);
}

void loop_del_timer(struct loop *loop, struct loop_timer *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&loop->lock);
    /* Wait out a running callback first: it may re-arm its own timer, which must then be taken
     * out of the heap below rather than left there pointing at freed memory. */
    if (!loop_on_thread_locked(loop)) {
        while (loop->running == t)
            pthread_cond_wait(&loop->cond, &loop->lock);
    }
    if (t->heap_idx != LOOP_HEAP_NONE) {
        loop_heap_remove(loop, t);
        loop_timerfd_update_locked(loop);
    }
    if (t->prev)
        t->prev->next = t->next;
    else
        loop->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    free(t);
    pthread_mutex_unlock(&loop->lock);
}

/* ---- the thread ---- */

static void *loop_thread_main(void *arg)
{
    struct loop *loop = arg;
    struct epoll_event evs[LOOP_BATCH];

    pthread_mutex_lock(&loop->lock);
    loop->tid = pthread_self();
    loop->tid_valid = true;
    while (!loop->stop) {
        int n;

        loop->busy = true;
        pthread_mutex_unlock(&loop->lock);
        n = epoll_wait(loop->epfd, evs, LOOP_BATCH, -1);
        if (n < 0 && errno != EINTR) {
            /* Only EBADF/EFAULT/EINVAL remain, all of them bugs: stop rather than spin. */
            log_error("loop: epoll_wait failed: %s; the loop thread stops", strerror(errno));
            pthread_mutex_lock(&loop->lock);
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;

            if (p == loop)
                loop_run_calls(loop);
            else if (p == &loop->timerfd)
                loop_run_timers(loop);
            else
                loop_dispatch_fd(loop, p, evs[i].events);
        }
        pthread_mutex_lock(&loop->lock);
        loop->busy = false;
        while (loop->zombies) {
            struct loop_fd *z = loop->zombies;

            loop->zombies = z->next;
            free(z);
        }
    }
    loop->busy = false;
    loop->tid_valid = false;
    pthread_mutex_unlock(&loop->lock);
    return NULL;
}

int loop_create(struct loop **out)
{
    struct loop *loop = calloc(1, sizeof(*loop));
    struct epoll_event ev = {.events = EPOLLIN};
    int r;

    if (!loop)
        return -ENOMEM;
    loop->wakefd = loop->timerfd = -1;
    loop->timerfd_set = LOOP_TIMER_OFF;
    loop->calls_tail = &loop->calls;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        r = -errno;
        goto err_free;
    }
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wakefd < 0) {
        r = -errno;
        goto err_close;
    }
    loop->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (loop->timerfd < 0) {
        r = -errno;
        goto err_close;
    }
    ev.data.ptr = loop;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) {
        r = -errno;
        goto err_close;
    }
    ev.data.ptr = &loop->timerfd;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->timerfd, &ev) < 0) {
        r = -errno;
        goto err_close;
    }
    r = pthread_mutex_init(&loop->lock, NULL);
    if (r) {
        r = -r;
        goto err_close;
    }
    r = pthread_cond_init(&loop->cond, NULL);
    if (r) {
        r = -r;
        goto err_mutex;
    }
    *out = loop;
    return 0;

err_mutex:
    pthread_mutex_destroy(&loop->lock);
err_close:
    if (loop->timerfd >= 0)
        close(loop->timerfd);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    close(loop->epfd);
err_free:
    free(loop);
    return r;
}

int loop_start(struct loop *loop)
{
    bool pending;
    int r;

    pthread_mutex_lock(&loop->lock);
    if (loop->thread_live) {
        pthread_mutex_unlock(&loop->lock);
        return -EALREADY;
    }
    loop->stop = false;
    /* The thread takes the lock first thing to record its id, so it cannot run before the
     * flags below are set. */
    r = -pthread_create(&loop->thread, NULL, loop_thread_main, loop);
    if (!r)
        loop->thread_live = true;
    pending = loop->calls != NULL;
    pthread_mutex_unlock(&loop->lock);
    /* A loop_stop() may have consumed the wake-up of calls it left queued. */
    if (!r && pending)
        loop_wake(loop);
    return r;
}

int loop_stop(struct loop *loop)
{
    pthread_t thread;

    pthread_mutex_lock(&loop->lock);
    if (!loop->thread_live) {
        pthread_mutex_unlock(&loop->lock);
        return 0;
    }
    if (loop_on_thread_locked(loop)) {
        pthread_mutex_unlock(&loop->lock);
        return -EDEADLK;
    }
    loop->stop = true;
    thread = loop->thread;
    pthread_mutex_unlock(&loop->lock);
    loop_wake(loop);
    pthread_join(thread, NULL);
    pthread_mutex_lock(&loop->lock);
    loop->thread_live = false;
    loop->stop = false;
    pthread_mutex_unlock(&loop->lock);
    return 0;
}

void loop_destroy(struct loop *loop)
{
    if (!loop)
        return;
    if (loop_stop(loop) < 0) {
        log_error("loop: loop_destroy called on the loop thread; leaking the loop");
        return;
    }
    while (loop->fds) {
        struct loop_fd *h = loop->fds;

        loop->fds = h->next;
        free(h);
    }
    while (loop->zombies) {
        struct loop_fd *h = loop->zombies;

        loop->zombies = h->next;
        free(h);
    }
    while (loop->timers) {
        struct loop_timer *t = loop->timers;

        loop->timers = t->next;
        free(t);
    }
    while (loop->calls) {
        struct loop_call_node *n = loop->calls;

        loop->calls = n->next;
        free(n);
    }
    free(loop->heap);
    pthread_cond_destroy(&loop->cond);
    pthread_mutex_destroy(&loop->lock);
    close(loop->timerfd);
    close(loop->wakefd);
    close(loop->epfd);
    free(loop);
}
