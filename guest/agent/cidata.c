/*
 * cidata: the NoCloud seed reader. The contract is in cidata.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cidata.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cd_fail(char *err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Messages quote bits of the seed, which may hold any byte: each control byte becomes '?',
 * so that an error stays one line on the console. */
static void err_clean(char *err)
{
    for (; *err; err++)
        if ((unsigned char)*err < 0x20 || *err == 0x7f)
            *err = '?';
}

static int cd_fail(char *err, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CIDATA_ERR_LEN, fmt, ap);
    va_end(ap);
    err_clean(err);
    return rc;
}

/* ---- ISO 9660 ----------------------------------------------------------------------------- */

#define ISO_BLOCK       2048u
#define ISO_FIRST_VD    16u         /* ECMA-119 §6.2.1: the system area is blocks 0..15 */
#define ISO_MAX_VDS     32u         /* descriptors looked at before giving up */
#define ISO_MAX_ROOTDIR (64u << 11) /* bytes of root directory read: 64 blocks */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

/* ECMA-119 §7.3.3: a both-byte-order 32-bit number; the two halves must agree. */
static bool both32(const uint8_t *p, uint32_t *v)
{
    *v = le32(p);
    return be32(p + 4) == *v;
}

static int src_read(const struct cidata_src *src, uint64_t off, void *buf, size_t len)
{
    if (off > src->size || len > src->size - off)
        return -ERANGE;
    return src->read(src->ctx, off, buf, len);
}

int cidata_iso_open(const struct cidata_src *src, struct cidata_iso *iso, char *err)
{
    uint8_t vd[ISO_BLOCK];
    for (uint32_t i = 0; i < ISO_MAX_VDS; i++) {
        int rc = src_read(src, (uint64_t)(ISO_FIRST_VD + i) * ISO_BLOCK, vd, sizeof(vd));
        if (rc == -ERANGE)
            return -ENOENT;
        if (rc < 0)
            return cd_fail(err, rc, "reading volume descriptor %u: %s", i, strerror(-rc));
        /* §8.1: type, "CD001", version 1. */
        if (memcmp(vd + 1, "CD001", 5) != 0)
            return -ENOENT;
        if (vd[0] == 255) /* terminator, §8.3 */
            return -ENOENT;
        if (vd[0] != 1)
            continue;
        /* §8.4: the primary volume descriptor. Volume identifier at 40, 32 d-characters
         * padded with spaces; cloud-init accepts "cidata" and "CIDATA". */
        const uint8_t *id = vd + 40;
        size_t n = 32;
        while (n && id[n - 1] == ' ')
            n--;
        if (n != 6 || strncasecmp((const char *)id, "cidata", 6) != 0)
            return -ENOENT;
        if (vd[6] != 1)
            return cd_fail(err, -EINVAL, "primary volume descriptor: version %u, expected 1",
                           vd[6]);
        uint16_t bs = (uint16_t)(vd[128] | vd[129] << 8);
        if (bs != ISO_BLOCK)
            return cd_fail(err, -EINVAL, "logical block size %u, expected 2048", bs);
        /* §8.4.18: the root directory record, 34 bytes at 156. */
        const uint8_t *root = vd + 156;
        if (root[0] != 34 || !both32(root + 2, &iso->root_lba) ||
            !both32(root + 10, &iso->root_len) || !(root[25] & 2))
            return cd_fail(err, -EINVAL, "root directory record is malformed");
        if (iso->root_len == 0 || iso->root_len > ISO_MAX_ROOTDIR)
            return cd_fail(err, -EINVAL, "root directory of %u bytes, expected 1 to %u",
                           iso->root_len, ISO_MAX_ROOTDIR);
        if ((uint64_t)iso->root_lba * ISO_BLOCK + iso->root_len > src->size)
            return cd_fail(err, -EINVAL, "root directory lies past the end of the image");
        return 0;
    }
    return -ENOENT;
}

/* The Rock Ridge name (RRIP §4.1.4, NM entries, joined while CONTINUE is set) in the System
 * Use area su[0..n) (SUSP §4: entries of signature, length, version, data). Returns its
 * length, 0 when there is none. CE continuation areas are not followed: the names we look
 * for are short enough to sit in the record itself. */
static size_t rr_name(const uint8_t *su, size_t n, char *name, size_t cap)
{
    size_t len = 0, off = 0;
    while (off + 4 <= n) {
        size_t elen = su[off + 2];
        if (elen < 4 || elen > n - off)
            break;
        if (su[off] == 'S' && su[off + 1] == 'T')
            break;
        if (su[off] == 'N' && su[off + 1] == 'M' && elen >= 5) {
            uint8_t flags = su[off + 4];
            size_t part = elen - 5;
            if (flags & 6) /* CURRENT or PARENT: not a name */
                return 0;
            if (len + part >= cap)
                return 0;
            memcpy(name + len, su + off + 5, part);
            len += part;
            if (!(flags & 1))
                break;
        }
        off += elen;
    }
    name[len] = '\0';
    return len;
}

/* The SUSP "SP" entry of the root's "." record says how many bytes to skip at the start of
 * every System Use area (SUSP §5.3); 0 when there is none. */
static unsigned susp_skip(const uint8_t *rec)
{
    size_t nlen = rec[32], start = 33 + nlen + !(nlen & 1);
    if (start + 7 <= rec[0] && rec[start] == 'S' && rec[start + 1] == 'P' && rec[start + 2] == 7 &&
        rec[start + 4] == 0xbe && rec[start + 5] == 0xef)
        return rec[start + 6];
    return 0;
}

/* Whether the ISO 9660 name id[0..n) ("USER_DATA.;1") is `want`, ignoring case, the version
 * and an empty extension's dot. */
static bool iso_name_is(const uint8_t *id, size_t n, const char *want)
{
    const uint8_t *semi = memchr(id, ';', n);
    if (semi)
        n = (size_t)(semi - id);
    if (n && id[n - 1] == '.')
        n--;
    return n == strlen(want) && strncasecmp((const char *)id, want, n) == 0;
}

