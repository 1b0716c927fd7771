/* Snapshot list and delete without a VM: a fake VM whose disks are real images in a temporary
 * folder, snapshots taken the way snapshot_create() takes them (the image moves to FILE.diskN, a
 * qcow2 overlay takes its place, a state file names them), restores and clones made the way
 * restore_disk() makes them. Checked: the list (order, parents, sizes); deleting the middle,
 * oldest and newest of base -> A -> B -> C -> top with every byte of the disk the VM sees, and
 * of the snapshots that stay, the same before and after; the VM's disk writable afterwards;
 * a linked clone, an unrecorded overlay beside the snapshot and another branch making a
 * delete refuse with nothing changed (every file's name and content compared); another
 * branch's snapshot removed; a state file gone but its images in the chain (a rerun after a
 * crash); raw original disks; two disks; a diskless VM; and hostile input: garbage, truncated
 * and foreign headers, symbolic links, FIFOs, long paths, another VM's snapshot.
 * Then snapshot_create() on a real one-hart machine looping in its firmware, with a qcow2 disk:
 * the machine's disk view; a snapshot; and the targets refused with nothing changed (the same
 * FILE twice, the VM's disk, an image below it, a stray FILE.disk0, control characters, a
 * trailing slash, a folder, a missing folder); a failure after the disk is frozen undone. */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "base/dirty.h"
#include "base/log.h"
#include "block/block.h"
#include "machine/virt.h"
#include "test_disk.h"
#include "vmm/snapshot.h"
#include "vmm/stream.h"

#define DISK_SIZE (4 * MiB + 3 * 512)

