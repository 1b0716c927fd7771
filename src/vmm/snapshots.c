/* Listing and deleting external snapshots (snapshots.h): backing chains walked through the
 * VM's open images, state file headers, the X.deps records, and the merge of one layer into
 * the snapshot image below it. */
#include "vmm/snapshots.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/hostfs.h"
#include "base/log.h"
#include "base/time.h"
#include "block/block.h"
#include "hw/virtio/vdev.h"
#include "vmm/stream.h"

#define DEPS_SUFFIX    ".deps"
#define DEPS_MAX_BYTES (1u << 20) /* a dependants list larger than this is not ours */
#define SCAN_MAX_FILES 100000     /* files looked at in a snapshot image's folder */
#define CHAIN_MAX      (BLOCK_MAX_CHAIN_DEPTH + 2)
#define FMT_LEN        16

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, SNAPSHOT_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* ---- Files: identity, names, folders ---- */

/* Formats a path into out (PATH_MAX bytes); false when it does not fit. */
static bool path_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool path_fmt(char *out, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    return n >= 0 && n < PATH_MAX;
}

/* X.deps for state file X (shorter than PATH_MAX - 32, as abs_path() makes it). */
static void deps_name(const char *state, char *out)
{
    path_fmt(out, "%s" DEPS_SUFFIX, state);
}

/* A file, as the kernel knows it: two paths name the same file when these match. */
struct file_id {
    dev_t dev;
    ino_t ino;
};

/* stat() (following links): false when the path names nothing that can be stat'ed. */
static bool id_of(const char *path, struct file_id *id)
{
    struct stat st;

    if (hostfs_stat(path, &st) < 0)
        return false;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    return true;
}

static bool id_eq(const struct file_id *a, const struct file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino;
}

/* The absolute form of `path` (its folder resolved, its last name kept, so that a link stays a
 * link) into out (PATH_MAX bytes). 0 or -errno with err. */
static int abs_path(const char *path, char *out, char *err)
{
    char copy[PATH_MAX], folder[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) : 0;

    if (!*path || strlen(path) >= PATH_MAX - 32) {
        set_err(err, "%.200s%s: path is empty or too long", path, strlen(path) > 200 ? "..." : "");
        return -ENAMETOOLONG;
    }
    if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) {
        set_err(err, "%s: not a file name", path);
        return -EINVAL;
    }
    if (slash && dlen == 0)
        snprintf(copy, sizeof(copy), "/");
    else if (slash)
        snprintf(copy, sizeof(copy), "%.*s", (int)dlen, path);
    else
        snprintf(copy, sizeof(copy), ".");
    if (hostfs_realpath(copy, folder) < 0) {
        int ret = -errno;

        set_err(err, "%s: its folder %s cannot be resolved: %s", path, copy, strerror(errno));
        return ret;
    }
    if (strlen(folder) + 1 + strlen(name) >= PATH_MAX - 32) {
        set_err(err, "%.200s...: path too long", path);
        return -ENAMETOOLONG;
    }
    path_fmt(out, "%s%s%s", folder, strcmp(folder, "/") ? "/" : "", name);
    return 0;
}

/* Splits "X.diskN" (N decimal, 0..255, no leading zero) into X (PATH_MAX bytes) and N.
 * Returns false for any other name. */
static bool split_disk_name(const char *path, char *state, unsigned *slot)
{
    const char *dot = strrchr(path, '.');
    const char *digits;
    unsigned long n;
    char *end;

    if (!dot || strncmp(dot, ".disk", 5))
        return false;
    digits = dot + 5;
    if (*digits < '0' || *digits > '9' || (digits[0] == '0' && digits[1]))
        return false;
    n = strtoul(digits, &end, 10);
    if (*end || n > 255 || dot == path || dot[-1] == '/' || (size_t)(dot - path) >= PATH_MAX)
        return false;
    memcpy(state, path, (size_t)(dot - path));
    state[dot - path] = '\0';
    *slot = (unsigned)n;
    return true;
}

/* "X.diskN" into out (PATH_MAX bytes); X is shorter than PATH_MAX - 32. */
static void disk_name(const char *state, unsigned slot, char *out)
{
    path_fmt(out, "%s.disk%u", state, slot);
}

/* The path of backing file `name` named by the image at `image`: as block_open() resolves it,
 * relative to image's folder. false when it does not fit. */
static bool resolve_backing(const char *image, const char *name, char *out)
{
    const char *slash = strrchr(image, '/');

    if (name[0] == '/' || !slash)
        return snprintf(out, PATH_MAX, "%s", name) < PATH_MAX;
    return snprintf(out, PATH_MAX, "%.*s/%s", (int)(slash - image), image, name) < PATH_MAX;
}

/* The folder part of `path` into out (PATH_MAX bytes): "." or "/" when that is all. */
static void folder_of(const char *path, char *out)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(out, PATH_MAX, ".");
    else if (slash == path)
        snprintf(out, PATH_MAX, "/");
    else
        snprintf(out, PATH_MAX, "%.*s", (int)(slash - path), path);
}