int cidata_iso_read(const struct cidata_src *src, const struct cidata_iso *iso, const char *name,
                    char **data, size_t *len, char *err)
{
    uint8_t *dir = malloc(iso->root_len);
    int rc;
    unsigned skip = 0;
    bool found = false;
    uint32_t lba = 0, size = 0;

    if (!dir)
        return cd_fail(err, -ENOMEM, "out of memory");
    rc = src_read(src, (uint64_t)iso->root_lba * ISO_BLOCK, dir, iso->root_len);
    if (rc < 0) {
        cd_fail(err, rc, "reading the root directory: %s", strerror(-rc));
        goto free_dir;
    }
    /* §9.1: records never cross a block boundary; a zero length byte pads to the next. */
    for (size_t off = 0, first = 1; off < iso->root_len && !found;) {
        size_t in_block = ISO_BLOCK - off % ISO_BLOCK, rlen = dir[off];
        if (rlen == 0) {
            off += in_block;
            continue;
        }
        if (rlen < 34 || rlen > in_block || rlen > iso->root_len - off ||
            (size_t)dir[off + 32] + 33 > rlen) {
            rc = cd_fail(err, -EINVAL, "root directory: malformed record at byte %zu", off);
            goto free_dir;
        }
        const uint8_t *rec = dir + off;
        size_t nlen = rec[32];
        if (first) {
            skip = susp_skip(rec);
            first = 0;
        }
        /* Not a directory, not multi-extent (flags bits 1 and 7), not interleaved (§9.1.7). */
        if (!(rec[25] & 0x82) && rec[26] == 0 && rec[27] == 0 && !(nlen == 1 && rec[33] <= 1)) {
            char rr[256];
            size_t su = 33 + nlen + !(nlen & 1) + skip;
            bool match = su <= rlen && rr_name(rec + su, rlen - su, rr, sizeof(rr))
                             ? strcmp(rr, name) == 0
                             : iso_name_is(rec + 33, nlen, name);
            if (match) {
                if (!both32(rec + 2, &lba) || !both32(rec + 10, &size)) {
                    rc = cd_fail(err, -EINVAL, "%s: directory record is malformed", name);
                    goto free_dir;
                }
                found = true;
            }
        }
        off += rlen;
    }
    if (!found) {
        rc = cd_fail(err, -ENOENT, "%s: not on the seed disk", name);
        goto free_dir;
    }
    if (size > CIDATA_MAX_FILE) {
        rc = cd_fail(err, -EFBIG, "%s: %u bytes, at most %u", name, size, CIDATA_MAX_FILE);
        goto free_dir;
    }
    if ((uint64_t)lba * ISO_BLOCK + size > src->size) {
        rc = cd_fail(err, -EINVAL, "%s: lies past the end of the image", name);
        goto free_dir;
    }
    *data = malloc((size_t)size + 1);
    if (!*data) {
        rc = cd_fail(err, -ENOMEM, "out of memory");
        goto free_dir;
    }
    rc = size ? src_read(src, (uint64_t)lba * ISO_BLOCK, *data, size) : 0;
    if (rc < 0) {
        cd_fail(err, rc, "%s: %s", name, strerror(-rc));
        free(*data);
        *data = NULL;
        goto free_dir;
    }
    (*data)[size] = '\0';
    *len = size;
free_dir:
    free(dir);
    return rc;
}

/* ---- a small YAML reader -------------------------------------------------------------------- */

#define Y_MAX_NODES 4096
#define Y_MAX_DEPTH 32
#define Y_MAX_KEY   256

enum ykind { Y_NULL, Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
    enum ykind kind;
    size_t key, key_len; /* as a map entry: its key, in the text arena */
    size_t str, len;     /* a scalar: its text, in the arena (NUL-terminated there) */
    bool quoted;
    int first, last, next; /* children, and the next sibling; -1 for none */
};

struct ydoc {
    struct ynode *nodes;
    size_t n;
    char *text; /* the arena: decoded keys and scalars */
    size_t text_len, text_cap;
};

struct yp {
    const char *s;
    size_t n, pos, line_start;
    unsigned line, depth;
    struct ydoc *d;
    const char *file;
    char *err;
};

static int y_fail(struct yp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int y_fail(struct yp *p, const char *fmt, ...)
{
    char msg[CIDATA_ERR_LEN - 48];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, CIDATA_ERR_LEN, "%.16s: line %u: %s", p->file, p->line, msg);
    err_clean(p->err);
    return -EINVAL;
}

static char y_cur(const struct yp *p)
{
    return p->pos < p->n ? p->s[p->pos] : '\0';
}

static char y_at(const struct yp *p, size_t ahead)
{
    return p->pos + ahead < p->n ? p->s[p->pos + ahead] : '\0';
}

static unsigned y_col(const struct yp *p)
{
    return (unsigned)(p->pos - p->line_start);
}

static bool y_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool y_eolc(char c)
{
    return c == '\n' || c == '\0';
}

static void y_newline(struct yp *p)
{
    p->pos++;
    p->line++;
    p->line_start = p->pos;
}

static int y_new(struct yp *p, enum ykind kind)
{
    if (p->d->n >= Y_MAX_NODES)
        return y_fail(p, "more than %d values", Y_MAX_NODES);
    struct ynode *nd = &p->d->nodes[p->d->n];
    memset(nd, 0, sizeof(*nd));
    nd->kind = kind;
    nd->first = nd->last = nd->next = -1;
    return (int)p->d->n++;
}

static void y_append(struct yp *p, int parent, int child)
{
    struct ynode *par = &p->d->nodes[parent];
    if (par->last >= 0)
        p->d->nodes[par->last].next = child;
    else
        par->first = child;
    par->last = child;
}

/* The arena: every decoded string is at most as long as its source, plus its NUL, so an
 * arena of twice the input cannot run out for real input; the checks are for the proof. */
static int y_put(struct yp *p, const char *s, size_t n)
{
    struct ydoc *d = p->d;
    if (n > d->text_cap - d->text_len)
        return y_fail(p, "values too long");
    memcpy(d->text + d->text_len, s, n);
    d->text_len += n;
    return 0;
}

static int y_end_string(struct yp *p, size_t start, size_t *off, size_t *len)
{
    *off = start;
    *len = p->d->text_len - start;
    return y_put(p, "", 1);
}

