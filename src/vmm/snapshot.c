/* External snapshots (snapshot.h): taking one (the target checked, the disks frozen, the state
 * file written), and listing and deleting them: backing chains walked through the VM's open
 * images, state file headers, the X.deps records, and the merge of one layer into the snapshot
 * image below it. */
#include "vmm/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
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
#include "hw/guest_mem.h"
#include "hw/virtio/vdev.h"
#include "machine/virt.h"
#include "vmm/stream.h"
#include "vmm/vmconfig.h"
#include "vmm/vmstate_int.h"

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

/* Parses the machine config of state file `path` (the document vm_snapshot() writes,
 * src/vmm/vmconfig.h): which disks were frozen, into which image, from which path. */
static int parse_config(const char *path, const char *json, struct snap_config *c, char *err)
{
    struct vmconfig vc;
    char what[PATH_MAX + 32], verr[VMCONFIG_ERR_LEN];
    int ret = -EINVAL;

    memset(c, 0, sizeof(*c));
    snprintf(what, sizeof(what), "%s: machine config", path);
    if (vmconfig_parse(json, strlen(json), what, &vc, verr)) {
        set_err(err, "%s", verr);
        return -EINVAL;
    }
    for (unsigned i = 0; i < vc.ndevices; i++) {
        json_t *conf = vc.devices[i].conf;
        const char *of = json_string_value(json_object_get(conf, "snapshot_of"));
        const char *frozen = json_string_value(json_object_get(conf, "path"));

        if (strcmp(vc.devices[i].type->name, "disk") || !of)
            continue; /* a read-only disk: not frozen */
        if (i >= SNAPSHOT_MAX_DISKS || strlen(of) >= PATH_MAX || !frozen ||
            strlen(frozen) >= PATH_MAX) {
            set_err(err, "%s: machine config: disk %u names no image, or one too long", path, i);
            goto out;
        }
        strcpy(c->of[i], of);
        strcpy(c->frozen[i], frozen);
        c->disks |= 1u << i;
    }
    ret = 0;
out:
    vmconfig_free(&vc);
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
    struct virt_disk_info layer[CHAIN_MAX]; /* [0] the VM's image, [n - 1] the bottom */
};

/* Disk `slot`'s chain as the VM has it open now; an empty chain when the VM cannot say. */
static void chain_of(const struct snapshot_vm *vm, unsigned slot, struct chain *c)
{
    if (vm->chain(vm->opaque, slot, c->layer, CHAIN_MAX, &c->n) < 0)
        c->n = 0;
}

/* ---- Listing ---- */