bool snapshot_same_folder(const char *a, const char *b)
{
    char da[PATH_MAX], db[PATH_MAX];
    struct file_id ia, ib;

    folder_of(a, da);
    folder_of(b, db);
    return id_of(da, &ia) && id_of(db, &ib) && id_eq(&ia, &ib);
}

/* fsync()s the folder holding `path`, so that a rename or unlink in it is durable. */
static void sync_folder(const char *path)
{
    char dir[PATH_MAX];
    int fd;

    folder_of(path, dir);
    fd = hostfs_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (fsync(fd) < 0)
        log_warn("%s: fsync of the folder: %s", dir, strerror(errno));
    close(fd);
}

/* ---- State files ---- */

/* What a state file's header says about its disks. */
struct snap_config {
    unsigned disks;                            /* bit N: slot N was frozen */
    char frozen[SNAPSHOT_MAX_DISKS][PATH_MAX]; /* the image it names for slot N */
    char of[SNAPSHOT_MAX_DISKS][PATH_MAX];     /* snapshot-of: the disk's path then */
};

/* A string member of a JSON object without NUL bytes, or NULL. */
static const char *json_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

/* Parses the machine config of state file `path` (the JSON vm_snapshot() writes). */
static int parse_config(const char *path, const char *json, struct snap_config *c, char *err)
{
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr), *devs;
    int ret = -EINVAL;

    memset(c, 0, sizeof(*c));
    if (!json_is_object(root)) {
        set_err(err, "%s: the machine config in its header is not a JSON object", path);
        goto out;
    }
    devs = json_object_get(root, "devices");
    if (!json_is_array(devs) || json_array_size(devs) > SNAPSHOT_MAX_DISKS) {
        set_err(err, "%s: the machine config's 'devices' is not a list of at most %d", path,
                SNAPSHOT_MAX_DISKS);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(devs); i++) {
        json_t *d = json_array_get(devs, i);
        const char *type = json_str(d, "type"), *opts = json_str(d, "options");
        int r;

        if (!type || !opts) {
            set_err(err, "%s: machine config: devices[%zu] lacks its type or options", path, i);
            goto out;
        }
        if (strcmp(type, "disk"))
            continue;
        r = opt_get(opts, "snapshot-of", c->of[i], PATH_MAX);
        if (r == 0)
            continue; /* a read-only disk: not frozen */
        if (r < 0 || opt_first_word(opts, c->frozen[i], PATH_MAX) != 1) {
            set_err(err, "%s: machine config: disk %zu names no image, or one too long", path, i);
            goto out;
        }
        c->disks |= 1u << i;
    }
    ret = 0;
out:
    json_decref(root);
    return ret;
}

/* Reads and checks the header of state file `path` (stream.h): *taken its time, *c its
 * disks. Only a regular file is opened (a FIFO would hang us). 0 or -errno with err. */
static int read_state(const char *path, uint64_t *taken, uint64_t *bytes, struct snap_config *c,
                      char *err)
{
    struct stream_reader *r = NULL;
    uint8_t le[8];
    char *json = NULL;
    struct stat st;
    int fd, ret;

    fd = hostfs_open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        ret = -errno;
        set_err(err, "%s: cannot open: %s", path, strerror(errno));
        return ret;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        ret = -EINVAL;
        set_err(err, "%s: not a regular file", path);
        goto out;
    }
    *bytes = (uint64_t)st.st_size;
    if (stream_reader_create(fd, path, &r)) {
        ret = -ENOMEM;
        set_err(err, "%s: out of memory", path);
        goto out;
    }
    if (stream_read_header(r, &json)) {
        ret = -EINVAL;
        set_err(err, "%s", stream_reader_error(r));
        goto out;
    }
    /* The header the reader has just checked: "TSRSTATE" | u32 version | u32 flags | u64 unix
     * time, little-endian (stream.h). */
    if (pread(fd, le, sizeof(le), 16) != (ssize_t)sizeof(le)) {
        ret = -EIO;
        set_err(err, "%s: cannot read the header's time", path);
        goto out;
    }
    *taken = 0;
    for (unsigned i = 0; i < 8; i++)
        *taken |= (uint64_t)le[i] << (8 * i);
    ret = parse_config(path, json, c, err);
out:
    free(json);
    stream_reader_destroy(r);
    close(fd);
    return ret;
}

/* ---- Backing chains ---- */

struct chain {
    unsigned n;
    struct block *layer[CHAIN_MAX]; /* [0] the VM's image, [n - 1] the bottom */
};

static void chain_of(struct block *bs, struct chain *c)
{
    c->n = 0;
    while (bs && c->n < CHAIN_MAX) {
        c->layer[c->n++] = bs;
        bs = block_backing(bs);
    }
}

/* ---- Listing ---- */