static int y_put_utf8(struct yp *p, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp >= 0xd800 && cp <= 0xdfff)
        return y_fail(p, "escape of a UTF-16 surrogate");
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else if (cp <= 0x10ffff) {
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    } else {
        return y_fail(p, "escape past U+10FFFF");
    }
    return y_put(p, b, n);
}

/* Moves to the next line with content, skipping blank and comment lines and the document
 * start "---". Returns its indentation, or -1 at the end of the document (or "..."). When
 * the cursor is already on content (after "- " or "key: "), returns its column. */
static int y_next(struct yp *p)
{
    for (;;) {
        while (y_cur(p) == ' ')
            p->pos++;
        char c = y_cur(p);
        if (c == '\t') {
            /* A tab may separate, never indent (YAML 1.2 §6.1). */
            size_t q = p->pos;
            while (q < p->n && y_blank(p->s[q]))
                q++;
            if (q < p->n && p->s[q] != '\n' && p->s[q] != '#' && p->pos == p->line_start)
                return y_fail(p, "a tab in the indentation");
            p->pos = q;
            continue;
        }
        if (c == '#') {
            while (!y_eolc(y_cur(p)))
                p->pos++;
            continue;
        }
        if (c == '\n') {
            y_newline(p);
            continue;
        }
        if (c == '\0')
            return -1;
        if (y_col(p) == 0 && (c == '-' || c == '.') && y_at(p, 1) == c && y_at(p, 2) == c &&
            (y_blank(y_at(p, 3)) || y_eolc(y_at(p, 3)))) {
            if (c == '.')
                return -1;
            p->pos += 3; /* "---": a document starts; only one is read */
            continue;
        }
        return (int)y_col(p);
    }
}

static bool y_is_seq_item(const struct yp *p)
{
    return y_cur(p) == '-' && (y_blank(y_at(p, 1)) || y_eolc(y_at(p, 1)));
}

/* Whether the line from the cursor is "KEY: ..." (the key plain or quoted). */
static bool y_is_map_key(const struct yp *p)
{
    size_t q = p->pos;
    char c = y_cur(p);
    if (c == '"' || c == '\'') {
        for (q++; q < p->n && p->s[q] != '\n'; q++) {
            if (c == '"' && p->s[q] == '\\') {
                q++;
                continue;
            }
            if (p->s[q] == c) {
                if (c == '\'' && q + 1 < p->n && p->s[q + 1] == '\'') {
                    q++;
                    continue;
                }
                break;
            }
        }
        if (q >= p->n || p->s[q] != c)
            return false;
        for (q++; q < p->n && y_blank(p->s[q]); q++)
            ;
        return q < p->n && p->s[q] == ':' &&
               (q + 1 == p->n || y_blank(p->s[q + 1]) || p->s[q + 1] == '\n');
    }
    if (strchr("[{|>&*!%@`#", c))
        return false;
    for (; q < p->n && p->s[q] != '\n'; q++) {
        if (p->s[q] == '#' && q > p->pos && y_blank(p->s[q - 1]))
            return false;
        if (p->s[q] == ':' && (q + 1 == p->n || y_blank(p->s[q + 1]) || p->s[q + 1] == '\n'))
            return true;
    }
    return false;
}

/* After a value: only blanks and a comment may follow on its line. */
static int y_line_end(struct yp *p)
{
    while (y_blank(y_cur(p)))
        p->pos++;
    if (y_cur(p) == '#' || y_eolc(y_cur(p)))
        return 0;
    return y_fail(p, "unexpected text after a value: '%c'", y_cur(p));
}

static int y_double_quoted(struct yp *p, size_t *off, size_t *len)
{
    size_t start = p->d->text_len;
    int rc;
    p->pos++;
    for (;;) {
        char c = y_cur(p);
        if (y_eolc(c))
            return y_fail(p, "a double-quoted string must end on its line");
        p->pos++;
        if (c == '"')
            break;
        if (c != '\\') {
            if ((rc = y_put(p, &c, 1)) < 0)
                return rc;
            continue;
        }
        char e = y_cur(p);
        const char *from = "0abtnvfre \"/\\N_";
        const char *to = "\0\a\b\t\n\v\f\r\x1b \"/\\";
        const char *hit = e ? strchr(from, e) : NULL;
        p->pos++;
        if (hit && hit - from < 13) {
            rc = y_put(p, to + (hit - from), 1);
        } else if (e == 'N' || e == '_') {
            rc = y_put_utf8(p, e == 'N' ? 0x85 : 0xa0);
        } else if (e == 'x' || e == 'u' || e == 'U') {
            unsigned digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (unsigned i = 0; i < digits; i++) {
                char h = y_cur(p);
                int v = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (v < 0)
                    return y_fail(p, "\\%c needs %u hex digits", e, digits);
                if (cp > 0x10ffff)
                    return y_fail(p, "escape past U+10FFFF");
                cp = cp << 4 | (uint32_t)v;
                p->pos++;
            }
            rc = y_put_utf8(p, cp);
        } else {
            return y_fail(p, "unknown escape \\%c", e ? e : '0');
        }
        if (rc < 0)
            return rc;
    }
    return y_end_string(p, start, off, len);
}

static int y_single_quoted(struct yp *p, size_t *off, size_t *len)
{
    size_t start = p->d->text_len;
    int rc;
    p->pos++;
    for (;;) {
        char c = y_cur(p);
        if (y_eolc(c))
            return y_fail(p, "a single-quoted string must end on its line");
        p->pos++;
        if (c == '\'') {
            if (y_cur(p) != '\'')
                break;
            p->pos++;
        }
        if ((rc = y_put(p, &c, 1)) < 0)
            return rc;
    }
    return y_end_string(p, start, off, len);
}

/* A plain scalar to the end of its line, a " #" comment, or (in flow) one of ",[]{}" or
 * ": "; trailing blanks trimmed. */