/* snprintf() for paths and texts that fit by construction (the folder is short). */
static void sfmt(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sfmt(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

static void tpath(char *out, const char *fmt, const char *name)
{
    sfmt(out, PATH_MAX, fmt, tmpdir, name);
}

/* ---- The fake VM ---- */

struct fake_vm {
    struct snapshot_vm vm;
    struct block *bs[SNAPSHOT_MAX_DISKS]; /* the images the VM has open, as vm.disks */
    char live[SNAPSHOT_MAX_DISKS][PATH_MAX];
    int stops, resumes;
    bool refuse_stop;
    char changed_fmt[16];
};

static int fake_stop(void *opaque)
{
    struct fake_vm *f = opaque;

    if (f->refuse_stop)
        return -EBUSY;
    f->stops++;
    return 0;
}

static void fake_resume(void *opaque)
{
    ((struct fake_vm *)opaque)->resumes++;
}

/* The open image of disk `slot`, as a machine's device holds it. */
static struct block *fake_disk(struct fake_vm *f, unsigned slot)
{
    for (unsigned d = 0; d < f->vm.ndisks; d++)
        if (f->vm.disks[d].slot == slot)
            return f->bs[d];
    return NULL;
}

static int fake_chain(void *opaque, unsigned slot, struct virt_disk_info *layers, unsigned max,
                      unsigned *n)
{
    struct block *bs = fake_disk(opaque, slot);

    *n = 0;
    if (!bs)
        return -ENODEV;
    for (; bs && *n < max; bs = block_backing(bs), (*n)++) {
        memset(&layers[*n], 0, sizeof(layers[*n]));
        layers[*n].slot = slot;
        layers[*n].length = block_length(bs);
        sfmt(layers[*n].path, PATH_MAX, "%s", block_path(bs));
        sfmt(layers[*n].format, sizeof(layers[*n].format), "%s", block_format_name(bs));
    }
    return 0;
}

static int fake_release(void *opaque, unsigned slot)
{
    struct block *bs = fake_disk(opaque, slot);

    return bs ? block_release(bs) : -ENODEV;
}

static int fake_reopen(void *opaque, unsigned slot, const char *path, const char *format, char *err)
{
    struct block *bs = fake_disk(opaque, slot);

    return bs ? block_reopen(bs, path, format, false, err) : -ENODEV;
}

static void fake_format(void *opaque, unsigned slot, const char *format)
{
    sfmt(((struct fake_vm *)opaque)->changed_fmt, 16, "%s", format);
}

static void vm_init(struct fake_vm *f)
{
    memset(f, 0, sizeof(*f));
    f->vm.chain = fake_chain;
    f->vm.stop_io = fake_stop;
    f->vm.resume_io = fake_resume;
    f->vm.release = fake_release;
    f->vm.reopen = fake_reopen;
    f->vm.disk_format_changed = fake_format;
    f->vm.opaque = f;
}

/* Adds disk `slot`: the image at `path`, opened writable as a VM's disk is. */
static bool vm_add_disk(struct fake_vm *f, unsigned slot, const char *path, const char *fmt)
{
    char err[BLOCK_ERR_LEN];
    struct snapshot_disk *d = &f->vm.disks[f->vm.ndisks];

    if (block_open(path, fmt, false, &f->bs[f->vm.ndisks], err)) {
        printf("open %s: %s\n", path, err);
        return false;
    }
    d->slot = slot;
    sfmt(f->live[f->vm.ndisks], PATH_MAX, "%s", path);
    f->vm.ndisks++;
    return true;
}

/* A VM whose disk 0 is a new qcow2 image at `live`: DISK_SIZE bytes of its own, or an overlay
 * of `backing` (a name relative to live's folder). */
static bool vm_on_new_disk(struct fake_vm *f, const char *live, const char *backing)
{
    char err[BLOCK_ERR_LEN] = "";

    CHECK(block_create_qcow2(live, backing ? 0 : DISK_SIZE, 0, backing, backing ? "qcow2" : NULL,
                             err) == 0 ||
          !printf("%s\n", err));
    vm_init(f);
    return vm_add_disk(f, 0, live, "qcow2");
}

static void vm_close(struct fake_vm *f)
{
    for (unsigned d = 0; d < f->vm.ndisks; d++)
        block_close(f->bs[d]);
    f->vm.ndisks = 0;
}

static void put_check(FILE *fp, uint32_t *crc)
{
    uint8_t le[4];

    for (int i = 0; i < 4; i++)
        le[i] = (uint8_t)(*crc >> (8 * i));
    fwrite(le, 1, 4, fp);
    *crc = (uint32_t)crc32(*crc, le, 4);
}

/* A state file as stream.h describes it: the header (with `json`) and the end record, each
 * closed by the CRC-32 of every byte before it. */
static void write_state(const char *path, const char *json, uint32_t version)
{
    uint8_t hdr[28];
    uint32_t n = (uint32_t)strlen(json), crc;
    uint64_t t = (uint64_t)time(NULL);
    FILE *fp = fopen(path, "wb");

    memcpy(hdr, "TSRSTATE", 8);
    for (int i = 0; i < 4; i++) {
        hdr[8 + i] = (uint8_t)(version >> (8 * i));
        hdr[12 + i] = 0;
        hdr[24 + i] = (uint8_t)(n >> (8 * i));
    }
    for (int i = 0; i < 8; i++)
        hdr[16 + i] = (uint8_t)(t >> (8 * i));
    CHECK(fp != NULL);
    if (!fp)
        return;
    crc = (uint32_t)crc32(0, hdr, sizeof(hdr));
    crc = (uint32_t)crc32(crc, (const uint8_t *)json, n);
    fwrite(hdr, 1, sizeof(hdr), fp);
    fwrite(json, 1, n, fp);
    put_check(fp, &crc);
    fputc('E', fp);
    crc = (uint32_t)crc32(crc, (const uint8_t *)"E", 1);
    put_check(fp, &crc);
    fclose(fp);
}

/* What snapshot_create() does to the disks, and the state file it writes. */
static bool take_snapshot(struct fake_vm *f, const char *snap)
{
    char json[16384], err[BLOCK_ERR_LEN];
    size_t len = 0;

    len += (size_t)snprintf(json + len, sizeof(json) - len,
                            "{\"version\":1,\"machine\":\"virt\",\"cpus\":1,"
                            "\"memory\":\"128M\",\"boot\":{\"firmware\":\"fw.bin\"},"
                            "\"disks\":[");
    for (unsigned s = 0, d = 0; s < SNAPSHOT_MAX_DISKS && d < f->vm.ndisks; s++) {
        struct snapshot_disk *disk = NULL;
        char frozen[PATH_MAX], fmt[16];

        for (unsigned i = 0; i < f->vm.ndisks; i++)
            if (f->vm.disks[i].slot == s)
                disk = &f->vm.disks[i];
        if (!disk) { /* a read-only disk in this slot: not frozen */
            len += (size_t)snprintf(json + len, sizeof(json) - len,
                                    "%s{\"path\":\"ro.img\",\"readonly\":true}", s ? "," : "");
            continue;
        }
        d++;
        sfmt(fmt, sizeof(fmt), "%s", block_format_name(f->bs[disk - f->vm.disks]));
        sfmt(frozen, sizeof(frozen), "%s.disk%u", snap, s);
        if (block_release(f->bs[disk - f->vm.disks]) ||
            (!snapshot_same_folder(f->live[disk - f->vm.disks], frozen) &&
             block_anchor_backing(f->live[disk - f->vm.disks], fmt, err)) ||
            rename(f->live[disk - f->vm.disks], frozen) ||
            block_create_qcow2(f->live[disk - f->vm.disks], 0, 0, frozen, fmt, err) ||
            block_reopen(f->bs[disk - f->vm.disks], f->live[disk - f->vm.disks], "qcow2", false,
                         err)) {
            printf("snapshot %s: %s\n", snap, err);
            return false;
        }
        len += (size_t)snprintf(json + len, sizeof(json) - len,
                                "%s{\"path\":\"%s\",\"format\":\"%s\",\"snapshot_of\":\"%s\"}",
                                s ? "," : "", frozen, fmt, f->live[disk - f->vm.disks]);
    }
    sfmt(json + len, sizeof(json) - len, "]}");
    write_state(snap, json, STREAM_VERSION);
    snapshot_note_chain(&f->vm);
    return true;
}

/* What restore_disk() does: a new overlay at `target` on snapshot image `frozen`. */
static bool make_overlay(const char *target, const char *frozen, const char *fmt)
{
    char err[BLOCK_ERR_LEN];

    if (block_create_qcow2(target, 0, 0, frozen, fmt, err)) {
        printf("overlay %s: %s\n", target, err);
        return false;
    }
    snapshot_note_dependant(frozen, target);
    return true;
}

/* A revert of disk 0 to `snap`: the VM goes on in a new overlay at its path. */
static bool revert(struct fake_vm *f, const char *snap, const char *fmt)
{
    char frozen[PATH_MAX], err[BLOCK_ERR_LEN];
    struct block *bs = f->bs[0];

    sfmt(frozen, sizeof(frozen), "%s.disk0", snap);
    return block_release(bs) == 0 && make_overlay(f->live[0], frozen, fmt) &&
           block_reopen(bs, f->live[0], "qcow2", false, err) == 0;
}

/* The disk a snapshot image holds (its chain), read now. */
static uint8_t *read_image(const char *path)
{
    char err[BLOCK_ERR_LEN];
    struct block *bs;
    uint8_t *buf;

    if (block_open(path, NULL, true, &bs, err)) {
        printf("read %s: %s\n", path, err);
        return NULL;
    }
    buf = read_all(bs);
    block_close(bs);
    return buf;
}

static bool same(const uint8_t *a, const uint8_t *b)
{
    return a && b && !memcmp(a, b, DISK_SIZE);
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static bool exists_fmt(const char *fmt, const char *a)
{
    char p[PATH_MAX];

    sfmt(p, sizeof(p), fmt, a);
    return exists(p);
}

/* Every file under dir (recursively) with its size and CRC: equal strings mean nothing
 * changed. */
static void fingerprint(const char *dir, char *out, size_t len)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    size_t used = strlen(out);

    for (int i = 0; i < n; i++) {
        char p[PATH_MAX];
        struct stat st;

        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
            sfmt(p, sizeof(p), "%s/%s", dir, names[i]->d_name);
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
                fingerprint(p, out, len);
                used = strlen(out);
            } else if (lstat(p, &st) == 0) {
                uLong crc = crc32(0, NULL, 0);
                FILE *fp = S_ISREG(st.st_mode) ? fopen(p, "rb") : NULL;
                unsigned char buf[65536];
                size_t got;

                while (fp && (got = fread(buf, 1, sizeof(buf), fp)) > 0)
                    crc = crc32(crc, buf, (uInt)got);
                if (fp)
                    fclose(fp);
                used += (size_t)snprintf(out + used, used < len ? len - used : 0, "%s:%lld:%lx\n",
                                         p, (long long)st.st_size, crc);
            }
        }
        free(names[i]);
    }
    free(names);
}

/* A folder for one case. */
static void case_dir(char *out, const char *name)
{
    tpath(out, "%s/%s", name);
    CHECK(mkdir(out, 0700) == 0);
}

/* The list, as "basename(file)<parent index>,..." for compact checks. */
static void list_str(struct fake_vm *f, char *out, size_t len)
{
    struct snapshot_entry *e = NULL;
    char err[SNAPSHOT_ERR_LEN];
    unsigned n = 0;
    size_t used = 0;

    out[0] = '\0';
    CHECK(snapshot_list(&f->vm, &e, &n, err) == 0);
    for (unsigned i = 0; i < n; i++) {
        const char *b = strrchr(e[i].file, '/');
        struct stat st;

        CHECK(e[i].file[0] == '/');
        CHECK(stat(e[i].file, &st) == 0 && (uint64_t)st.st_size == e[i].bytes);
        CHECK(e[i].taken + 60 >= (uint64_t)time(NULL) && e[i].taken <= (uint64_t)time(NULL));
        CHECK(e[i].parent < (int)i);
        used += (size_t)snprintf(out + used, used < len ? len - used : 0, "%s%s(%d:%x)",
                                 i ? "," : "", b ? b + 1 : e[i].file, e[i].parent, e[i].disks);
    }
    free(e);
}