int snapshot_list(const struct snapshot_vm *vm, struct snapshot_entry **out, unsigned *count,
                  char *err)
{
    const unsigned cap = vm->ndisks * CHAIN_MAX;
    struct snapshot_entry *e = NULL;
    struct file_id *ids = NULL;
    struct snap_config *c = NULL;
    struct chain *ch = NULL;
    unsigned n = 0;
    int ret = 0;

    *out = NULL;
    *count = 0;
    if (!cap)
        return 0;
    e = calloc(cap, sizeof(*e));
    ids = calloc(cap, sizeof(*ids));
    c = malloc(sizeof(*c));
    ch = malloc(sizeof(*ch));
    if (!e || !ids || !c || !ch) {
        ret = -ENOMEM;
        set_err(err, "out of memory");
        goto out;
    }
    for (unsigned d = 0; d < vm->ndisks; d++) {
        int last = -1;

        chain_of(vm, vm->disks[d].slot, ch);
        /* Bottom up: oldest first. */
        for (unsigned k = ch->n; k-- > 1;) {
            const char *layer = ch->layer[k].path;
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
    free(ch);
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
    struct chain *ch = malloc(sizeof(*ch));

    if (!ch) {
        log_warn("snapshots: out of memory: the new snapshot's users are not recorded");
        return;
    }
    for (unsigned d = 0; d < vm->ndisks; d++) {
        chain_of(vm, vm->disks[d].slot, ch);
        if (ch->n > 1)
            snapshot_note_dependant(ch->layer[1].path, ch->layer[0].path);
        if (ch->n > 2)
            snapshot_note_dependant(ch->layer[2].path, ch->layer[1].path);
    }
    free(ch);
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
    struct chain chain;               /* the VM's images when the delete began */
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
    const struct virt_disk_info *x = &p->chain.layer[p->k], *c = &p->chain.layer[p->k - 1];
    struct file_id cid;
    struct stat sx, sc;
    int ret;

    snprintf(p->child, sizeof(p->child), "%s", c->path);
    snprintf(p->below, sizeof(p->below), "%s",
             p->k + 1 < p->chain.n ? p->chain.layer[p->k + 1].path : "");
    snprintf(p->fmt_frozen, sizeof(p->fmt_frozen), "%s", x->format);
    snprintf(p->fmt_top, sizeof(p->fmt_top), "%s", p->chain.layer[0].format);
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
    if (x->length != c->length) {
        set_err(err, "%s: cannot delete it: %s is %" PRIu64 " bytes, %s above it %" PRIu64, state,
                p->frozen, x->length, p->child, c->length);
        return -EINVAL;
    }
    /* The images above name the child with its format; a frozen image can change format only
     * where nothing does: in the VM's own active layer. */
    if (p->k > 1 && strcmp(p->fmt_frozen, c->format)) {
        set_err(err,
                "%s: cannot delete it: its disk image %s is %s and %s above it is %s; merging "
                "would change that image's format: delete the newer snapshot first",
                state, p->frozen, p->fmt_frozen, p->child, c->format);
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
        ret = vm->release(vm->opaque, plans[i].slot);
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
        r = vm->reopen(vm->opaque, p->slot, p->chain.layer[0].path, fmt, berr);
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
    struct chain *ch = NULL;
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
    ch = malloc(sizeof(*ch));
    if (!plans || !cfg || !ch) {
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
            chain_of(vm, vm->disks[d].slot, ch);
            for (unsigned k = 0; k < ch->n; k++) {
                struct file_id lid;

                if (!id_of(ch->layer[k].path, &lid) || !id_eq(&lid, &p->fid))
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
                p->chain = *ch;
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
            struct file_id of, mine;

            chain_of(vm, p->slot, &p->chain);
            if (!p->chain.n || !id_of(cfg->of[p->slot], &of) ||
                !id_of(p->chain.layer[0].path, &mine) || !id_eq(&of, &mine)) {
                ret = -EINVAL;
                set_err(err,
                        "%s: not a snapshot of this VM: it froze %s as disk %u, this VM's "
                        "disk there is %s",
                        state, cfg->of[p->slot], p->slot,
                        p->chain.n ? p->chain.layer[0].path : "unknown");
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
    free(ch);
    res->total_ns = time_now_ns() - t0;
    return ret;
}

/* ---- Taking a snapshot ---- */

#define RAM_SLICE_WORDS 256 /* bitmap words per progress step: 16384 pages, 64 MiB */

struct frozen_disk {
    unsigned slot;
    char live[PATH_MAX];   /* the disk's path, where the VM goes on in an overlay */
    char frozen[PATH_MAX]; /* where the image as of the snapshot now lives */
    char fmt[FMT_LEN];
    bool moved; /* the image is at frozen, an overlay at live */
};

/* rename() that never replaces: a snapshot must not destroy what already has the name. Falls
 * back to a check and rename() on a file system without RENAME_NOREPLACE. */
static int rename_new(const char *from, const char *to)
{
    struct stat st;

    int ret = hostfs_rename_noreplace(from, to);

    if (ret != -EINVAL && ret != -ENOSYS)
        return ret;
    if (hostfs_lstat(to, &st) == 0)
        return -EEXIST;
    return hostfs_rename(from, to);
}

/* Whether id is the file of an image in any disk's chain; *slot says whose. */
static bool in_chains(struct virt_machine *m, const struct file_id *id, unsigned *slot)
{
    struct chain *ch = malloc(sizeof(*ch));
    bool found = false;

    if (!ch)
        return false;
    for (unsigned s = 0; s < virt_get_config(m)->ndevices && !found; s++) {
        struct file_id lid;

        if (virt_disk_chain(m, s, ch->layer, CHAIN_MAX, &ch->n))
            continue;
        for (unsigned i = 0; i < ch->n && !found; i++)
            if (id_of(ch->layer[i].path, &lid) && id_eq(&lid, id)) {
                found = true;
                *slot = s;
            }
    }
    free(ch);
    return found;
}

/* Refuses a file the snapshot would create when anything has its name: an image of the VM
 * (it would be destroyed), a folder, another file. */
static int check_free(struct virt_machine *m, const char *shown, const char *path, char *err)
{
    struct file_id id;
    struct stat st;
    unsigned slot = 0;

    if (hostfs_lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        set_err(err, "%s: cannot look at it: %s", path, strerror(errno));
        return -errno;
    }
    if (id_of(path, &id) && in_chains(m, &id, &slot))
        set_err(err,
                "%s: is an image of the VM's disk %u (or one it is backed by); a snapshot there "
                "would destroy the disk: choose another name",
                path, slot);
    else if (S_ISDIR(st.st_mode))
        set_err(err, "%s: is a folder; name a new file for the snapshot", shown);
    else
        set_err(err,
                "%s: exists; choose a new name, or delete the old snapshot first "
                "(tessera vm snapshot-delete)",
                path);
    return -EEXIST;
}

int snapshot_check_target(struct virt_machine *m, const char *path, char abs[PATH_MAX], char *err)
{
    char dir[PATH_MAX], base[PATH_MAX], name[PATH_MAX];
    size_t len = strlen(path);
    struct file_id id;
    unsigned slot;

    if (!len) {
        set_err(err, "the snapshot's file name is empty");
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f) {
            set_err(err,
                    "the snapshot's file name holds a control character (byte 0x%02x at offset "
                    "%zu); such a name could be made but never listed or deleted",
                    (unsigned char)path[i], i);
            return -EINVAL;
        }
    }
    if (path[len - 1] == '/') {
        set_err(err, "%s: ends in '/'; a snapshot is a file: name it without the slash", path);
        return -EINVAL;
    }
    if (len >= PATH_MAX - 32) {
        set_err(err, "%.64s...: path too long", path);
        return -ENAMETOOLONG;
    }
    memcpy(dir, path, len + 1);
    memcpy(base, path, len + 1);
    if (!strcmp(basename(base), ".") || !strcmp(basename(base), "..")) {
        set_err(err, "%s: names a folder; name a new file for the snapshot", path);
        return -EEXIST;
    }
    if (hostfs_realpath(dirname(dir), abs) < 0) {
        set_err(err, "%s: its folder does not exist: %s", path, strerror(errno));
        return -ENOENT;
    }
    memcpy(base, path, len + 1);
    if (!path_fmt(name, "%s/%s", strcmp(abs, "/") ? abs : "", basename(base)) ||
        strlen(name) >= PATH_MAX - 32) {
        set_err(err, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    memcpy(abs, name, strlen(name) + 1);
    if (check_free(m, path, abs, err))
        return -EEXIST;
    for (unsigned s = 0; s < virt_get_config(m)->ndevices; s++) {
        struct virt_disk_info info;
        int ret;

        if (virt_disk_info(m, s, &info) || info.readonly)
            continue;
        disk_name(abs, s, name);
        ret = check_free(m, name, name, err);
        if (ret)
            return ret;
    }
    /* FILE.part is where the state is written first; a leftover of a failed snapshot is
     * replaced, but never an image of the VM or something that is not a plain file. */
    path_fmt(name, "%s.part", abs);
    if (id_of(name, &id) && in_chains(m, &id, &slot)) {
        set_err(err, "%s: is an image of the VM's disk %u; choose another snapshot name", name,
                slot);
        return -EEXIST;
    }
    return 0;
}

/* Where the writable disk in `f->slot` will be frozen (f->frozen); nothing is touched yet. */
static int plan_freeze(const struct virt_disk_info *info, const char *snap_abs,
                       struct frozen_disk *f, char *err)
{
    snprintf(f->live, sizeof(f->live), "%s", info->path);
    snprintf(f->fmt, sizeof(f->fmt), "%s", info->format);
    if (!path_fmt(f->frozen, "%s.disk%u", snap_abs, f->slot)) {
        set_err(err, "%s: path too long", snap_abs);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* Puts the disk aside as f->frozen and continues the VM on a new overlay at its old path.
 * Device quiesced. On failure everything is as before. */
static int freeze_disk(struct virt_machine *m, struct frozen_disk *f, char *err)
{
    char berr[BLOCK_ERR_LEN];
    int ret;

    ret = virt_disk_release(m, f->slot);
    if (ret < 0) {
        set_err(err, "%s: flush before the snapshot failed: %s", f->live, strerror(-ret));
        goto reopen_live;
    }
    /* A backing name relative to the image's folder would break in the snapshot's folder:
     * it becomes absolute first (the same file, so nothing to undo on failure). */
    if (!snapshot_same_folder(f->live, f->frozen)) {
        ret = block_anchor_backing(f->live, f->fmt, berr);
        if (ret < 0) {
            set_err(err, "%s: %s", f->live, berr);
            goto reopen_live;
        }
    }
    ret = rename_new(f->live, f->frozen);
    if (ret < 0) {
        set_err(err,
                "%s: cannot move it to %s (%s); the snapshot file must be on the disk's "
                "file system",
                f->live, f->frozen, strerror(-ret));
        goto reopen_live;
    }
    ret = block_create_qcow2(f->live, 0, 0, f->frozen, f->fmt, berr);
    if (ret == 0)
        ret = virt_disk_reopen(m, f->slot, f->live, "qcow2", berr);
    if (ret < 0) {
        set_err(err, "%s: cannot start the overlay: %s", f->live, berr);
        hostfs_unlink(f->live);
        if (hostfs_rename(f->frozen, f->live) < 0)
            log_error("%s: cannot move the disk back from %s: %s", f->live, f->frozen,
                      strerror(errno));
        goto reopen_live;
    }
    /* The disk's config names what it runs on now: a qcow2 overlay at its old path. */
    if (vmconfig_machine_set(m, f->slot, "path", json_string(f->live), err) ||
        vmconfig_machine_set(m, f->slot, "format", json_string("qcow2"), err))
        log_error("disk %u: %s", f->slot, err);
    f->moved = true;
    return 0;

reopen_live:
    if (virt_disk_reopen(m, f->slot, f->live, f->fmt, berr) < 0)
        log_error("%s: cannot reopen the disk after a failed snapshot: %s", f->live, berr);
    return ret;
}

/* Undoes freeze_disk() while the guest is still stopped (it wrote nothing to the overlay):
 * the overlay goes, the image comes back to its path, the device reopens it. */
static void thaw_disk(struct virt_machine *m, struct frozen_disk *f)
{
    char berr[BLOCK_ERR_LEN];

    if (!f->moved)
        return;
    if (virt_disk_release(m, f->slot) < 0)
        log_warn("%s: flushing the overlay of a failed snapshot failed", f->live);
    if (hostfs_unlink(f->live) < 0 || hostfs_rename(f->frozen, f->live) < 0) {
        log_error("%s: cannot move the disk back from %s (%s); the VM goes on in the overlay",
                  f->live, f->frozen, strerror(errno));
        if (virt_disk_reopen(m, f->slot, f->live, "qcow2", berr) < 0)
            log_error("%s: cannot reopen the overlay: %s", f->live, berr);
        return;
    }
    if (virt_disk_reopen(m, f->slot, f->live, f->fmt, berr) < 0)
        log_error("%s: cannot reopen the disk after a failed snapshot: %s", f->live, berr);
    if (vmconfig_machine_set(m, f->slot, "format", json_string(f->fmt), berr))
        log_error("disk %u: %s", f->slot, berr);
    f->moved = false;
}

struct frozen_set {
    const struct frozen_disk *f;
    unsigned n;
};

/* The snapshot header's document: frozen disks point at their frozen image and say where they
 * were ("snapshot_of"). */
static int snapshot_edit(struct vmconfig *vc, void *opaque, char *err)
{
    const struct frozen_set *set = opaque;

    for (unsigned i = 0; i < set->n; i++) {
        const struct frozen_disk *f = &set->f[i];

        if (conf_set_str(vc, f->slot, "path", f->frozen, err) ||
            conf_set_str(vc, f->slot, "format", f->fmt, err) ||
            conf_set_str(vc, f->slot, "snapshot_of", f->live, err))
            return -EINVAL;
    }
    return 0;
}

static void progress(const struct snapshot_progress *p, const char *phase,
                     const struct snapshot_create_stats *st, uint64_t pages_total,
                     const struct stream_writer *w)
{
    if (p && p->report)
        p->report(p->opaque, phase, st->ram_pages, pages_total, w ? stream_bytes_written(w) : 0);
}

/* The pre-copy pass: the pages in bits, a slice at a time (each slice a RAM record, as a
 * migration's rounds are), reporting progress after each. 0 or -EIO. */
static int write_ram_slices(struct virt_machine *m, struct stream_writer *w, const uint64_t *bits,
                            size_t words, uint64_t total, struct snapshot_create_stats *st,
                            const struct snapshot_progress *p)
{
    uint64_t *slice = calloc(words, sizeof(*slice));

    if (!slice)
        return -ENOMEM;
    for (size_t i = 0; i < words; i += RAM_SLICE_WORDS) {
        size_t n = words - i < RAM_SLICE_WORDS ? words - i : RAM_SLICE_WORDS;

        if (i)
            memset(slice + i - RAM_SLICE_WORDS, 0, RAM_SLICE_WORDS * sizeof(*slice));
        memcpy(slice + i, bits + i, n * sizeof(*slice));
        if (stream_write_ram(w, virt_ram(m), slice, &st->ram_pages, &st->zero_pages)) {
            free(slice);
            return -EIO;
        }
        progress(p, "copying", st, total, w);
    }
    free(slice);
    return 0;
}

int snapshot_create(struct virt_machine *m, const char *path, const struct snapshot_progress *p,
                    struct snapshot_create_stats *st, char *err)
{
    struct frozen_disk *disks = calloc(VIRT_VIRTIO_SLOTS, sizeof(*disks));
    struct stream_writer *w = NULL;
    char tmp[PATH_MAX], abs[PATH_MAX];
    uint64_t t0 = time_now_ns(), tp = 0, *bits = NULL, total = 0;
    size_t words = (size_t)((virt_ram(m)->size / 4096 + 63) / 64);
    unsigned nd = 0;
    bool was_paused = false, paused = false, quiesced = false, tmp_made = false;
    char *json = NULL;
    int fd = -1, ret;

    memset(st, 0, sizeof(*st));
    if (!disks) {
        set_err(err, "out of memory");
        return -ENOMEM;
    }
    /* Everything that can be refused is refused here, before any file is touched. */
    ret = snapshot_check_target(m, path, abs, err);
    if (ret)
        goto out;
    for (unsigned i = 0; i < virt_get_config(m)->ndevices; i++) {
        struct virt_disk_info info;

        if (virt_disk_info(m, i, &info) || info.readonly)
            continue;
        disks[nd].slot = i;
        ret = plan_freeze(&info, abs, &disks[nd], err);
        if (ret)
            goto out;
        nd++;
    }
    path_fmt(tmp, "%s.part", abs);
    fd = hostfs_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        ret = -errno;
        set_err(err, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    tmp_made = true;
    bits = calloc(words, sizeof(*bits));
    ret = bits ? stream_writer_create(fd, path, 1, &w) : -ENOMEM;
    if (ret) {
        set_err(err, "out of memory");
        goto out;
    }
    json = header_config(m, snapshot_edit, &(struct frozen_set){disks, nd}, err);
    if (!json) {
        ret = -EINVAL;
        goto out;
    }
    if (stream_write_header(w, json, 0)) {
        ret = -EIO;
        set_err(err, "%s: cannot write the header", path);
        goto out;
    }

    /* Pre-copy while the guest runs, then a short stop for what it dirtied meanwhile, the
     * disks and the devices: the pause is what a user notices, not the file's size. */
    ret = virt_pause(m);
    was_paused = ret == -EALREADY;
    if (ret && !was_paused) {
        set_err(err, "the VM cannot be paused now (it is resetting or exiting)");
        goto out;
    }
    paused = true;
    virt_dirty_log(m, true);
    total = virt_harvest_dirty(m, bits);
    if (!was_paused) {
        virt_resume(m);
        paused = false;
    }
    progress(p, "copying", st, total, w);
    ret = write_ram_slices(m, w, bits, words, total, st, p);
    if (ret == -ENOMEM) {
        set_err(err, "out of memory");
        goto out;
    }
    if (ret || stream_flush(w))
        goto io_error;
    /* The bulk reaches the disk while the guest still runs; the stop syncs only the rest. */
    if (fdatasync(fd) < 0) {
        ret = -errno;
        set_err(err, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    if (!was_paused) {
        ret = virt_pause(m);
        if (ret) {
            set_err(err, "the VM cannot be paused now (it is resetting or exiting)");
            goto out;
        }
        paused = true;
    }
    progress(p, "stopped", st, total, w);
    tp = time_now_ns();
    virt_quiesce(m);
    quiesced = true;
    memset(bits, 0, words * sizeof(*bits)); /* the pre-copy pass is written */
    for (unsigned i = 0; i < nd; i++) {
        ret = freeze_disk(m, &disks[i], err);
        if (ret)
            goto out;
    }
    if (write_stopped_state(m, w, bits))
        goto io_error;
    /* Complete before the guest goes on, so that a failure can still put the disks back. */
    if (fsync(fd) < 0 || (ret = rename_new(tmp, abs)) < 0) {
        ret = ret < 0 ? ret : -errno;
        set_err(err, "%s: cannot complete: %s", path, strerror(-ret));
        goto out;
    }
    tmp_made = false;
    sync_folder(abs);
    st->bytes = stream_bytes_written(w);
    st->disks = nd;
    ret = 0;
    goto out;

io_error:
    ret = -EIO;
    set_err(err, "%s", stream_writer_error(w) ? stream_writer_error(w) : "write failed");
out:
    /* A failure puts every disk back where it was, in reverse order, while the guest is still
     * stopped: it never wrote to an overlay that now goes. */
    for (unsigned i = nd; ret && i-- > 0;)
        thaw_disk(m, &disks[i]);
    virt_dirty_log(m, false);
    if (quiesced)
        virt_unquiesce(m);
    if (paused && !was_paused)
        virt_resume(m);
    if (tp)
        st->paused_ns = time_now_ns() - tp;
    if (tmp_made)
        hostfs_unlink(tmp);
    if (ret == 0)
        progress(p, "done", st, total, w);
    stream_writer_destroy(w);
    free(json);
    free(bits);
    free(disks);
    if (fd >= 0)
        close(fd);
    st->total_ns = time_now_ns() - t0;
    return ret;
}