static int y_plain(struct yp *p, bool flow, bool key, size_t *off, size_t *len)
{
    size_t start = p->pos, end;
    for (;;) {
        char c = y_cur(p);
        if (y_eolc(c) || (c == '#' && p->pos > start && y_blank(p->s[p->pos - 1])))
            break;
        if (flow && strchr(",[]{}", c))
            break;
        if ((flow || key) && c == ':' &&
            (y_blank(y_at(p, 1)) || y_eolc(y_at(p, 1)) || (flow && strchr(",[]{}", y_at(p, 1)))))
            break;
        p->pos++;
    }
    end = p->pos;
    while (end > start && y_blank(p->s[end - 1]))
        end--;
    size_t astart = p->d->text_len;
    int rc = y_put(p, p->s + start, end - start);
    return rc < 0 ? rc : y_end_string(p, astart, off, len);
}

static int y_scalar_node(struct yp *p, bool flow, int *out)
{
    int idx = y_new(p, Y_SCALAR), rc;
    if (idx < 0)
        return idx;
    struct ynode *nd = &p->d->nodes[idx];
    char c = y_cur(p);
    if (c == '"' || c == '\'') {
        nd->quoted = true;
        rc = c == '"' ? y_double_quoted(p, &nd->str, &nd->len)
                      : y_single_quoted(p, &nd->str, &nd->len);
    } else {
        rc = y_plain(p, flow, false, &nd->str, &nd->len);
        const char *t = p->d->text + nd->str;
        if (rc == 0 && (nd->len == 0 || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 ||
                        strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0))
            nd->kind = Y_NULL;
    }
    if (rc < 0)
        return rc;
    *out = idx;
    return 0;
}

static int y_key(struct yp *p, bool flow, size_t *off, size_t *len)
{
    char c = y_cur(p);
    int rc = c == '"'    ? y_double_quoted(p, off, len)
             : c == '\'' ? y_single_quoted(p, off, len)
                         : y_plain(p, flow, true, off, len);
    if (rc < 0)
        return rc;
    if (*len > Y_MAX_KEY)
        return y_fail(p, "a key longer than %d bytes", Y_MAX_KEY);
    while (y_blank(y_cur(p)))
        p->pos++;
    if (y_cur(p) != ':')
        return y_fail(p, "expected ':' after a key");
    p->pos++;
    return 0;
}

static int y_check_unique(struct yp *p, int map, size_t key, size_t key_len)
{
    for (int c = p->d->nodes[map].first; c >= 0; c = p->d->nodes[c].next) {
        const struct ynode *nd = &p->d->nodes[c];
        if (nd->key_len == key_len && memcmp(p->d->text + nd->key, p->d->text + key, key_len) == 0)
            return y_fail(p, "duplicate key '%s'", p->d->text + key);
    }
    return 0;
}

/* Skips blanks, comments and line breaks inside a flow collection. */
static void y_flow_space(struct yp *p)
{
    for (;;) {
        char c = y_cur(p);
        if (y_blank(c)) {
            p->pos++;
        } else if (c == '\n') {
            y_newline(p);
        } else if (c == '#') {
            while (!y_eolc(y_cur(p)))
                p->pos++;
        } else {
            return;
        }
    }
}

static int y_flow(struct yp *p, int *out);

static int y_flow_value(struct yp *p, int *out)
{
    char c = y_cur(p);
    if (c == '[' || c == '{')
        return y_flow(p, out);
    if (strchr("&*!|>%@`", c))
        return y_fail(p,
                      "'%c': anchors, aliases, tags and block scalars are not supported in "
                      "[...] or {...}",
                      c);
    return y_scalar_node(p, true, out);
}

/* [a, b] or {k: v, ...}, possibly over several lines (YAML 1.2 §7.4). */
static int y_flow(struct yp *p, int *out)
{
    char open = y_cur(p), close = open == '[' ? ']' : '}';
    int node = y_new(p, open == '[' ? Y_SEQ : Y_MAP), rc;
    if (node < 0)
        return node;
    if (++p->depth > Y_MAX_DEPTH)
        return y_fail(p, "nested deeper than %d", Y_MAX_DEPTH);
    p->pos++;
    for (;;) {
        y_flow_space(p);
        if (y_cur(p) == close) {
            p->pos++;
            break;
        }
        if (y_cur(p) == '\0')
            return y_fail(p, "'%c' is not closed", open);
        int child;
        if (open == '{') {
            size_t key, key_len;
            if ((rc = y_key(p, true, &key, &key_len)) < 0 ||
                (rc = y_check_unique(p, node, key, key_len)) < 0)
                return rc;
            y_flow_space(p);
            if (y_cur(p) == ',' || y_cur(p) == '}') {
                if ((child = y_new(p, Y_NULL)) < 0)
                    return child;
            } else if ((rc = y_flow_value(p, &child)) < 0) {
                return rc;
            }
            p->d->nodes[child].key = key;
            p->d->nodes[child].key_len = key_len;
        } else if ((rc = y_flow_value(p, &child)) < 0) {
            return rc;
        }
        y_append(p, node, child);
        y_flow_space(p);
        if (y_cur(p) == '\0')
            return y_fail(p, "'%c' is not closed", open);
        if (y_cur(p) == ',') {
            p->pos++;
        } else if (y_cur(p) != close) {
            return y_fail(p, "expected ',' or '%c'", close);
        }
    }
    p->depth--;
    *out = node;
    return 0;
}

/* A literal block scalar "|" with optional chomping and indentation indicators (YAML 1.2
 * §8.1.1); `parent` is the indentation of the key or "-" that holds it. */