/* ---- Cases ---- */

/* base -> A -> B -> C -> top: delete the middle, then the oldest, then the newest. */
static void test_chain(void)
{
    char dir[PATH_MAX], base[PATH_MAX], live[PATH_MAX], snap[3][PATH_MAX], img[PATH_MAX];
    char err[SNAPSHOT_ERR_LEN], list[1024];
    uint8_t *want = NULL, *got = NULL, *frozen[3] = {NULL};
    struct snapshot_delete_result res;
    struct fake_vm f;
    const char *names = "ABC";

    case_dir(dir, "chain");
    sfmt(base, sizeof(base), "%s/base.qcow2", dir);
    sfmt(live, sizeof(live), "%s/disk.qcow2", dir);
    CHECK(block_create_qcow2(base, DISK_SIZE, 0, NULL, NULL, err) == 0);
    if (!scribble_file(base, "qcow2", 40))
        return;
    if (!vm_on_new_disk(&f, live, "base.qcow2")) /* a template */
        return;
    for (int i = 0; i < 3; i++) {
        scribble(f.bs[0], 30);
        sfmt(snap[i], sizeof(snap[i]), "%s/%c.tsr", dir, names[i]);
        CHECK(take_snapshot(&f, snap[i]));
        sfmt(img, sizeof(img), "%s.disk0", snap[i]);
        frozen[i] = read_image(img);
    }
    scribble(f.bs[0], 30);
    list_str(&f, list, sizeof(list));
    CHECK(!strcmp(list, "A.tsr(-1:1),B.tsr(0:1),C.tsr(1:1)"));
    want = read_all(f.bs[0]);

    /* The middle one: B.disk0 takes C.disk0's content and place. */
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, snap[1], &res, err) == 0);
    if (err[0])
        printf("%s\n", err);
    CHECK(res.in_chain && res.disks == 1 && res.bytes_merged > 0);
    CHECK(f.stops == 1 && f.resumes == 1);
    got = read_all(f.bs[0]);
    CHECK(same(want, got));
    free(got);
    CHECK(!exists(snap[1]) && !exists_fmt("%s.disk0", snap[1]) && !exists_fmt("%s.deps", snap[1]));
    sfmt(img, sizeof(img), "%s.disk0", snap[2]);
    got = read_image(img);
    CHECK(same(frozen[2], got)); /* C restores as it did */
    free(got);
    sfmt(img, sizeof(img), "%s.disk0", snap[0]);
    got = read_image(img);
    CHECK(same(frozen[0], got));
    free(got);
    list_str(&f, list, sizeof(list));
    CHECK(!strcmp(list, "A.tsr(-1:1),C.tsr(0:1)"));
    if (have_qemu_img) {
        sfmt(img, sizeof(img), "%s.disk0", snap[2]);
        CHECK(qemu_img_check(img) == 0);
    }

    /* The VM writes on; then the oldest goes (its child: C.disk0, B's data merged in). */
    scribble(f.bs[0], 30);
    free(want);
    want = read_all(f.bs[0]);
    CHECK(snapshot_delete(&f.vm, snap[0], &res, err) == 0);
    got = read_all(f.bs[0]);
    CHECK(same(want, got));
    free(got);
    sfmt(img, sizeof(img), "%s.disk0", snap[2]);
    got = read_image(img);
    CHECK(same(frozen[2], got));
    free(got);
    CHECK(!exists(snap[0]) && !exists_fmt("%s.disk0", snap[0]));
    list_str(&f, list, sizeof(list));
    CHECK(!strcmp(list, "C.tsr(-1:1)"));
    /* C.disk0 (A's image now) still backs on the template, by its relative name. */
    if (block_backing(f.bs[0]) && block_backing(block_backing(f.bs[0])))
        CHECK(!strcmp(block_path(block_backing(block_backing(f.bs[0]))), base));

    /* The newest: the VM's active overlay is merged into C.disk0, which takes its place. */
    CHECK(snapshot_delete(&f.vm, snap[2], &res, err) == 0);
    CHECK(f.stops == 3 && f.resumes == 3);
    got = read_all(f.bs[0]);
    CHECK(same(want, got));
    free(got);
    CHECK(!exists(snap[2]) && !exists_fmt("%s.disk0", snap[2]) && exists(live));
    list_str(&f, list, sizeof(list));
    CHECK(!strcmp(list, ""));
    CHECK(block_backing(f.bs[0]) && !strcmp(block_path(block_backing(f.bs[0])), base));
    CHECK(!strcmp(block_format_name(f.bs[0]), "qcow2") && !f.changed_fmt[0]);
    /* The disk works on. */
    scribble(f.bs[0], 30);
    free(want);
    want = read_all(f.bs[0]);
    vm_close(&f);
    got = read_image(live);
    CHECK(same(want, got));
    free(got);
    if (have_qemu_img)
        CHECK(qemu_img_check(live) == 0);
    free(want);
    for (int i = 0; i < 3; i++)
        free(frozen[i]);
}