int snapshot_list(const struct snapshot_vm *vm, struct snapshot_entry **out, unsigned *count,
                  char *err)
{
    const unsigned cap = vm->ndisks * CHAIN_MAX;
    struct snapshot_entry *e = NULL;
    struct file_id *ids = NULL;
    struct snap_config *c = NULL;
    unsigned n = 0;
    int ret = 0;

    *out = NULL;
    *count = 0;
    if (!cap)
        return 0;
    e = calloc(cap, sizeof(*e));
    ids = calloc(cap, sizeof(*ids));
    c = malloc(sizeof(*c));
    if (!e || !ids || !c) {
        ret = -ENOMEM;
        set_err(err, "out of memory");
        goto out;
    }
    for (unsigned d = 0; d < vm->ndisks; d++) {
        struct chain ch;
        int last = -1;

        chain_of(vm->disks[d].bs, &ch);
        /* Bottom up: oldest first. */
        for (unsigned k = ch.n; k-- > 1;) {
            const char *layer = block_path(ch.layer[k]);
            char state[PATH_MAX], abs[PATH_MAX], inner[SNAPSHOT_ERR_LEN];
            struct file_id lid, sid, fid;
            uint64_t taken = 0, bytes = 0;
            unsigned slot, i;

            if (!split_disk_name(layer, state, &slot) || slot != vm->disks[d].slot ||
                !id_of(layer, &lid) || abs_path(state, abs, inner) || !id_of(abs, &sid))
                continue;
            for (i = 0; i < n && !id_eq(&ids[i], &sid); i++)
                ;
            if (i == n) {
                if (read_state(abs, &taken, &bytes, c, inner)) {
                    log_debug("snapshots: %s is not a snapshot's image: %s", layer, inner);
                    continue;
                }
                if (!(c->disks & (1u << slot)) || !id_of(c->frozen[slot], &fid) ||
                    !id_eq(&fid, &lid)) {
                    log_debug("snapshots: %s does not name %s as its disk %u", abs, layer, slot);
                    continue;
                }
                snprintf(e[n].file, sizeof(e[n].file), "%s", abs);
                e[n].taken = taken;
                e[n].bytes = bytes;
                e[n].parent = -2; /* not known yet */
                ids[n] = sid;
                n++;
            }
            e[i].disks |= 1u << slot;
            if (e[i].parent == -2)
                e[i].parent = last;
            last = (int)i;
        }
    }
    for (unsigned i = 0; i < n; i++)
        if (e[i].parent == -2)
            e[i].parent = -1;
    if (n) {
        *out = e;
        *count = n;
        e = NULL;
    }
out:
    free(e);
    free(ids);
    free(c);
    return ret;
}

/* ---- Dependants ---- */

/* Whether the image at `cand` has the file `frozen` as its backing file: 1 yes, 0 no, -errno
 * with err when its header cannot be read (then nobody can tell). */
static int backs_on(const char *cand, const char *format, const struct file_id *frozen, char *err)
{
    char name[PATH_MAX], full[PATH_MAX], fmt[FMT_LEN], berr[BLOCK_ERR_LEN];
    struct file_id bid;
    int ret;

    ret = block_query_backing(cand, format, name, sizeof(name), fmt, sizeof(fmt), berr);
    if (ret < 0) {
        set_err(err, "%s", berr);
        return ret;
    }
    if (!name[0] || !resolve_backing(cand, name, full) || !id_of(full, &bid))
        return 0;
    return id_eq(&bid, frozen);
}

/* Looks at one candidate dependant of `frozen`, the image X.diskN of snapshot `state`: 0 when
 * it is not one (gone, not backed by frozen, or one of `skip`), -EBUSY with err when it is,
 * another -errno with err when that cannot be told. */