static int y_literal(struct yp *p, int parent, int *out)
{
    char chomp = 'c';
    unsigned indicator = 0;
    int idx, rc;
    p->pos++;
    for (int i = 0; i < 2; i++) {
        char c = y_cur(p);
        if ((c == '-' || c == '+') && chomp == 'c')
            chomp = c, p->pos++;
        else if (c >= '1' && c <= '9' && !indicator)
            indicator = (unsigned)(c - '0'), p->pos++;
    }
    if ((rc = y_line_end(p)) < 0)
        return rc;
    while (!y_eolc(y_cur(p)))
        p->pos++;
    if ((idx = y_new(p, Y_SCALAR)) < 0)
        return idx;
    size_t start = p->d->text_len, keep = 0;
    unsigned ind = indicator ? (unsigned)parent + indicator : 0;
    while (y_cur(p) == '\n') {
        /* Look at the next line: blank, or indented enough to belong to the scalar. */
        size_t q = p->pos + 1, sp = 0;
        while (q + sp < p->n && p->s[q + sp] == ' ')
            sp++;
        bool blank = q + sp >= p->n || p->s[q + sp] == '\n';
        if (!blank && !ind) {
            if (sp <= (size_t)parent && parent >= 0)
                break;
            ind = (unsigned)sp;
        }
        if (!blank && sp < ind)
            break;
        if (blank && q + sp >= p->n)
            break;
        y_newline(p);
        size_t from = ind && sp >= ind ? ind : sp;
        p->pos += from;
        size_t ls = p->pos;
        while (!y_eolc(y_cur(p)))
            p->pos++;
        if ((rc = y_put(p, p->s + ls, p->pos - ls)) < 0 || (rc = y_put(p, "\n", 1)) < 0)
            return rc;
        if (!blank || p->pos > ls)
            keep = p->d->text_len;
    }
    /* Chomping (§8.1.1.2): strip all final line breaks, clip to one, or keep them. */
    if (chomp == '-')
        p->d->text_len = keep ? keep - 1 : start;
    else if (chomp == 'c')
        p->d->text_len = keep ? keep : start;
    struct ynode *nd = &p->d->nodes[idx];
    nd->quoted = true;
    if ((rc = y_end_string(p, start, &nd->str, &nd->len)) < 0)
        return rc;
    *out = idx;
    return 0;
}

/* A value that starts on the current line: scalar, flow collection or block scalar. */
static int y_inline(struct yp *p, int parent, int *out)
{
    char c = y_cur(p);
    int rc;
    if (c == '|')
        return y_literal(p, parent, out);
    if (c == '>')
        return y_fail(p, "folded block scalars (>) are not supported; use a literal (|)");
    if (strchr("&*!%@`", c))
        return y_fail(p, "'%c': anchors, aliases, tags and directives are not supported", c);
    rc = (c == '[' || c == '{') ? y_flow(p, out) : y_scalar_node(p, false, out);
    return rc < 0 ? rc : y_line_end(p);
}

static int y_block_at(struct yp *p, int ind, int *out);

/* The block node after "key:" or "-" and a line break: indented deeper than parent, or (a
 * sequence under a key, `seq_ok`) at the parent's indentation. *out = a null node when the
 * value is empty. */
static int y_block(struct yp *p, int parent, bool seq_ok, int *out)
{
    int ind = y_next(p);
    if (ind < -1)
        return ind;
    if (ind < 0 || ind < parent || (ind == parent && !(seq_ok && y_is_seq_item(p)))) {
        *out = y_new(p, Y_NULL);
        return *out < 0 ? *out : 0;
    }
    return y_block_at(p, ind, out);
}

static int y_seq(struct yp *p, int ind, int *out)
{
    int node = y_new(p, Y_SEQ), rc, child, next;
    if (node < 0)
        return node;
    for (;;) {
        p->pos++; /* the "-" */
        while (y_blank(y_cur(p)))
            p->pos++;
        if (y_eolc(y_cur(p)) || y_cur(p) == '#')
            rc = y_block(p, ind, false, &child);
        else if (y_cur(p) == '|') /* its lines need only be deeper than the "-" */
            rc = y_literal(p, ind, &child);
        else
            rc = y_block_at(p, (int)y_col(p), &child);
        if (rc < 0)
            return rc;
        y_append(p, node, child);
        if ((next = y_next(p)) < -1)
            return next;
        if (next == ind && y_is_seq_item(p))
            continue;
        if (next > ind)
            return y_fail(p, "bad indentation in a list");
        break;
    }
    *out = node;
    return 0;
}

static int y_map(struct yp *p, int ind, int *out)
{
    int node = y_new(p, Y_MAP), rc, child, next;
    if (node < 0)
        return node;
    for (;;) {
        size_t key, key_len;
        if (!y_is_map_key(p))
            return y_fail(p, "expected 'key: value'");
        if ((rc = y_key(p, false, &key, &key_len)) < 0 ||
            (rc = y_check_unique(p, node, key, key_len)) < 0)
            return rc;
        while (y_blank(y_cur(p)))
            p->pos++;
        if (y_eolc(y_cur(p)) || y_cur(p) == '#')
            rc = y_block(p, ind, true, &child);
        else
            rc = y_inline(p, ind, &child);
        if (rc < 0)
            return rc;
        p->d->nodes[child].key = key;
        p->d->nodes[child].key_len = key_len;
        y_append(p, node, child);
        if ((next = y_next(p)) < -1)
            return next;
        if (next == ind && !y_is_seq_item(p))
            continue;
        if (next > ind)
            return y_fail(p, "bad indentation in a mapping");
        break;
    }
    *out = node;
    return 0;
}

static int y_block_at(struct yp *p, int ind, int *out)
{
    int rc;
    if (++p->depth > Y_MAX_DEPTH)
        return y_fail(p, "nested deeper than %d", Y_MAX_DEPTH);
    if (y_is_seq_item(p))
        rc = y_seq(p, ind, out);
    else if (y_is_map_key(p))
        rc = y_map(p, ind, out);
    else
        rc = y_inline(p, ind - 1, out);
    p->depth--;
    return rc;
}

static void ydoc_free(struct ydoc *d)
{
    free(d->nodes);
    free(d->text);
    memset(d, 0, sizeof(*d));
}