/* A linked clone, an overlay made by hand, or another branch keeps a snapshot. */
static void test_dependants(void)
{
    char dir[PATH_MAX], cdir[PATH_MAX], live[PATH_MAX], s[PATH_MAX], t[PATH_MAX], img[PATH_MAX];
    char clone[PATH_MAX], other[PATH_MAX], deps[PATH_MAX], err[SNAPSHOT_ERR_LEN];
    static char before[65536], after[65536];
    struct snapshot_delete_result res;
    struct fake_vm f;
    FILE *fp;

    case_dir(dir, "deps");
    case_dir(cdir, "deps-clone");
    sfmt(live, sizeof(live), "%s/disk.qcow2", dir);
    if (!vm_on_new_disk(&f, live, NULL))
        return;
    scribble(f.bs[0], 20);
    sfmt(s, sizeof(s), "%s/s.tsr", dir);
    CHECK(take_snapshot(&f, s));
    scribble(f.bs[0], 20);
    sfmt(img, sizeof(img), "%s.disk0", s);
    sfmt(clone, sizeof(clone), "%s/disk.qcow2", cdir);
    CHECK(make_overlay(clone, img, "qcow2"));

    before[0] = after[0] = '\0';
    fingerprint(tmpdir, before, sizeof(before));
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, s, &res, err) == -EBUSY);
    CHECK(strstr(err, clone) != NULL && strstr(err, s) != NULL);
    printf("  refused: %s\n", err);
    CHECK(f.stops == 0);
    fingerprint(tmpdir, after, sizeof(after));
    CHECK(!strcmp(before, after));

    /* The clone gone: the delete goes through. */
    CHECK(unlink(clone) == 0);
    CHECK(snapshot_delete(&f.vm, s, &res, err) == 0);
    CHECK(!exists(s) && !exists(img));

    /* An overlay made by hand beside the snapshot, not recorded; junk in the record. */
    sfmt(t, sizeof(t), "%s/t.tsr", dir);
    CHECK(take_snapshot(&f, t));
    sfmt(img, sizeof(img), "%s.disk0", t);
    sfmt(other, sizeof(other), "%s/by-hand.qcow2", dir);
    CHECK(block_create_qcow2(other, 0, 0, "t.tsr.disk0", "qcow2", err) == 0);
    sfmt(deps, sizeof(deps), "%s.deps", t);
    fp = fopen(deps, "a");
    CHECK(fp != NULL);
    if (fp) {
        fprintf(fp, "\n/nonexistent/overlay.qcow2\nrelative/junk\n%s\n%s\n\n", live, dir);
        fclose(fp);
    }
    before[0] = after[0] = '\0';
    fingerprint(tmpdir, before, sizeof(before));
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, t, &res, err) == -EBUSY);
    CHECK(strstr(err, other) != NULL);
    fingerprint(tmpdir, after, sizeof(after));
    CHECK(!strcmp(before, after));
    CHECK(unlink(other) == 0);
    /* An unreadable qcow2-looking file beside it: nobody can tell, so refused. */
    sfmt(other, sizeof(other), "%s/broken.qcow2", dir);
    fp = fopen(other, "wb");
    if (fp) {
        fwrite("QFI\xfb\0\0\0\x03garbage", 1, 15, fp);
        fclose(fp);
    }
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, t, &res, err) < 0);
    CHECK(strstr(err, other) != NULL);
    CHECK(unlink(other) == 0);
    CHECK(snapshot_delete(&f.vm, t, &res, err) == 0);
    CHECK(!exists(t) && !exists(img) && !exists(deps));

    /* Two snapshots, a revert to the first: the second is another branch. */
    sfmt(s, sizeof(s), "%s/a.tsr", dir);
    sfmt(t, sizeof(t), "%s/b.tsr", dir);
    CHECK(take_snapshot(&f, s));
    scribble(f.bs[0], 20);
    CHECK(take_snapshot(&f, t));
    scribble(f.bs[0], 20);
    CHECK(revert(&f, s, "qcow2"));
    scribble(f.bs[0], 20);
    char list[512];
    list_str(&f, list, sizeof(list));
    CHECK(!strcmp(list, "a.tsr(-1:1)"));
    before[0] = after[0] = '\0';
    fingerprint(tmpdir, before, sizeof(before));
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, s, &res, err) == -EBUSY);
    CHECK(strstr(err, "b.tsr.disk0") != NULL);
    fingerprint(tmpdir, after, sizeof(after));
    CHECK(!strcmp(before, after));
    /* b is on the other branch: removed, with no pause. */
    f.stops = 0;
    CHECK(snapshot_delete(&f.vm, t, &res, err) == 0);
    CHECK(!res.in_chain && res.disks == 1 && f.stops == 0);
    CHECK(!exists(t) && !exists_fmt("%s.disk0", t) && !exists_fmt("%s.deps", t));
    /* Now a goes too, merged. */
    uint8_t *want = read_all(f.bs[0]), *got;
    CHECK(snapshot_delete(&f.vm, s, &res, err) == 0);
    CHECK(res.in_chain);
    got = read_all(f.bs[0]);
    CHECK(same(want, got));
    free(want);
    free(got);
    vm_close(&f);
}

/* A state file gone (a delete interrupted after its first step), images still in the chain. */
static void test_state_missing(void)
{
    char dir[PATH_MAX], live[PATH_MAX], s[PATH_MAX], err[SNAPSHOT_ERR_LEN];
    struct snapshot_delete_result res;
    uint8_t *want, *got;
    struct fake_vm f;

    case_dir(dir, "missing");
    sfmt(live, sizeof(live), "%s/disk.qcow2", dir);
    if (!vm_on_new_disk(&f, live, NULL))
        return;
    scribble(f.bs[0], 20);
    sfmt(s, sizeof(s), "%s/m.tsr", dir);
    CHECK(take_snapshot(&f, s));
    scribble(f.bs[0], 20);
    want = read_all(f.bs[0]);
    /* Interrupted after its third step: the state file gone, the active overlay's clusters
     * copied into m.tsr.disk0, not yet renamed. The chain reads the same. */
    {
        char img[PATH_MAX], berr[BLOCK_ERR_LEN];
        struct block *base = NULL, *top = NULL, *bs = f.bs[0];

        sfmt(img, sizeof(img), "%s.disk0", s);
        CHECK(block_release(bs) == 0);
        CHECK(block_open(img, "qcow2", false, &base, berr) == 0);
        CHECK(block_open_layer(live, "qcow2", &top, berr) == 0);
        if (base && top)
            CHECK(block_commit(top, base, NULL, berr) == 0);
        block_close(top);
        block_close(base);
        CHECK(unlink(s) == 0);
        CHECK(block_reopen(bs, live, "qcow2", false, berr) == 0);
        got = read_all(bs);
        CHECK(same(want, got));
        free(got);
    }
    CHECK(snapshot_delete(&f.vm, s, &res, err) == 0);
    CHECK(res.in_chain && res.disks == 1);
    got = read_all(f.bs[0]);
    CHECK(same(want, got));
    CHECK(!exists_fmt("%s.disk0", s) && !exists_fmt("%s.deps", s));
    /* Interrupted after its last rename: only the record is left, and a rerun removes it. */
    {
        char deps[PATH_MAX];
        FILE *fp;

        sfmt(deps, sizeof(deps), "%s.deps", s);
        fp = fopen(deps, "w");
        if (fp) {
            fprintf(fp, "%s\n", live);
            fclose(fp);
        }
        CHECK(snapshot_delete(&f.vm, s, &res, err) == 0 && res.disks == 0);
        CHECK(!exists(deps));
    }
    /* Nothing left of it: a clear error. */
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, s, &res, err) == -ENOENT);
    CHECK(strstr(err, "no such snapshot") != NULL);
    free(want);
    free(got);
    vm_close(&f);
}

/* The VM's original disk is raw: a raw frozen image under a qcow2 one cannot take its place;
 * under the active overlay it can, and the VM's disk is raw again. */
