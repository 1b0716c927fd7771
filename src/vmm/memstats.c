#include "vmm/memstats.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MEMSTATS_STATM, MEMSTATS_KSM_PAGES, MEMSTATS_KSM_STAT, MEMSTATS_FILES };

static const char *const memstats_paths[MEMSTATS_FILES] = {
    "/proc/self/statm",
    "/proc/self/ksm_merging_pages",
    "/proc/self/ksm_stat",
};

static int memstats_fd[MEMSTATS_FILES] = {-1, -1, -1};
static pthread_once_t memstats_once = PTHREAD_ONCE_INIT;

static void memstats_open_all(void)
{
    for (unsigned i = 0; i < MEMSTATS_FILES; i++)
        memstats_fd[i] = open(memstats_paths[i], O_RDONLY | O_CLOEXEC);
}

void memstats_open(void)
{
    pthread_once(&memstats_once, memstats_open_all);
}

/* The whole text of file i, NUL-terminated, in buf; false when it cannot be read. A seq_file
 * read at offset 0 starts the file afresh, so one descriptor serves every read. */
static bool memstats_text(unsigned i, char *buf, size_t len)
{
    ssize_t n;

    if (memstats_fd[i] < 0)
        return false;
    n = pread(memstats_fd[i], buf, len - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* The value of the line "key N" of ksm_stat's text. */
static bool memstats_field(const char *text, const char *key, int64_t *out)
{
    size_t klen = strlen(key);

    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, key, klen) && p[klen] == ' ')
            return sscanf(p + klen, " %" SCNd64, out) == 1;
    }
    return false;
}

void memstats_read(struct memstats *out)
{
    char buf[512];
    unsigned long size, resident;
    int64_t v;

    memset(out, 0, sizeof(*out));
    memstats_open();
    if (memstats_text(MEMSTATS_STATM, buf, sizeof(buf)) &&
        sscanf(buf, "%lu %lu", &size, &resident) == 2) {
        out->have_rss = true;
        out->rss_bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    }
    if (memstats_text(MEMSTATS_KSM_PAGES, buf, sizeof(buf)) && sscanf(buf, "%" SCNd64, &v) == 1 &&
        v >= 0) {
        out->have_ksm = true;
        out->ksm_merging_pages = (uint64_t)v;
    }
    if (memstats_text(MEMSTATS_KSM_STAT, buf, sizeof(buf))) {
        if (!out->have_ksm && memstats_field(buf, "ksm_merging_pages", &v) && v >= 0) {
            out->have_ksm = true;
            out->ksm_merging_pages = (uint64_t)v;
        }
        if (memstats_field(buf, "ksm_process_profit", &v)) {
            out->have_profit = true;
            out->ksm_profit_bytes = v;
        }
    }
}