/* Parses s[0..n) into d; *root is its top node (a null node for an empty document). */
static int ydoc_parse(struct ydoc *d, const char *file, const char *s, size_t n, int *root,
                      char *err)
{
    struct yp p = {.s = s, .n = n, .line = 1, .d = d, .file = file, .err = err};
    int rc;
    memset(d, 0, sizeof(*d));
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t' &&
            !(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
            return cd_fail(err, -EINVAL, "%s: byte %zu is a control character", file, i + 1);
    /* "\r\n" line ends: the "\r" is dropped, so every rule above sees "\n". */
    if (memchr(s, '\r', n)) {
        char *copy = malloc(n + 1);
        size_t m = 0;
        if (!copy)
            return cd_fail(err, -ENOMEM, "%s: out of memory", file);
        for (size_t i = 0; i < n; i++)
            if (s[i] != '\r')
                copy[m++] = s[i];
        copy[m] = '\0';
        rc = ydoc_parse(d, file, copy, m, root, err);
        free(copy);
        return rc;
    }
    d->nodes = calloc(Y_MAX_NODES, sizeof(*d->nodes));
    d->text_cap = 2 * n + 2 * Y_MAX_NODES + 16;
    d->text = malloc(d->text_cap);
    if (!d->nodes || !d->text) {
        ydoc_free(d);
        return cd_fail(err, -ENOMEM, "%s: out of memory", file);
    }
    rc = y_block(&p, -1, false, root);
    if (rc == 0) {
        int tail = y_next(&p);
        if (tail < -1)
            rc = tail;
        else if (tail >= 0)
            rc = y_fail(&p, "unexpected text after the document");
    }
    if (rc < 0)
        ydoc_free(d);
    return rc;
}

static const struct ynode *y_node(const struct ydoc *d, int idx)
{
    return idx >= 0 ? &d->nodes[idx] : NULL;
}

/* The value of `key` in the map node, or NULL. */
static const struct ynode *y_get(const struct ydoc *d, const struct ynode *map, const char *key)
{
    if (!map || map->kind != Y_MAP)
        return NULL;
    size_t n = strlen(key);
    for (int c = map->first; c >= 0; c = d->nodes[c].next)
        if (d->nodes[c].key_len == n && memcmp(d->text + d->nodes[c].key, key, n) == 0)
            return &d->nodes[c];
    return NULL;
}

static const char *y_str(const struct ydoc *d, const struct ynode *nd)
{
    /* A string with a NUL byte (from "\0") is no string for any use here. */
    if (!nd || nd->kind != Y_SCALAR || memchr(d->text + nd->str, '\0', nd->len))
        return NULL;
    return d->text + nd->str;
}

/* YAML 1.1 booleans, as cloud-init's PyYAML reads them. */
static int y_bool(const struct ydoc *d, const struct ynode *nd)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};
    const char *s = nd && !nd->quoted ? y_str(d, nd) : NULL;
    for (size_t i = 0; s && i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0)
            return 1;
        if (strcmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* ---- NoCloud ----------------------------------------------------------------------------------
 */

static bool printable_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Sets cd->hostname from an RFC 1123 name: its first label, as cloud-init sets the short
 * name when given a fully qualified one. */
static int set_hostname(struct cidata *cd, const char *file, const char *key, const char *h,
                        char *err)
{
    size_t n = strlen(h), label = strcspn(h, ".");
    if (n == 0 || n > 253 || label == 0 || label > 63 || h[0] == '-' || h[label - 1] == '-')
        return cd_fail(err, -EINVAL, "%s: %s: expected an RFC 1123 host name", file, key);
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return cd_fail(err, -EINVAL, "%s: %s: expected an RFC 1123 host name", file, key);
    }
    memcpy(cd->hostname, h, label);
    cd->hostname[label] = '\0';
    return 0;
}

static const char *const key_types[] = {
    "ssh-ed25519 ",
    "ssh-rsa ",
    "ecdsa-sha2-nistp256 ",
    "ecdsa-sha2-nistp384 ",
    "ecdsa-sha2-nistp521 ",
    "sk-ssh-ed25519@openssh.com ",
    "sk-ecdsa-sha2-nistp256@openssh.com ",
    "ssh-dss ",
};

/* Appends one authorized_keys line (no control characters, a known type first, at most 8
 * KiB) unless it is there already. Blank text adds nothing. */
static int add_key(struct cidata *cd, const char *file, const char *k, size_t n, char *err)
{
    bool known = false;
    while (n && (k[n - 1] == ' ' || k[n - 1] == '\n'))
        n--;
    while (n && (*k == ' ' || *k == '\n'))
        k++, n--;
    if (n == 0)
        return 0;
    if (n > 8192 || !printable_text(k, n))
        return cd_fail(err, -EINVAL, "%s: ssh key %u: not one line of at most 8 KiB", file,
                       cd->n_keys + 1);
    for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
        known |= n > strlen(key_types[i]) && strncmp(k, key_types[i], strlen(key_types[i])) == 0;
    if (!known)
        return cd_fail(err, -EINVAL, "%s: ssh key %u: does not start with a known key type", file,
                       cd->n_keys + 1);
    /* meta-data's public-keys and cloud-config's ssh_authorized_keys usually repeat each
     * other; like cloud-init (ssh_util.update_authorized_keys) each key is written once. */
    for (size_t off = 0; off < cd->keys_len;) {
        size_t l = strcspn(cd->keys + off, "\n");
        if (l == n && memcmp(cd->keys + off, k, n) == 0)
            return 0;
        off += l + 1;
    }
    if (cd->n_keys >= CIDATA_MAX_KEYS)
        return cd_fail(err, -EINVAL, "%s: more than %d ssh keys", file, CIDATA_MAX_KEYS);
    char *grown = realloc(cd->keys, cd->keys_len + n + 2);
    if (!grown)
        return cd_fail(err, -ENOMEM, "out of memory");
    cd->keys = grown;
    memcpy(cd->keys + cd->keys_len, k, n);
    cd->keys_len += n;
    cd->keys[cd->keys_len++] = '\n';
    cd->keys[cd->keys_len] = '\0';
    cd->n_keys++;
    return 0;
}

/* A key list: one string (keys one a line), a list of strings, or (public-keys in meta-data,
 * EC2 style) a mapping whose values are strings or lists of strings. */