static void test_raw(void)
{
    char dir[PATH_MAX], live[PATH_MAX], a[PATH_MAX], b[PATH_MAX], err[SNAPSHOT_ERR_LEN];
    static char before[65536], after[65536];
    struct snapshot_delete_result res;
    struct block *bs;
    uint8_t *want, *got;
    struct fake_vm f;

    case_dir(dir, "raw");
    sfmt(live, sizeof(live), "%s/disk.img", dir);
    CHECK(block_create(live, "raw", &(struct block_create_opts){.size = DISK_SIZE}, err) == 0);
    vm_init(&f);
    if (!vm_add_disk(&f, 0, live, "raw"))
        return;
    scribble(f.bs[0], 20);
    sfmt(a, sizeof(a), "%s/a.tsr", dir);
    sfmt(b, sizeof(b), "%s/b.tsr", dir);
    CHECK(take_snapshot(&f, a));
    scribble(f.bs[0], 20);
    CHECK(take_snapshot(&f, b));
    scribble(f.bs[0], 20);
    before[0] = after[0] = '\0';
    fingerprint(dir, before, sizeof(before));
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, a, &res, err) == -EINVAL);
    CHECK(strstr(err, "raw") != NULL && strstr(err, "newer snapshot first") != NULL);
    fingerprint(dir, after, sizeof(after));
    CHECK(!strcmp(before, after));
    want = read_all(f.bs[0]);
    CHECK(snapshot_delete(&f.vm, b, &res, err) == 0);
    CHECK(snapshot_delete(&f.vm, a, &res, err) == 0);
    bs = f.bs[0];
    CHECK(!strcmp(block_format_name(bs), "raw") && !strcmp(f.changed_fmt, "raw"));
    got = read_all(bs);
    CHECK(same(want, got));
    free(want);
    free(got);
    scribble(bs, 10);
    vm_close(&f);
}

/* A user's disk names its template relative to its folder. Snapshot A stays in that folder,
 * snapshot B goes to another one; deleting A moves A's image (which still names the template
 * relatively) into B's folder: its backing name becomes absolute, the chain reads as before. */
static void test_relative_backing(void)
{
    char dir[PATH_MAX], sdir[PATH_MAX], base[PATH_MAX], live[PATH_MAX], a[PATH_MAX], b[PATH_MAX],
        img[PATH_MAX], name[PATH_MAX], fmt[32], err[SNAPSHOT_ERR_LEN];
    struct snapshot_delete_result res;
    uint8_t *want, *got, *frozen_b;
    struct fake_vm f;

    case_dir(dir, "rel");
    case_dir(sdir, "rel-snaps");
    sfmt(base, sizeof(base), "%s/base.qcow2", dir);
    sfmt(live, sizeof(live), "%s/disk.qcow2", dir);
    CHECK(block_create_qcow2(base, DISK_SIZE, 0, NULL, NULL, err) == 0);
    if (!scribble_file(base, "qcow2", 40))
        return;
    if (!vm_on_new_disk(&f, live, "base.qcow2"))
        return;
    scribble(f.bs[0], 20);
    sfmt(a, sizeof(a), "%s/A.tsr", dir);
    sfmt(b, sizeof(b), "%s/B.tsr", sdir);
    CHECK(take_snapshot(&f, a));
    sfmt(img, sizeof(img), "%s.disk0", a);
    CHECK(block_query_backing(img, NULL, name, sizeof(name), fmt, sizeof(fmt), err) == 0);
    CHECK(!strcmp(name, "base.qcow2")); /* same folder: left as the user wrote it */
    scribble(f.bs[0], 20);
    CHECK(take_snapshot(&f, b));
    sfmt(img, sizeof(img), "%s.disk0", b);
    frozen_b = read_image(img);
    scribble(f.bs[0], 20);
    want = read_all(f.bs[0]);

    CHECK(snapshot_delete(&f.vm, a, &res, err) == 0 || !printf("%s\n", err));
    CHECK(block_query_backing(img, NULL, name, sizeof(name), fmt, sizeof(fmt), err) == 0);
    CHECK(!strcmp(name, base));
    got = read_image(img);
    CHECK(same(frozen_b, got));
    free(got);
    got = read_all(f.bs[0]);
    CHECK(same(want, got));
    free(got);
    if (have_qemu_img)
        CHECK(qemu_img_check(img) == 0);
    free(want);
    free(frozen_b);
    vm_close(&f);
}

