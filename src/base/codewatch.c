#include "base/codewatch.h"

#include <errno.h>
#include <stdlib.h>

int code_watch_init(struct code_watch *cw, uint64_t pages)
{
    *cw = (struct code_watch){.pages = pages};
    cw->code = calloc(pages ? pages : 1, sizeof(*cw->code));
    if (!cw->code)
        return -ENOMEM;
    atomic_init(&cw->harts, 0);
    atomic_init(&cw->broken, false);
    atomic_init(&cw->epoch, 1);
    for (unsigned i = 0; i < CODE_WATCH_HARTS; i++) {
        atomic_init(&cw->hart[i].writes, 0);
        atomic_init(&cw->hart[i].ack, CODE_WATCH_PARKED);
    }
    return 0;
}

void code_watch_destroy(struct code_watch *cw)
{
    free(cw->code);
    cw->code = NULL;
    cw->pages = 0;
}

bool code_watch_join(struct code_watch *cw, unsigned id)
{
    if (id >= CODE_WATCH_HARTS) {
        atomic_store(&cw->broken, true);
        return false;
    }
    atomic_store(&cw->hart[id].ack, CODE_WATCH_PARKED);
    atomic_fetch_or(&cw->harts, 1u << id);
    return true;
}

void code_watch_leave(struct code_watch *cw, unsigned id)
{
    if (id < CODE_WATCH_HARTS)
        atomic_fetch_and(&cw->harts, ~(1u << id));
}

bool code_watch_acked(struct code_watch *cw, unsigned id, uint64_t need)
{
    unsigned harts = atomic_load(&cw->harts) & ~(1u << id);

    if (atomic_load(&cw->broken))
        return false;
    for (unsigned i = 0; harts; i++, harts >>= 1) {
        if ((harts & 1) && atomic_load(&cw->hart[i].ack) < need)
            return false;
    }
    return true;
}