static int add_keys(struct cidata *cd, const struct ydoc *d, const struct ynode *v,
                    const char *file, bool allow_map, char *err)
{
    int rc;
    if (!v || v->kind == Y_NULL)
        return 0;
    if (v->kind == Y_SCALAR) {
        const char *s = d->text + v->str;
        for (size_t off = 0; off <= v->len;) {
            size_t l = strcspn(s + off, "\n");
            if ((rc = add_key(cd, file, s + off, l, err)) < 0)
                return rc;
            off += l + 1;
        }
        return 0;
    }
    if (v->kind == Y_MAP && !allow_map)
        return cd_fail(err, -EINVAL, "%s: ssh keys: expected a list of strings", file);
    for (int c = v->first; c >= 0; c = d->nodes[c].next) {
        const struct ynode *item = &d->nodes[c];
        if (item->kind == Y_SEQ && v->kind == Y_MAP)
            rc = add_keys(cd, d, item, file, false, err);
        else if (item->kind == Y_SCALAR)
            rc = add_key(cd, file, d->text + item->str, item->len, err);
        else if (item->kind == Y_NULL)
            rc = 0;
        else
            return cd_fail(err, -EINVAL, "%s: ssh keys: expected strings", file);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int script_add(struct cidata *cd, const char *s, size_t n)
{
    char *grown = realloc(cd->script, cd->script_len + n + 1);
    if (!grown)
        return -ENOMEM;
    cd->script = grown;
    memcpy(cd->script + cd->script_len, s, n);
    cd->script_len += n;
    cd->script[cd->script_len] = '\0';
    return 0;
}

/* runcmd (cloud-init cc_runcmd): a list whose strings are shell lines and whose lists are
 * argv words, each quoted for sh; the whole becomes one /bin/sh script. */
static int parse_runcmd(struct cidata *cd, const struct ydoc *d, const struct ynode *v, char *err)
{
    int rc = 0;
    if (!v || v->kind == Y_NULL)
        return 0;
    if (v->kind != Y_SEQ)
        return cd_fail(err, -EINVAL, "user-data: runcmd: expected a list");
    if ((rc = script_add(cd, "#!/bin/sh\n", 10)) < 0)
        goto oom;
    for (int c = v->first; c >= 0; c = d->nodes[c].next) {
        const struct ynode *item = &d->nodes[c];
        if (item->kind == Y_SCALAR) {
            if (memchr(d->text + item->str, '\0', item->len))
                return cd_fail(err, -EINVAL, "user-data: runcmd: a NUL byte in a command");
            if ((rc = script_add(cd, d->text + item->str, item->len)) < 0)
                goto oom;
        } else if (item->kind == Y_SEQ) {
            for (int w = item->first; w >= 0; w = d->nodes[w].next) {
                const struct ynode *word = &d->nodes[w];
                const char *t = y_str(d, word);
                if (!t || memchr(t, '\0', word->len))
                    return cd_fail(err, -EINVAL,
                                   "user-data: runcmd: expected a list of strings as a command");
                if ((rc = script_add(cd, w == item->first ? "'" : " '", w == item->first ? 1 : 2)) <
                    0)
                    goto oom;
                for (size_t i = 0; i < word->len; i++)
                    if ((rc = t[i] == '\'' ? script_add(cd, "'\\''", 4)
                                           : script_add(cd, t + i, 1)) < 0)
                        goto oom;
                if ((rc = script_add(cd, "'", 1)) < 0)
                    goto oom;
            }
        } else if (item->kind != Y_NULL) {
            return cd_fail(err, -EINVAL, "user-data: runcmd: expected strings or lists");
        }
        if ((rc = script_add(cd, "\n", 1)) < 0)
            goto oom;
    }
    return 0;
oom:
    return cd_fail(err, rc, "out of memory");
}

static int parse_meta(struct cidata *cd, const char *s, size_t n, char *err)
{
    struct ydoc d;
    int root, rc;
    if ((rc = ydoc_parse(&d, "meta-data", s, n, &root, err)) < 0)
        return rc;
    const struct ynode *top = y_node(&d, root), *v;
    if (top->kind != Y_MAP && top->kind != Y_NULL) {
        rc = cd_fail(err, -EINVAL, "meta-data: expected a mapping");
        goto free_doc;
    }
    const char *id = y_str(&d, y_get(&d, top, "instance-id"));
    if (id) {
        if (strlen(id) >= sizeof(cd->instance_id) || !printable_text(id, strlen(id))) {
            rc = cd_fail(err, -EINVAL,
                         "meta-data: instance-id: expected at most 128 printable "
                         "bytes");
            goto free_doc;
        }
        strcpy(cd->instance_id, id);
    }
    v = y_get(&d, top, "local-hostname");
    if (!v)
        v = y_get(&d, top, "hostname");
    if (v && y_str(&d, v) &&
        (rc = set_hostname(cd, "meta-data", "local-hostname", y_str(&d, v), err)) < 0)
        goto free_doc;
    rc = add_keys(cd, &d, y_get(&d, top, "public-keys"), "meta-data", true, err);
free_doc:
    ydoc_free(&d);
    return rc;
}

static int parse_user(struct cidata *cd, const char *s, size_t n, char *err)
{
    struct ydoc d;
    int root, rc;
    if (n >= 2 && memcmp(s, "#!", 2) == 0) {
        if ((rc = script_add(cd, s, n)) < 0)
            return cd_fail(err, rc, "out of memory");
        return 0;
    }
    if (n < 13 || memcmp(s, "#cloud-config", 13) != 0 ||
        !(n == 13 || s[13] == '\n' || s[13] == '\r' || s[13] == ' ')) {
        if (n)
            snprintf(cd->note, sizeof(cd->note),
                     "user-data is neither a script (#!) nor #cloud-config; ignored");
        return 0;
    }
    if ((rc = ydoc_parse(&d, "user-data", s, n, &root, err)) < 0)
        return rc;
    const struct ynode *top = y_node(&d, root), *v;
    if (top->kind != Y_MAP && top->kind != Y_NULL) {
        rc = cd_fail(err, -EINVAL, "user-data: expected a mapping after #cloud-config");
        goto free_doc;
    }
    v = y_get(&d, top, "hostname");
    if (!v || !y_str(&d, v))
        v = y_get(&d, top, "fqdn");
    if (v && y_str(&d, v) &&
        (rc = set_hostname(cd, "user-data", "hostname", y_str(&d, v), err)) < 0)
        goto free_doc;
    if ((rc = add_keys(cd, &d, y_get(&d, top, "ssh_authorized_keys"), "user-data", false, err)) < 0)
        goto free_doc;
    rc = parse_runcmd(cd, &d, y_get(&d, top, "runcmd"), err);
free_doc:
    ydoc_free(&d);
    return rc;
}

static int copy_ipv4(char *dst, const char *s, const char *what, char *err)
{
    struct in_addr a;
    if (!s || inet_pton(AF_INET, s, &a) != 1)
        return cd_fail(err, -EINVAL, "network-config: %s: expected an IPv4 address", what);
    strcpy(dst, s); /* inet_pton accepts at most 15 characters */
    return 0;
}

static int parse_net(struct cidata *cd, const char *s, size_t n, char *err)
{
    struct ydoc d;
    int root, rc = 0;
    if ((rc = ydoc_parse(&d, "network-config", s, n, &root, err)) < 0)
        return rc;
    const struct ynode *top = y_node(&d, root), *eths, *eth, *v;
    struct cidata_net *net = &cd->net;
    if (y_get(&d, top, "network"))
        top = y_get(&d, top, "network");
    if (top->kind == Y_NULL)
        goto free_doc;
    const char *version = y_str(&d, y_get(&d, top, "version"));
    if (!version || strcmp(version, "2") != 0) {
        rc = cd_fail(err, -EINVAL, "network-config: only version 2 is supported");
        goto free_doc;
    }
    eths = y_get(&d, top, "ethernets");
    if (!eths || eths->kind != Y_MAP || eths->first < 0)
        goto free_doc;
    eth = &d.nodes[eths->first];
    if (eth->kind != Y_MAP) {
        rc = cd_fail(err, -EINVAL, "network-config: ethernets: expected a mapping");
        goto free_doc;
    }
    const char *mac = y_str(&d, y_get(&d, y_get(&d, eth, "match"), "macaddress"));
    if (mac) {
        unsigned b[6];
        char tail;
        if (strlen(mac) != 17 || sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2],
                                        &b[3], &b[4], &b[5], &tail) != 6) {
            rc = cd_fail(err, -EINVAL, "network-config: match.macaddress: expected aa:bb:..");
            goto free_doc;
        }
        snprintf(net->mac, sizeof(net->mac), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5]);
    }
    net->dhcp = y_bool(&d, y_get(&d, eth, "dhcp4")) == 1;
    v = y_get(&d, eth, "addresses");
    if (v && v->kind == Y_SEQ) {
        for (int c = v->first; c >= 0 && !net->address[0]; c = d.nodes[c].next) {
            const char *a = y_str(&d, &d.nodes[c]);
            char ip[16];
            unsigned prefix;
            char slash, tail;
            size_t iplen = a ? strcspn(a, "/") : 0;
            if (!a || iplen >= sizeof(ip) || a[iplen] != '/')
                continue; /* IPv6 or no prefix: not for this guest */
            memcpy(ip, a, iplen);
            ip[iplen] = '\0';
            if (copy_ipv4(net->address, ip, "addresses", err) < 0)
                continue;
            if (sscanf(a + iplen, "%c%u%c", &slash, &prefix, &tail) != 2 || prefix < 1 ||
                prefix > 32 || a[iplen + 1] < '0' || a[iplen + 1] > '9') {
                rc = cd_fail(err, -EINVAL, "network-config: addresses: bad prefix in '%.40s'", a);
                goto free_doc;
            }
            snprintf(net->address, sizeof(net->address), "%s/%u", ip, prefix);
        }
    }
    const char *gw = y_str(&d, y_get(&d, eth, "gateway4"));
    v = y_get(&d, eth, "routes");
    for (int c = v && v->kind == Y_SEQ ? v->first : -1; c >= 0 && !gw; c = d.nodes[c].next) {
        const char *to = y_str(&d, y_get(&d, &d.nodes[c], "to"));
        if (to && (strcmp(to, "default") == 0 || strcmp(to, "0.0.0.0/0") == 0))
            gw = y_str(&d, y_get(&d, &d.nodes[c], "via"));
    }
    if (gw && (rc = copy_ipv4(net->gateway, gw, "gateway", err)) < 0)
        goto free_doc;
    v = y_get(&d, y_get(&d, eth, "nameservers"), "addresses");
    for (int c = v && v->kind == Y_SEQ ? v->first : -1; c >= 0; c = d.nodes[c].next) {
        const char *a = y_str(&d, &d.nodes[c]);
        struct in_addr ia;
        if (!a || inet_pton(AF_INET, a, &ia) != 1 || net->n_dns >= CIDATA_MAX_DNS)
            continue;
        strcpy(net->dns[net->n_dns++], a);
    }
    net->present = net->dhcp || net->address[0];