/* Two disks (slots 0 and 2) frozen together, merged together. */
static void test_two_disks(void)
{
    char dir[PATH_MAX], l0[PATH_MAX], l2[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    char err[SNAPSHOT_ERR_LEN], list[512];
    struct snapshot_delete_result res;
    uint8_t *w0, *w2, *g0, *g2;
    struct fake_vm f;

    case_dir(dir, "two");
    sfmt(l0, sizeof(l0), "%s/d0.qcow2", dir);
    sfmt(l2, sizeof(l2), "%s/d2.qcow2", dir);
    CHECK(block_create_qcow2(l0, DISK_SIZE, 0, NULL, NULL, err) == 0);
    CHECK(block_create_qcow2(l2, DISK_SIZE, 12, NULL, NULL, err) == 0);
    vm_init(&f);
    if (!vm_add_disk(&f, 0, l0, "qcow2") || !vm_add_disk(&f, 2, l2, "qcow2"))
        return;
    sfmt(a, sizeof(a), "%s/a.tsr", dir);
    sfmt(b, sizeof(b), "%s/b.tsr", dir);
    scribble(f.bs[0], 10);
    scribble(f.bs[1], 10);
    CHECK(take_snapshot(&f, a));
    scribble(f.bs[0], 10);
    scribble(f.bs[1], 10);
    CHECK(take_snapshot(&f, b));
    scribble(f.bs[0], 10);
    scribble(f.bs[1], 10);
    list_str(&f, list, sizeof(list));
    CHECK(!strcmp(list, "a.tsr(-1:5),b.tsr(0:5)"));
    w0 = read_all(f.bs[0]);
    w2 = read_all(f.bs[1]);
    CHECK(snapshot_delete(&f.vm, a, &res, err) == 0);
    CHECK(res.disks == 2);
    CHECK(snapshot_delete(&f.vm, b, &res, err) == 0);
    g0 = read_all(f.bs[0]);
    g2 = read_all(f.bs[1]);
    CHECK(same(w0, g0) && same(w2, g2));
    free(w0);
    free(w2);
    free(g0);
    free(g2);
    vm_close(&f);
}

/* Files that are not snapshots of this VM, or not snapshots at all. */
static void test_hostile(void)
{
    char dir[PATH_MAX], live[PATH_MAX], live2[PATH_MAX], s[PATH_MAX], p[PATH_MAX];
    char err[SNAPSHOT_ERR_LEN], json[2048];
    static char before[65536], after[65536], longp[6000];
    struct snapshot_delete_result res;
    struct fake_vm f, g;
    FILE *fp;

    case_dir(dir, "hostile");
    sfmt(live, sizeof(live), "%s/disk.qcow2", dir);
    sfmt(live2, sizeof(live2), "%s/other-vm.qcow2", dir);
    CHECK(block_create_qcow2(live, DISK_SIZE, 0, NULL, NULL, err) == 0);
    CHECK(block_create_qcow2(live2, DISK_SIZE, 0, NULL, NULL, err) == 0);
    vm_init(&f);
    vm_init(&g);
    if (!vm_add_disk(&f, 0, live, "qcow2") || !vm_add_disk(&g, 0, live2, "qcow2"))
        return;
    sfmt(s, sizeof(s), "%s/good.tsr", dir);
    CHECK(take_snapshot(&f, s));
    before[0] = after[0] = '\0';
    fingerprint(dir, before, sizeof(before));

    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, "", &res, err) == -EINVAL && err[0]);
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, longp, &res, err) == -ENAMETOOLONG);
    CHECK(strstr(err, "too long") != NULL && strlen(err) < 400);
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, "/nonexistent-folder/x.tsr", &res, err) == -ENOENT);
    CHECK(strstr(err, "/nonexistent-folder") != NULL);
    CHECK(snapshot_delete(&f.vm, dir, &res, err) < 0); /* a folder */
    CHECK(snapshot_delete(&f.vm, "/", &res, err) == -EINVAL);

    sfmt(p, sizeof(p), "%s/garbage.tsr", dir);
    fp = fopen(p, "wb");
    if (fp) {
        fputs("this is not a snapshot at all, just some text\n", fp);
        fclose(fp);
    }
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, p, &res, err) == -EINVAL);
    CHECK(strstr(err, "not a Tessera state stream") != NULL && strstr(err, p) != NULL);
    CHECK(exists(p));

    sfmt(p, sizeof(p), "%s/short.tsr", dir);
    fp = fopen(p, "wb");
    if (fp) {
        fputs("TSRSTATE\2\0", fp);
        fclose(fp);
    }
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, p, &res, err) == -EINVAL);
    CHECK(strstr(err, "truncated") != NULL && strstr(err, p) != NULL);

    sfmt(p, sizeof(p), "%s/v99.tsr", dir);
    write_state(p, "{}", 99);
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, p, &res, err) == -EINVAL);
    CHECK(strstr(err, "version 99") != NULL);

    sfmt(p, sizeof(p), "%s/notjson.tsr", dir);
    write_state(p, "[1, 2, {", STREAM_VERSION);
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, p, &res, err) == -EINVAL);
    CHECK(strstr(err, "not a JSON object") != NULL);

    sfmt(p, sizeof(p), "%s/baddevs.tsr", dir);
    write_state(p, "{\"version\": 1, \"devices\": [{\"type\": 5}]}", STREAM_VERSION);
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, p, &res, err) == -EINVAL);
    CHECK(strstr(err, "devices[0]") != NULL);

    /* A config that names another image than FILE.disk0. */
    sfmt(p, sizeof(p), "%s/renamed.tsr", dir);
    sfmt(json, sizeof(json),
         "{\"version\": 1, \"disks\": [{\"path\": \"%s.disk0\", \"format\": \"qcow2\", "
         "\"snapshot_of\": \"%s\"}]}",
         s, live);
    write_state(p, json, STREAM_VERSION);
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, p, &res, err) == -EINVAL);
    CHECK(strstr(err, "renamed") != NULL);

    /* A symbolic link to a good snapshot. */
    sfmt(p, sizeof(p), "%s/link.tsr", dir);
    CHECK(symlink(s, p) == 0);
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, p, &res, err) == -EINVAL);
    CHECK(strstr(err, "symbolic link") != NULL);
    CHECK(unlink(p) == 0);

    /* A FIFO where a state file should be. */
    sfmt(p, sizeof(p), "%s/fifo.tsr", dir);
    CHECK(mkfifo(p, 0600) == 0);
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, p, &res, err) == -EINVAL);
    CHECK(strstr(err, "not a regular file") != NULL);
    CHECK(unlink(p) == 0);

    /* Another VM's snapshot, and this one's seen from the other VM. */
    sfmt(p, sizeof(p), "%s/other.tsr", dir);
    CHECK(take_snapshot(&g, p));
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, p, &res, err) == -EINVAL);
    CHECK(strstr(err, "not a snapshot of this VM") != NULL);
    err[0] = '\0';
    CHECK(snapshot_delete(&g.vm, s, &res, err) == -EINVAL);
    CHECK(strstr(err, "not a snapshot of this VM") != NULL);
    CHECK(snapshot_delete(&g.vm, p, &res, err) == 0);

    /* A state file naming an image as disk 0 that is this VM's running disk. */
    sfmt(p, sizeof(p), "%s/running", dir);
    sfmt(json, sizeof(json),
         "{\"version\": 1, \"disks\": [{\"path\": \"%s.disk0\", \"format\": \"qcow2\", "
         "\"snapshot_of\": \"%s\"}]}",
         p, live);
    write_state(p, json, STREAM_VERSION);
    {
        char img[PATH_MAX];
        struct fake_vm h;

        sfmt(img, sizeof(img), "%s.disk0", p);
        CHECK(block_create_qcow2(img, DISK_SIZE, 0, NULL, NULL, err) == 0);
        vm_init(&h);
        if (vm_add_disk(&h, 0, img, "qcow2")) {
            err[0] = '\0';
            CHECK(snapshot_delete(&h.vm, p, &res, err) == -EINVAL);
            CHECK(strstr(err, "running disk") != NULL);
            CHECK(exists(img));
            vm_close(&h);
        }
    }

    /* A second name for the image the merge would write into. */
    {
        char img[PATH_MAX], alias[PATH_MAX];

        sfmt(img, sizeof(img), "%s.disk0", s);
        sfmt(alias, sizeof(alias), "%s/backup-of-good.qcow2", dir);
        CHECK(link(img, alias) == 0);
        err[0] = '\0';
        CHECK(snapshot_delete(&f.vm, s, &res, err) == -EINVAL);
        CHECK(strstr(err, "hard links") != NULL && exists(s));
        CHECK(unlink(alias) == 0);
    }

    /* The VM cannot stop: nothing changes. */
    f.refuse_stop = true;
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, s, &res, err) == -EBUSY);
    CHECK(strstr(err, "paused") != NULL);
    f.refuse_stop = false;
    after[0] = '\0';
    fingerprint(dir, after, sizeof(after));
    CHECK(strstr(after, "good.tsr:") != NULL);
    CHECK(snapshot_delete(&f.vm, s, &res, err) == 0);
    vm_close(&f);
    vm_close(&g);
    (void)before;
}

