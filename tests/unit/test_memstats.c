/* The VMM's own memory numbers for GET /v1/vm/stats (vmm/memstats.h): the resident set follows
 * memory the process touches and gives back, and the KSM numbers are there exactly when this
 * kernel has the files (null in the API otherwise, never an error). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/memstats.h"
#include "test.h"

#define SIZE (64u << 20)

static void test_rss_follows_memory(void)
{
    struct memstats before, touched, released;
    uint8_t *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED)
        return;
    memstats_open();
    memstats_read(&before);
    CHECK(before.have_rss && before.rss_bytes > 0);
    memset(p, 0x5a, SIZE);
    memstats_read(&touched);
    /* Read again through the same descriptor: each read starts the file afresh. */
    CHECK(touched.have_rss && touched.rss_bytes >= before.rss_bytes + SIZE / 2);
    CHECK(madvise(p, SIZE, MADV_DONTNEED) == 0);
    memstats_read(&released);
    CHECK(released.have_rss && released.rss_bytes + SIZE / 2 <= touched.rss_bytes);
    munmap(p, SIZE);
}

/* True when the file can be read and holds `what`. */
static bool file_has(const char *path, const char *what)
{
    char buf[1024] = "";
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, what) != NULL;
}

static void test_ksm_when_the_kernel_has_it(void)
{
    struct memstats m;

    memstats_read(&m);
    CHECK(m.have_ksm == (access("/proc/self/ksm_merging_pages", R_OK) == 0 ||
                         access("/proc/self/ksm_stat", R_OK) == 0));
    CHECK(m.have_profit == file_has("/proc/self/ksm_stat", "ksm_process_profit "));
    if (m.have_ksm)
        CHECK(m.ksm_merging_pages < (UINT64_C(1) << 40));
}

int main(void)
{
    test_rss_follows_memory();
    test_ksm_when_the_kernel_has_it();
    return test_finish("memstats");
}
