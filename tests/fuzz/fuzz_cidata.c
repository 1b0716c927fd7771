// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c17 -D_GNU_SOURCE -Iguest/agent -o build/fuzz_cidata tests/fuzz/fuzz_cidata.c guest/agent/cidata.c
// clang-format on
/* libFuzzer target for the guest agent's NoCloud seed reader (guest/agent/cidata.c): the ISO
 * 9660 directory walk and the YAML reader behind meta-data, user-data and network-config. The
 * seed disk reaches the guest from outside, so the reader must answer any bytes with a result
 * or an error line. The first input byte picks the mode:
 *   even: the rest is three YAML documents separated by NUL bytes, given to cidata_parse();
 *   odd:  the rest is the root directory and file area of an image whose volume descriptors
 *         (labelled cidata, root directory at block 18) are built here, so that every run
 *         reaches the directory records instead of dying on the descriptor checks.
 * Besides memory and UB errors it checks the contract: 0 or -errno; on failure a non-empty
 * error line of at most CIDATA_ERR_LEN - 1 bytes without a newline; on success a host name
 * that is an RFC 1123 label and keys that are whole lines. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cidata.h"

#define BLOCK 2048u

struct image {
    const uint8_t *p;
    size_t n;
};

static int image_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    const struct image *im = ctx;
    memcpy(buf, im->p + off, len);
    return 0;
}

static void check_result(int rc, const struct cidata *cd, const char *err)
{
    if (rc < 0) {
        size_t n = strnlen(err, CIDATA_ERR_LEN);
        if (rc == -ENOENT && n == 0)
            return; /* "not a seed" has no message by contract */
        if (n == 0 || n >= CIDATA_ERR_LEN || memchr(err, '\n', n))
            abort();
        return;
    }
    for (const char *h = cd->hostname; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
              *h == '-'))
            abort();
    if (cd->keys && (cd->keys_len == 0 || cd->keys[cd->keys_len - 1] != '\n' ||
                     strlen(cd->keys) != cd->keys_len))
        abort();
    if (cd->script && (cd->script_len < 2 || memcmp(cd->script, "#!", 2) != 0))
        abort();
}

static void le_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
        p[7 - i] = (uint8_t)(v >> (8 * i));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cidata cd;
    char err[CIDATA_ERR_LEN] = "";
    int rc;

    if (size < 1)
        return 0;
    if (!(data[0] & 1)) {
        const char *docs[3] = {"", NULL, NULL};
        size_t lens[3] = {0, 0, 0}, start = 1;
        for (int d = 0; d < 3 && start <= size; d++) {
            const uint8_t *nul = memchr(data + start, 0, size - start);
            size_t end = nul ? (size_t)(nul - data) : size;
            docs[d] = (const char *)data + start;
            lens[d] = end - start;
            start = end + 1;
        }
        rc = cidata_parse(&cd, docs[0], lens[0], docs[1], lens[1], docs[2], lens[2], err);
        check_result(rc, &cd, err);
        if (rc == 0)
            cidata_free(&cd);
        return 0;
    }

    size_t body = size - 1, n = 18 * BLOCK + body;
    uint8_t *img = calloc(1, n);
    if (!img)
        return 0;
    uint8_t *pvd = img + 16 * BLOCK, *term = img + 17 * BLOCK;
    pvd[0] = 1;
    memcpy(pvd + 1, "CD001", 5);
    pvd[6] = 1;
    memset(pvd + 40, ' ', 32);
    memcpy(pvd + 40, "cidata", 6);
    pvd[128] = BLOCK & 0xff, pvd[129] = BLOCK >> 8;
    uint8_t *root = pvd + 156;
    root[0] = 34;
    le_be32(root + 2, 18);
    le_be32(root + 10, body < BLOCK ? (uint32_t)(body ? body : 1) : BLOCK);
    root[25] = 2;
    root[32] = 1;
    term[0] = 255;
    memcpy(term + 1, "CD001", 5);
    memcpy(img + 18 * BLOCK, data + 1, body);
    struct image im = {img, n};
    struct cidata_src src = {.read = image_read, .ctx = &im, .size = n};
    rc = cidata_load(&src, &cd, err);
    check_result(rc, &cd, err);
    if (rc == 0)
        cidata_free(&cd);
    free(img);
    return 0;
}