/* A VM without writable disks: no chain, and its snapshot files stand alone. */
static void test_diskless(void)
{
    char dir[PATH_MAX], s[PATH_MAX], t[PATH_MAX], err[SNAPSHOT_ERR_LEN], json[1024];
    struct snapshot_entry *e = (void *)1;
    struct snapshot_delete_result res;
    unsigned n = 5;
    struct fake_vm f;

    case_dir(dir, "diskless");
    vm_init(&f);
    CHECK(snapshot_list(&f.vm, &e, &n, err) == 0 && n == 0 && e == NULL);
    sfmt(s, sizeof(s), "%s/s.tsr", dir);
    write_state(s, "{\"version\": 1, \"devices\": [{\"type\": \"rng\"}]}", STREAM_VERSION);
    CHECK(snapshot_delete(&f.vm, s, &res, err) == 0);
    CHECK(!exists(s) && res.disks == 0);
    sfmt(t, sizeof(t), "%s/t.tsr", dir);
    sfmt(json, sizeof(json),
         "{\"version\": 1, \"disks\": [{\"path\": \"%s.disk0\", \"format\": \"qcow2\", "
         "\"snapshot_of\": \"/x\"}]}",
         t);
    write_state(t, json, STREAM_VERSION);
    err[0] = '\0';
    CHECK(snapshot_delete(&f.vm, t, &res, err) == -EINVAL);
    CHECK(strstr(err, "not a snapshot of this VM") != NULL && exists(t));
}

/* The record: appended once, only for real overlays of X.diskN beside a state file X. */
static void test_note(void)
{
    char dir[PATH_MAX], x[PATH_MAX], img[PATH_MAX], ov[PATH_MAX], full[PATH_MAX];
    char deps[PATH_MAX], err[BLOCK_ERR_LEN], buf[4096] = "";
    FILE *fp;

    case_dir(dir, "note");
    sfmt(x, sizeof(x), "%s/x.tsr", dir);
    sfmt(img, sizeof(img), "%s.disk0", x);
    sfmt(ov, sizeof(ov), "%s/ov.qcow2", dir);
    sfmt(full, sizeof(full), "%s/full.qcow2", dir);
    sfmt(deps, sizeof(deps), "%s.deps", x);
    write_state(x, "{\"devices\": []}", STREAM_VERSION);
    CHECK(block_create_qcow2(img, MiB, 0, NULL, NULL, err) == 0);
    CHECK(block_create_qcow2(ov, 0, 0, img, NULL, err) == 0);
    CHECK(block_create_qcow2(full, MiB, 0, NULL, NULL, err) == 0);
    CHECK(snapshot_note_dependant(img, ov) == 0);
    CHECK(snapshot_note_dependant(img, ov) == 0);
    CHECK(snapshot_note_dependant(img, full) == 0);            /* not backed by img */
    CHECK(snapshot_note_dependant(ov, full) == 0);             /* not named X.diskN */
    CHECK(snapshot_note_dependant(img, "/nonexistent/y") < 0); /* logged, not fatal */
    fp = fopen(deps, "r");
    CHECK(fp != NULL);
    if (fp) {
        size_t got = fread(buf, 1, sizeof(buf) - 1, fp);

        buf[got] = '\0';
        fclose(fp);
    }
    sfmt(full, sizeof(full), "%s\n", ov);
    CHECK(!strcmp(buf, full));
}

/* ---- Taking snapshots of a real machine: what is refused, and a failure undone ---- */

struct machine_run {
    struct virt_machine *m;
    pthread_t thread;
    char bios[PATH_MAX];
    char plant[PATH_MAX];     /* progress: create this file when the guest stops */
    char opts[PATH_MAX + 32]; /* disk 0's options: the machine keeps pointing at them */
    int console;
};

static void *machine_thread(void *opaque)
{
    virt_run(((struct machine_run *)opaque)->m);
    return NULL;
}

/* A one-hart machine looping in its firmware, with disk 0 the qcow2 image at `disk`. */
static bool machine_start(struct machine_run *r, const char *dir, const char *disk)
{
    static const uint32_t loop[] = {0x0000006f}; /* j . */
    struct virt_config cfg = {.cpus = 1, .mem_size = VIRT_MIN_MEM};
    char err[BLOCK_ERR_LEN] = "";
    FILE *fp;

    memset(r, 0, sizeof(*r));
    sfmt(r->bios, sizeof(r->bios), "%s/bios.bin", dir);
    fp = fopen(r->bios, "wb");
    CHECK(fp && fwrite(loop, sizeof(loop), 1, fp) == 1);
    if (fp)
        fclose(fp);
    CHECK(block_create_qcow2(disk, DISK_SIZE, 0, NULL, NULL, err) == 0 || !printf("%s\n", err));
    sfmt(r->opts, sizeof(r->opts), "%s,format=qcow2", disk);
    cfg.bios = r->bios;
    r->console = open("/dev/null", O_WRONLY | O_CLOEXEC);
    cfg.console_fd = r->console;
    cfg.devices[0] = (struct virt_device_spec){"disk", r->opts};
    cfg.ndevices = 1;
    if (virt_create(&cfg, &r->m))
        return false;
    CHECK(pthread_create(&r->thread, NULL, machine_thread, r) == 0);
    return true;
}

static void machine_stop(struct machine_run *r)
{
    virt_request_exit(r->m, 0);
    pthread_join(r->thread, NULL);
    virt_destroy(r->m);
    close(r->console);
}

/* The paths of disk 0's chain as "top<backing<..." */
static void chain_str(struct virt_machine *m, char *out, size_t len)
{
    struct virt_disk_info *layers = calloc(8, sizeof(*layers));
    unsigned n = 0;

    out[0] = '\0';
    CHECK(layers && virt_disk_chain(m, 0, layers, 8, &n) == 0);
    for (unsigned i = 0; layers && i < n; i++)
        sfmt(out + strlen(out), len - strlen(out), "%s%s", i ? "<" : "", layers[i].path);
    free(layers);
}

static void plant_file(void *opaque, const char *phase, uint64_t done, uint64_t total,
                       uint64_t bytes)
{
    struct machine_run *r = opaque;
    FILE *fp;

    if (strcmp(phase, "stopped") || !r->plant[0])
        return;
    fp = fopen(r->plant, "w");
    if (fp)
        fclose(fp);
}

/* Tries a snapshot that must be refused with `want`; nothing in dir and nothing of the disk's
 * chain may change. */