free_doc:
    ydoc_free(&d);
    return rc;
}

void cidata_free(struct cidata *cd)
{
    free(cd->keys);
    free(cd->script);
    cd->keys = cd->script = NULL;
}

int cidata_parse(struct cidata *cd, const char *meta, size_t meta_len, const char *user,
                 size_t user_len, const char *net, size_t net_len, char *err)
{
    int rc;
    memset(cd, 0, sizeof(*cd));
    if ((rc = parse_meta(cd, meta, meta_len, err)) < 0 ||
        (user && (rc = parse_user(cd, user, user_len, err)) < 0) ||
        (net && (rc = parse_net(cd, net, net_len, err)) < 0)) {
        cidata_free(cd);
        return rc;
    }
    return 0;
}

int cidata_load(const struct cidata_src *src, struct cidata *cd, char *err)
{
    struct cidata_iso iso;
    char *meta = NULL, *user = NULL, *net = NULL;
    size_t meta_len = 0, user_len = 0, net_len = 0;
    int rc;
    if ((rc = cidata_iso_open(src, &iso, err)) < 0)
        return rc;
    if ((rc = cidata_iso_read(src, &iso, "meta-data", &meta, &meta_len, err)) < 0)
        return rc == -ENOENT ? -EINVAL : rc;
    rc = cidata_iso_read(src, &iso, "user-data", &user, &user_len, err);
    if (rc < 0 && rc != -ENOENT)
        goto free_files;
    rc = cidata_iso_read(src, &iso, "network-config", &net, &net_len, err);
    if (rc < 0 && rc != -ENOENT)
        goto free_files;
    rc = cidata_parse(cd, meta, meta_len, user, user_len, net, net_len, err);
    if (rc == 0)
        err[0] = '\0'; /* a missing optional file is no error */
free_files:
    free(meta);
    free(user);
    free(net);
    return rc;
}