static int check_candidate(const char *state, const char *frozen, const struct file_id *fid,
                           const struct file_id *skip, unsigned nskip, const char *cand,
                           const char *format)
{
    char inner[SNAPSHOT_ERR_LEN];
    struct file_id cid;
    struct stat st;
    int ret;

    if (hostfs_stat(cand, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        ret = -errno;
        log_warn("%s: cannot look at %s, listed as a user of %s: %s", state, cand, frozen,
                 strerror(errno));
        return ret;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return 0;
    cid.dev = st.st_dev;
    cid.ino = st.st_ino;
    if (id_eq(&cid, fid))
        return 0;
    for (unsigned i = 0; i < nskip; i++)
        if (id_eq(&cid, &skip[i]))
            return 0;
    ret = backs_on(cand, format, fid, inner);
    if (ret < 0) {
        log_warn("%s: cannot tell whether %s depends on %s: %s", state, cand, frozen, inner);
        return ret;
    }
    return ret ? -EBUSY : 0;
}

/* Finds an image other than those in `skip` whose backing file is `frozen`, the image X.diskN
 * of snapshot `state`: among the paths recorded in X.deps, then the files in frozen's folder
 * that start like a qcow2 image. 0 when there is none; -EBUSY with err naming the first one;
 * another -errno with err when a candidate cannot be read (the delete then stays refused:
 * nobody can tell whether it would lose data). */
static int find_dependant(const char *state, const char *frozen, const struct file_id *fid,
                          const struct file_id *skip, unsigned nskip, char *err)
{
    char deps[PATH_MAX], folder[PATH_MAX], cand[PATH_MAX];
    char *text = NULL;
    unsigned scanned = 0;
    struct dirent *de;
    struct stat st;
    DIR *dir;
    int fd, ret = 0;

    deps_name(state, deps);
    fd = hostfs_open(deps, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 && errno != ENOENT) {
        ret = -errno;
        set_err(err, "%s: cannot read it, so cannot tell what uses %s: %s", deps, frozen,
                strerror(errno));
        return ret;
    }
    if (fd >= 0) {
        ssize_t got = -1;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > DEPS_MAX_BYTES) {
            set_err(err, "%s: not a list of dependants (not a regular file, or over %u bytes)",
                    deps, DEPS_MAX_BYTES);
            close(fd);
            return -EINVAL;
        }
        text = malloc((size_t)st.st_size + 1);
        if (text)
            got = pread(fd, text, (size_t)st.st_size, 0);
        close(fd);
        if (!text || got != st.st_size) {
            free(text);
            set_err(err, "%s: cannot read it, so cannot tell what uses %s", deps, frozen);
            return -EIO;
        }
        text[got] = '\0';
        for (char *line = text, *next; line && ret == 0; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            if (!*line || strlen(line) >= PATH_MAX)
                continue;
            snprintf(cand, sizeof(cand), "%s", line);
            ret = check_candidate(state, frozen, fid, skip, nskip, cand, NULL);
        }
        free(text);
        if (ret)
            goto found;
    }

    /* Images made before the record, or by hand beside the snapshot. */
    folder_of(frozen, folder);
    dir = hostfs_opendir(folder);
    if (!dir) {
        ret = -errno;
        set_err(err, "%s: cannot list the folder of %s: %s", folder, frozen, strerror(errno));
        return ret;
    }
    while (ret == 0 && (de = readdir(dir))) {
        uint8_t magic[4];
        ssize_t got;
        int cfd;

        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (++scanned > SCAN_MAX_FILES) {
            log_warn("%s: more than %d files: looked at the first only", folder, SCAN_MAX_FILES);
            break;
        }
        if (snprintf(cand, sizeof(cand), "%s/%s", folder, de->d_name) >= (int)sizeof(cand) ||
            hostfs_lstat(cand, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        cfd = hostfs_open(cand, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        if (cfd < 0)
            continue;
        got = pread(cfd, magic, sizeof(magic), 0);
        close(cfd);
        if (got == 4 && !memcmp(magic, "QFI\xfb", 4))
            ret = check_candidate(state, frozen, fid, skip, nskip, cand, "qcow2");
    }
    closedir(dir);
    if (!ret)
        return 0;
found:
    if (ret == -EBUSY)
        set_err(err,
                "%s: cannot delete it: its disk image %s is also the backing file of %s (a "
                "linked clone, a restored VM or another branch); delete that first",
                state, frozen, cand);
    else
        set_err(err,
                "%s: cannot delete it: cannot tell whether %s uses %s (%s); move it away "
                "or repair it",
                state, cand, frozen, strerror(-ret));
    return ret;
}

/* ---- Recording dependants ---- */

/* Whether `line` is one of the lines of the file at fd (read from its start). */
static bool deps_lists(int fd, const char *line)
{
    struct stat st;
    bool found = false;
    char *text;
    ssize_t got;

    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > DEPS_MAX_BYTES)
        return false;
    text = malloc((size_t)st.st_size + 1);
    if (!text)
        return false;
    got = pread(fd, text, (size_t)st.st_size, 0);
    if (got > 0) {
        text[got] = '\0';
        for (char *p = text, *next; p && !found; p = next) {
            next = strchr(p, '\n');
            if (next)
                *next++ = '\0';
            found = !strcmp(p, line);
        }
    }
    free(text);
    return found;
}

int snapshot_note_dependant(const char *frozen, const char *overlay)
{
    char state[PATH_MAX], abs[PATH_MAX], line[PATH_MAX + 1], deps[PATH_MAX],
        inner[SNAPSHOT_ERR_LEN];
    struct file_id fid;
    struct stat st;
    unsigned slot;
    size_t len;
    int fd, ret;

    if (!split_disk_name(frozen, state, &slot) || strlen(state) >= PATH_MAX - 32 ||
        hostfs_lstat(state, &st) < 0 || !S_ISREG(st.st_mode) || !id_of(frozen, &fid))
        return 0;
    ret = backs_on(overlay, NULL, &fid, inner);
    if (ret <= 0) {
        if (ret < 0)
            log_warn("%s: not recorded as a user of %s: %s", overlay, frozen, inner);
        return ret;
    }
    ret = abs_path(overlay, abs, inner);
    if (ret == 0 && strchr(abs, '\n'))
        ret = -EINVAL;
    if (ret < 0) {
        log_warn("%s: not recorded as a user of %s: its path cannot be written down", overlay,
                 frozen);
        return ret;
    }
    deps_name(state, deps);
    len = (size_t)snprintf(line, sizeof(line), "%s\n", abs);
    fd = hostfs_open(deps, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0) {
        ret = -errno;
        log_warn("%s: cannot record %s as a user of %s: %s", deps, abs, frozen, strerror(errno));
        return ret;
    }
    ret = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        ret = -EINVAL;
        log_warn("%s: not a regular file: %s not recorded as a user of %s", deps, abs, frozen);
    } else if (!deps_lists(fd, abs)) {
        /* One write of the whole line: O_APPEND keeps concurrent writers' lines whole. */
        ssize_t n = write(fd, line, len);

        if (n != (ssize_t)len || fdatasync(fd) < 0) {
            ret = n < 0 || n == (ssize_t)len ? -errno : -EIO;
            log_warn("%s: cannot record %s as a user of %s: %s", deps, abs, frozen, strerror(-ret));
        }
    }
    close(fd);
    return ret;
}

void snapshot_note_chain(const struct snapshot_vm *vm)
{
    for (unsigned d = 0; d < vm->ndisks; d++) {
        struct block *top = vm->disks[d].bs, *b1 = block_backing(top);
        struct block *b2 = b1 ? block_backing(b1) : NULL;

        if (b1)
            snapshot_note_dependant(block_path(b1), block_path(top));
        if (b2)
            snapshot_note_dependant(block_path(b2), block_path(b1));
    }
}

/* ---- Deleting ---- */

/* One disk of the snapshot being deleted. */
struct disk_plan {
    unsigned slot;
    char frozen[PATH_MAX]; /* X.diskN */
    bool exists;
    struct file_id fid;
    /* In the chain: */
    const struct snapshot_disk *disk; /* the VM's disk in this slot, or NULL */
    struct chain chain;               /* the VM's open images: not to be used once released */
    unsigned k;                       /* frozen is chain.layer[k]; 0: not in the chain */
    char child[PATH_MAX];             /* chain.layer[k - 1]'s path: what frozen replaces */
    char below[PATH_MAX]; /* chain.layer[k + 1]'s path: frozen's backing file; "" none */
    char fmt_frozen[FMT_LEN], fmt_top[FMT_LEN];
    struct block *base, *top; /* frozen (writable) and the child (that layer alone) */
    bool released, merged;
    int lock_fd; /* another branch: frozen, locked while it is removed */
};

/* The checks of an in-chain disk before anything is touched. */
static int check_merge(const char *state, struct disk_plan *p, char *err)
{
    struct block *x = p->chain.layer[p->k], *c = p->chain.layer[p->k - 1];
    struct file_id cid;
    struct stat sx, sc;
    int ret;

    snprintf(p->child, sizeof(p->child), "%s", block_path(c));
    snprintf(p->below, sizeof(p->below), "%s",
             p->k + 1 < p->chain.n ? block_path(p->chain.layer[p->k + 1]) : "");
    snprintf(p->fmt_frozen, sizeof(p->fmt_frozen), "%s", block_format_name(x));
    snprintf(p->fmt_top, sizeof(p->fmt_top), "%s", block_format_name(p->chain.layer[0]));
    if (hostfs_lstat(p->frozen, &sx) < 0 || hostfs_lstat(p->child, &sc) < 0) {
        ret = -errno;
        set_err(err, "%s: cannot look at %s or %s: %s", state, p->frozen, p->child,
                strerror(errno));
        return ret;
    }
    if (!S_ISREG(sx.st_mode) || !S_ISREG(sc.st_mode)) {
        set_err(err,
                "%s: cannot delete it: %s and %s must both be regular files (not symbolic "
                "links): one takes the other's place",
                state, p->frozen, p->child);
        return -EINVAL;
    }
    if (sx.st_nlink > 1) {
        /* The merge writes into it: another name for it would see its content change. */
        set_err(err,
                "%s: cannot delete it: %s has %ju names (hard links); the merge would change "
                "what the others read",
                state, p->frozen, (uintmax_t)sx.st_nlink);
        return -EINVAL;
    }
    if (sx.st_dev != sc.st_dev) {
        set_err(err,
                "%s: cannot delete it: %s and %s, which it must replace, are on different "
                "file systems",
                state, p->frozen, p->child);
        return -EINVAL;
    }
    if (block_length(x) != block_length(c)) {
        set_err(err, "%s: cannot delete it: %s is %" PRIu64 " bytes, %s above it %" PRIu64, state,
                p->frozen, block_length(x), p->child, block_length(c));
        return -EINVAL;
    }
    /* The images above name the child with its format; a frozen image can change format only
     * where nothing does: in the VM's own active layer. */
    if (p->k > 1 && strcmp(p->fmt_frozen, block_format_name(c))) {
        set_err(err,
                "%s: cannot delete it: its disk image %s is %s and %s above it is %s; merging "
                "would change that image's format: delete the newer snapshot first",
                state, p->frozen, p->fmt_frozen, p->child, block_format_name(c));
        return -EINVAL;
    }
    cid.dev = sc.st_dev;
    cid.ino = sc.st_ino;
    return find_dependant(state, p->frozen, &p->fid, &cid, 1, err);
}

/* Stops the VM's disks of the plans, merges each child into its frozen image and puts that in
 * the child's place, reopens the disks. Called after check_merge() passed for every plan.
 *
 * The order makes any interruption (an error, a crash, a power loss) leave every chain
 * readable with the data it had:
 *   1. every image is flushed and opened before anything changes, frozen images writable with
 *      an exclusive lock (so nobody else reads one while its content changes) - a failure
 *      here changes nothing;
 *   2. the state file goes: X cannot be restored from now on (its images are about to
 *      change) and a rerun, finding no state file, finds X.diskN by name in the chain;
 *   3. the child's clusters are copied into X.diskN and flushed: whoever reads the chain
 *      reads the child first, so at every instant it sees the same bytes;
 *   4. rename(X.diskN, child) replaces the child at once with an image of the same content
 *      (the child's clusters over X's, over X's own backing file), and the folder is synced;
 *   5. X.deps goes last. */
static int merge_disks(const struct snapshot_vm *vm, const char *state, bool have_state,
                       struct disk_plan *plans, unsigned np, struct snapshot_delete_result *res,
                       char *err)
{
    char berr[BLOCK_ERR_LEN];
    uint64_t tp;
    int ret;

    ret = vm->stop_io(vm->opaque);
    if (ret < 0) {
        set_err(err, "%s: the VM cannot be paused now (it is resetting or exiting)", state);
        return ret;
    }
    tp = time_now_ns();
    for (unsigned i = 0; i < np; i++) {
        ret = block_release(plans[i].disk->bs);
        plans[i].released = true;
        if (ret < 0) {
            set_err(err, "%s: flushing %s failed: %s; nothing was deleted", state, plans[i].child,
                    strerror(-ret));
            goto reopen;
        }
    }
    for (unsigned i = 0; i < np; i++) {
        struct disk_plan *p = &plans[i];

        /* X.diskN moves into the child's folder: a backing name relative to its own folder
         * becomes absolute first (the same file, so still nothing deleted). */
        ret = snapshot_same_folder(p->frozen, p->child)
                  ? 0
                  : block_anchor_backing(p->frozen, p->fmt_frozen, berr);
        if (ret == 0)
            ret = block_open(p->frozen, p->fmt_frozen, false, &p->base, berr);
        if (ret == -EBUSY) {
            set_err(err,
                    "%s: cannot delete it: another process uses its disk image (a VM running "
                    "on a clone of it or of a newer snapshot?): %s",
                    state, berr);
            goto reopen;
        }
        if (ret == 0)
            ret = block_open_layer(p->child, "qcow2", &p->top, berr);
        if (ret < 0) {
            set_err(err, "%s: cannot delete it: %s; nothing was deleted", state, berr);
            goto reopen;
        }
    }
    if (have_state) {
        if (hostfs_unlink(state) < 0 && errno != ENOENT) {
            ret = -errno;
            set_err(err, "%s: cannot remove it: %s; nothing was deleted", state, strerror(errno));
            goto reopen;
        }
        sync_folder(state);
    }
    for (unsigned i = 0; i < np; i++) {
        struct disk_plan *p = &plans[i];

        ret = block_commit(p->top, p->base, &res->bytes_merged, berr);
        block_close(p->top);
        p->top = NULL;
        /* Flushed by block_commit(); renamed while still open, so still locked. */
        if (ret == 0 && hostfs_rename(p->frozen, p->child) < 0) {
            ret = -errno;
            snprintf(berr, sizeof(berr), "rename: %s", strerror(errno));
        }
        block_close(p->base);
        p->base = NULL;
        if (ret < 0) {
            set_err(err,
                    "%s: merging %s into %s failed: %s; the snapshot's state file is gone, "
                    "its images stay in the chain with the VM's data intact: run the delete "
                    "again to finish",
                    state, p->child, p->frozen, berr);
            goto reopen;
        }
        sync_folder(p->child);
        if (!snapshot_same_folder(p->frozen, p->child))
            sync_folder(p->frozen);
        p->merged = true;
        res->disks++;
        /* The merged image now backs on what X.diskN did, from the child's path. */
        if (p->below[0])
            snapshot_note_dependant(p->below, p->child);
    }
    ret = 0;

reopen:
    for (unsigned i = 0; i < np; i++) {
        struct disk_plan *p = &plans[i];
        const char *fmt = p->merged && p->k == 1 ? p->fmt_frozen : p->fmt_top;
        int r;

        block_close(p->top);
        block_close(p->base);
        p->top = p->base = NULL;
        if (!p->released)
            continue;
        r = block_reopen(p->disk->bs, block_path(p->disk->bs), fmt, false, berr);
        if (r < 0) {
            log_error("%s: the VM cannot reopen its disk: %s", state, berr);
            if (ret == 0) {
                ret = r;
                set_err(err, "%s: merged, but the VM cannot reopen its disk: %s", state, berr);
            }
        } else if (strcmp(fmt, p->fmt_top) && vm->disk_format_changed) {
            vm->disk_format_changed(vm->opaque, p->slot, fmt);
        }
    }
    vm->resume_io(vm->opaque);
    res->paused_ns = time_now_ns() - tp;
    return ret;
}

/* Removes a snapshot on another branch: its images (nothing uses them: checked, and locked
 * meanwhile), then its state file, then X.deps. Images go first so that an interruption
 * leaves the state file naming what is left, and a rerun finishes. */
static int remove_branch(const char *state, bool have_state, struct disk_plan *plans, unsigned np,
                         struct snapshot_delete_result *res, char *err)
{
    char deps[PATH_MAX];
    int ret = 0;

    for (unsigned i = 0; i < np && ret == 0; i++) {
        struct disk_plan *p = &plans[i];

        if (!p->exists)
            continue;
        p->lock_fd =
            hostfs_open(p->frozen, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        if (p->lock_fd < 0 || flock(p->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
            set_err(err, "%s: cannot delete it: %s is in use by another process (%s)", state,
                    p->frozen, strerror(errno));
        }
    }
    for (unsigned i = 0; i < np && ret == 0; i++) {
        if (!plans[i].exists)
            continue;
        if (hostfs_unlink(plans[i].frozen) < 0 && errno != ENOENT) {
            ret = -errno;
            set_err(err, "%s: cannot remove %s: %s", state, plans[i].frozen, strerror(errno));
        } else {
            res->disks++;
        }
    }
    for (unsigned i = 0; i < np; i++)
        if (plans[i].lock_fd >= 0)
            close(plans[i].lock_fd);
    if (ret)
        return ret;
    if (np)
        sync_folder(plans[0].frozen);
    if (have_state && hostfs_unlink(state) < 0 && errno != ENOENT) {
        ret = -errno;
        set_err(err, "%s: cannot remove it: %s", state, strerror(errno));
        return ret;
    }
    deps_name(state, deps);
    hostfs_unlink(deps);
    sync_folder(state);
    return 0;
}

/* The disk of vm in `slot`, or NULL. */
static const struct snapshot_disk *vm_disk(const struct snapshot_vm *vm, unsigned slot)
{
    for (unsigned d = 0; d < vm->ndisks; d++)
        if (vm->disks[d].slot == slot)
            return &vm->disks[d];
    return NULL;
}

int snapshot_delete(const struct snapshot_vm *vm, const char *file,
                    struct snapshot_delete_result *res, char *err)
{
    struct disk_plan *plans = NULL;
    struct snap_config *cfg = NULL;
    char state[PATH_MAX], deps[PATH_MAX];
    unsigned slots = 0, in_chain = 0, np = 0;
    uint64_t t0 = time_now_ns(), taken, bytes;
    bool have_state = false;
    struct stat st;
    int ret;

    memset(res, 0, sizeof(*res));
    if (!file || !*file) {
        set_err(err, "no snapshot file given");
        return -EINVAL;
    }
    if (strchr(file, '\n')) {
        set_err(err, "snapshot file name holds a newline");
        return -EINVAL;
    }
    ret = abs_path(file, state, err);
    if (ret < 0)
        return ret;
    plans = calloc(SNAPSHOT_MAX_DISKS, sizeof(*plans));
    cfg = calloc(1, sizeof(*cfg));
    if (!plans || !cfg) {
        ret = -ENOMEM;
        set_err(err, "out of memory");
        goto out;
    }
    if (hostfs_lstat(state, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            ret = -EINVAL;
            set_err(err, "%s: is a symbolic link; name the snapshot file itself", state);
            goto out;
        }
        ret = read_state(state, &taken, &bytes, cfg, err);
        if (ret < 0) {
            ret = -EINVAL;
            goto out;
        }
        have_state = true;
    } else if (errno != ENOENT) {
        ret = -errno;
        set_err(err, "%s: %s", state, strerror(errno));
        goto out;
    }

    /* Where each possible X.diskN is in the VM's chains. */
    for (unsigned s = 0; s < SNAPSHOT_MAX_DISKS; s++) {
        struct disk_plan *p = &plans[s];

        p->slot = s;
        p->lock_fd = -1;
        disk_name(state, s, p->frozen);
        p->exists = id_of(p->frozen, &p->fid);
        if (have_state && (cfg->disks & (1u << s))) {
            struct file_id named;

            if (strcmp(cfg->frozen[s], p->frozen) &&
                !(p->exists && id_of(cfg->frozen[s], &named) && id_eq(&named, &p->fid))) {
                ret = -EINVAL;
                set_err(err,
                        "%s: its config names %s as disk %u's image, not %s: was it renamed? "
                        "(restore needs the names it holds)",
                        state, cfg->frozen[s], s, p->frozen);
                goto out;
            }
            slots |= 1u << s;
        }
        if (!p->exists)
            continue;
        for (unsigned d = 0; d < vm->ndisks; d++) {
            struct chain ch;

            chain_of(vm->disks[d].bs, &ch);
            for (unsigned k = 0; k < ch.n; k++) {
                struct file_id lid;

                if (!id_of(block_path(ch.layer[k]), &lid) || !id_eq(&lid, &p->fid))
                    continue;
                if (k == 0) {
                    ret = -EINVAL;
                    set_err(err, "%s: its image %s is this VM's running disk (slot %u)", state,
                            p->frozen, vm->disks[d].slot);
                    goto out;
                }
                if (vm->disks[d].slot != s) {
                    ret = -EINVAL;
                    set_err(err, "%s: its image %s (disk %u) backs this VM's disk in slot %u",
                            state, p->frozen, s, vm->disks[d].slot);
                    goto out;
                }
                p->disk = &vm->disks[d];
                p->chain = ch;
                p->k = k;
                in_chain |= 1u << s;
            }
        }
    }
    if (!have_state) {
        bool any_image = false;

        slots = in_chain;
        for (unsigned s = 0; s < SNAPSHOT_MAX_DISKS; s++)
            any_image |= plans[s].exists;
        deps_name(state, deps);
        if (!any_image && hostfs_lstat(deps, &st) == 0 && S_ISREG(st.st_mode)) {
            /* All that is left of a delete interrupted after its last rename. */
            if (hostfs_unlink(deps) < 0) {
                ret = -errno;
                set_err(err, "%s: cannot remove it: %s", deps, strerror(errno));
                goto out;
            }
            res->in_chain = true;
            ret = 0;
            goto out;
        }
        if (!slots && any_image) {
            /* Without the state file nobody can tell whose images these are. */
            ret = -ENOENT;
            set_err(err,
                    "%s: no such snapshot file; images named %s.diskN exist but are in no "
                    "backing chain of this VM: remove them by hand if nothing uses them",
                    state, state);
            goto out;
        }
        if (!slots) {
            ret = -ENOENT;
            set_err(err,
                    "%s: no such snapshot: the file does not exist and no disk of this VM has "
                    "%s.diskN in its backing chain",
                    state, state);
            goto out;
        }
    }
    if (!slots) {
        if (vm->ndisks) {
            ret = -EINVAL;
            set_err(err, "%s: not a snapshot of this VM: it froze no disk, and this VM has %u",
                    state, vm->ndisks);
            goto out;
        }
        /* A diskless VM's snapshot stands alone: it is only its state file. */
        if (hostfs_unlink(state) < 0) {
            ret = -errno;
            set_err(err, "%s: cannot remove it: %s", state, strerror(errno));
            goto out;
        }
        deps_name(state, deps);
        hostfs_unlink(deps);
        sync_folder(state);
        ret = 0;
        goto out;
    }
    for (unsigned s = 0; s < SNAPSHOT_MAX_DISKS; s++) {
        if ((slots & (1u << s)) && !vm_disk(vm, s)) {
            ret = -EINVAL;
            set_err(err,
                    "%s: not a snapshot of this VM: it froze a disk in slot %u, where this VM "
                    "has no writable disk",
                    state, s);
            goto out;
        }
    }
    for (unsigned s = 0; s < SNAPSHOT_MAX_DISKS && in_chain; s++) {
        if ((slots & (1u << s)) && !plans[s].exists) {
            ret = -EINVAL;
            set_err(err,
                    "%s: its disk %u image %s is missing, while its other images are in "
                    "this VM's chain",
                    state, s, plans[s].frozen);
            goto out;
        }
    }
    if (in_chain && in_chain != slots) {
        ret = -EINVAL;
        set_err(err,
                "%s: only some of its disk images are in this VM's backing chains (slots 0x%x "
                "of 0x%x): refusing to split it",
                state, in_chain, slots);
        goto out;
    }

    /* Compact the plans to the snapshot's disks. */
    for (unsigned s = 0; s < SNAPSHOT_MAX_DISKS; s++)
        if (slots & (1u << s))
            plans[np++] = plans[s];

    if (!in_chain) {
        /* Another branch: only one of this VM's, and only if nothing uses it. */
        for (unsigned i = 0; i < np; i++) {
            struct disk_plan *p = &plans[i];
            const struct snapshot_disk *d = vm_disk(vm, p->slot);
            struct file_id of, mine;

            if (!id_of(cfg->of[p->slot], &of) || !id_of(block_path(d->bs), &mine) ||
                !id_eq(&of, &mine)) {
                ret = -EINVAL;
                set_err(err,
                        "%s: not a snapshot of this VM: it froze %s as disk %u, this VM's "
                        "disk there is %s",
                        state, cfg->of[p->slot], p->slot, block_path(d->bs));
                goto out;
            }
            if (!p->exists)
                continue;
            if (hostfs_lstat(p->frozen, &st) < 0 || !S_ISREG(st.st_mode)) {
                ret = -EINVAL;
                set_err(err, "%s: cannot delete it: %s is not a regular file", state, p->frozen);
                goto out;
            }
            ret = find_dependant(state, p->frozen, &p->fid, NULL, 0, err);
            if (ret < 0)
                goto out;
        }
        ret = remove_branch(state, have_state, plans, np, res, err);
        goto out;
    }

    res->in_chain = true;
    for (unsigned i = 0; i < np; i++) {
        ret = check_merge(state, &plans[i], err);
        if (ret < 0)
            goto out;
    }
    ret = merge_disks(vm, state, have_state, plans, np, res, err);
    if (ret == 0) {
        deps_name(state, deps);
        hostfs_unlink(deps);
        sync_folder(state);
    }
out:
    free(plans);
    free(cfg);
    res->total_ns = time_now_ns() - t0;
    return ret;
}