static void refused(struct machine_run *r, const char *dir, const char *file, int want,
                    const char *msg_has)
{
    static char before[16384], after[16384];
    char chain0[4 * PATH_MAX], chain1[4 * PATH_MAX], err[SNAPSHOT_ERR_LEN] = "";
    struct snapshot_create_stats st;
    int ret;

    before[0] = after[0] = '\0';
    fingerprint(dir, before, sizeof(before));
    chain_str(r->m, chain0, sizeof(chain0));
    ret = snapshot_create(r->m, file, NULL, &st, err);
    fingerprint(dir, after, sizeof(after));
    chain_str(r->m, chain1, sizeof(chain1));
    if (ret != want || !strstr(err, msg_has) || strcmp(before, after) || strcmp(chain0, chain1))
        printf("snapshot %s: %d (want %d): %s\n", file, ret, want, err);
    CHECK(ret == want && strstr(err, msg_has));
    CHECK(!strcmp(before, after));
    CHECK(!strcmp(chain0, chain1));
}

static void test_create(void)
{
    char dir[PATH_MAX], disk[PATH_MAX], a[PATH_MAX], p[PATH_MAX], chain[4 * PATH_MAX];
    char want[4 * PATH_MAX], err[SNAPSHOT_ERR_LEN] = "";
    struct snapshot_create_stats st;
    struct machine_run r;

    case_dir(dir, "create");
    sfmt(disk, sizeof(disk), "%s/disk.qcow2", dir);
    sfmt(a, sizeof(a), "%s/a.tsr", dir);
    if (!machine_start(&r, dir, disk)) {
        CHECK(!"machine_start");
        return;
    }
    /* The machine's view of its disk, as the VMM uses it. */
    {
        struct virt_disk_info info;
        struct dirty_log log;
        uint8_t buf[4096] = {1};

        CHECK(virt_disk_info(r.m, 0, &info) == 0 && !strcmp(info.path, disk) &&
              !strcmp(info.format, "qcow2") && !info.readonly && info.length == DISK_SIZE);
        CHECK(virt_disk_info(r.m, 1, &info) == -ENODEV);
        CHECK(virt_disk_read(r.m, 0, 8192, buf, sizeof(buf)) == 0 && !buf[0] &&
              !memcmp(buf, buf + 1, sizeof(buf) - 1));
        CHECK(virt_disk_read(r.m, 3, 0, buf, sizeof(buf)) == -ENODEV);
        CHECK(dirty_log_init(&log, (DISK_SIZE + 4095) / 4096) == 0);
        CHECK(virt_disk_track_writes(r.m, 0, &log) == 0);
        CHECK(virt_disk_track_writes(r.m, 0, NULL) == 0);
        dirty_log_destroy(&log);
    }
    CHECK(snapshot_create(r.m, a, NULL, &st, err) == 0 || !printf("%s\n", err));
    CHECK(st.disks == 1 && st.bytes > 0 && exists(a) && exists_fmt("%s.disk0", a));
    CHECK(!exists_fmt("%s.part", a));
    chain_str(r.m, chain, sizeof(chain));
    sfmt(want, sizeof(want), "%s<%s.disk0", disk, a);
    CHECK(!strcmp(chain, want) || !printf("chain %s\n", chain));

    /* The same FILE again: it used to rename the new frozen image over a.tsr.disk0. */
    refused(&r, dir, a, -EEXIST, "exists");
    /* The VM's own disk, and an image below it. */
    refused(&r, dir, disk, -EEXIST, "is an image of the VM's disk 0");
    sfmt(p, sizeof(p), "%s.disk0", a);
    refused(&r, dir, p, -EEXIST, "is an image of the VM's disk 0");
    /* FILE.disk0 alone is in the way (FILE is free). */
    sfmt(p, sizeof(p), "%s/b.tsr.disk0", dir);
    CHECK(close(open(p, O_WRONLY | O_CREAT | O_EXCL, 0600)) == 0);
    sfmt(p, sizeof(p), "%s/b.tsr", dir);
    refused(&r, dir, p, -EEXIST, "b.tsr.disk0: exists");
    /* Names: a control character, a trailing slash, a folder, a missing folder. */
    sfmt(p, sizeof(p), "%s/new\nline", dir);
    refused(&r, dir, p, -EINVAL, "control character (byte 0x0a");
    sfmt(p, sizeof(p), "%s/tab\there", dir);
    refused(&r, dir, p, -EINVAL, "control character (byte 0x09");
    sfmt(p, sizeof(p), "%s/sub", dir);
    CHECK(mkdir(p, 0700) == 0);
    sfmt(p, sizeof(p), "%s/sub/", dir);
    refused(&r, dir, p, -EINVAL, "ends in '/'");
    sfmt(p, sizeof(p), "%s/sub", dir);
    refused(&r, dir, p, -EEXIST, "is a folder");
    sfmt(p, sizeof(p), "%s/sub/.", dir);
    refused(&r, dir, p, -EEXIST, "names a folder");
    sfmt(p, sizeof(p), "%s/none/x.tsr", dir);
    refused(&r, dir, p, -ENOENT, "its folder does not exist");

    /* A failure with the disk frozen (the name is taken while the guest is stopped): the disk
     * is back as it was, and nothing of the snapshot stays. */
    {
        static char before[16384], after[16384];
        const struct snapshot_progress prog = {.report = plant_file, .opaque = &r};
        char chain1[4 * PATH_MAX];

        sfmt(p, sizeof(p), "%s/c.tsr", dir);
        sfmt(r.plant, sizeof(r.plant), "%s", p);
        before[0] = after[0] = '\0';
        fingerprint(dir, before, sizeof(before));
        chain_str(r.m, chain, sizeof(chain));
        CHECK(snapshot_create(r.m, p, &prog, &st, err) == -EEXIST);
        CHECK(exists(p) && unlink(p) == 0 && !exists_fmt("%s.disk0", p));
        CHECK(!exists_fmt("%s.part", p));
        fingerprint(dir, after, sizeof(after));
        chain_str(r.m, chain1, sizeof(chain1));
        CHECK(!strcmp(before, after) || !printf("before:\n%safter:\n%s", before, after));
        CHECK(!strcmp(chain, chain1) || !printf("%s\n%s\n", chain, chain1));
        CHECK(strstr(virt_get_config(r.m)->devices[0].opts, disk) &&
              strstr(virt_get_config(r.m)->devices[0].opts, "format=qcow2"));
        r.plant[0] = '\0';
        /* And the VM snapshots fine afterwards. */
        CHECK(snapshot_create(r.m, p, NULL, &st, err) == 0 || !printf("%s\n", err));
    }
    machine_stop(&r);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    if (disk_tests_begin("snapshots"))
        return 1;
    test_chain();
    test_dependants();
    test_state_missing();
    test_raw();
    test_relative_backing();
    test_two_disks();
    test_hostile();
    test_diskless();
    test_note();
    test_create();
    disk_tests_end();
    return test_finish("snapshots");
}
