// Built with -D_FILE_OFFSET_BITS=64 (see Package.swift), which libcephfs.h requires.
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <cephfs/libcephfs.h>
#include "ccephfs.h"

int vd_create_from_rados(struct ceph_mount_info **cmount, void *cluster) {
    return ceph_create_from_rados(cmount, (rados_t)cluster);
}
int vd_conf_set(struct ceph_mount_info *c, const char *o, const char *v) { return ceph_conf_set(c, o, v); }
int vd_conf_get(struct ceph_mount_info *c, const char *o, char *b, size_t l) { return ceph_conf_get(c, o, b, l); }
int vd_init(struct ceph_mount_info *c) { return ceph_init(c); }
int vd_select_filesystem(struct ceph_mount_info *c, const char *n) { return ceph_select_filesystem(c, n); }
int vd_mount(struct ceph_mount_info *c, const char *r) { return ceph_mount(c, r); }
int vd_unmount(struct ceph_mount_info *c) { return ceph_unmount(c); }
int vd_release(struct ceph_mount_info *c) { return ceph_release(c); }
void vd_shutdown(struct ceph_mount_info *c) { ceph_shutdown(c); }
int vd_abort_conn(struct ceph_mount_info *c) { return ceph_abort_conn(c); }
uint64_t vd_get_instance_id(struct ceph_mount_info *c) { return ceph_get_instance_id(c); }

static void fill(vd_stat *out, const struct ceph_statx *stx) {
    out->ino = stx->stx_ino;
    out->mode = stx->stx_mode;
    out->nlink = stx->stx_nlink;
    out->uid = stx->stx_uid;
    out->gid = stx->stx_gid;
    out->size = stx->stx_size;
    out->mtime_sec = stx->stx_mtime.tv_sec;
    out->mtime_nsec = stx->stx_mtime.tv_nsec;
}

int vd_stat_path(struct ceph_mount_info *c, const char *path, vd_stat *out, int nofollow) {
    struct ceph_statx stx;
    int r = ceph_statx(c, path, &stx, CEPH_STATX_BASIC_STATS, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
    if (r == 0) fill(out, &stx);
    return r;
}
int vd_fstat(struct ceph_mount_info *c, int fd, vd_stat *out) {
    struct ceph_statx stx;
    int r = ceph_fstatx(c, fd, &stx, CEPH_STATX_BASIC_STATS, 0);
    if (r == 0) fill(out, &stx);
    return r;
}
int vd_mkdir(struct ceph_mount_info *c, const char *p, uint32_t m) { return ceph_mkdir(c, p, (mode_t)m); }
int vd_rmdir(struct ceph_mount_info *c, const char *p) { return ceph_rmdir(c, p); }
int vd_rename(struct ceph_mount_info *c, const char *f, const char *t) { return ceph_rename(c, f, t); }
int vd_unlink(struct ceph_mount_info *c, const char *p) { return ceph_unlink(c, p); }
int vd_symlink(struct ceph_mount_info *c, const char *t, const char *l) { return ceph_symlink(c, t, l); }
int vd_readlink(struct ceph_mount_info *c, const char *p, char *b, int64_t s) { return ceph_readlink(c, p, b, s); }
int vd_chmod(struct ceph_mount_info *c, const char *p, uint32_t m) { return ceph_chmod(c, p, (mode_t)m); }

int vd_open(struct ceph_mount_info *c, const char *p, int f, uint32_t m) { return ceph_open(c, p, f, (mode_t)m); }
int vd_close(struct ceph_mount_info *c, int fd) { return ceph_close(c, fd); }
int vd_read(struct ceph_mount_info *c, int fd, char *b, int64_t s, int64_t o) { return ceph_read(c, fd, b, s, o); }
int vd_write(struct ceph_mount_info *c, int fd, const char *b, int64_t s, int64_t o) { return ceph_write(c, fd, b, s, o); }
int vd_fsync(struct ceph_mount_info *c, int fd, int d) { return ceph_fsync(c, fd, d); }
int vd_ftruncate(struct ceph_mount_info *c, int fd, int64_t s) { return ceph_ftruncate(c, fd, s); }
int vd_flock(struct ceph_mount_info *c, int fd, int op, uint64_t owner) { return ceph_flock(c, fd, op, owner); }

int vd_getxattr(struct ceph_mount_info *c, const char *p, const char *n, void *v, size_t s) { return ceph_getxattr(c, p, n, v, s); }
int vd_setxattr(struct ceph_mount_info *c, const char *p, const char *n, const void *v, size_t s, int f) { return ceph_setxattr(c, p, n, v, s, f); }
int vd_removexattr(struct ceph_mount_info *c, const char *p, const char *n) { return ceph_removexattr(c, p, n); }

int vd_opendir(struct ceph_mount_info *c, const char *p, struct ceph_dir_result **d) { return ceph_opendir(c, p, d); }
int vd_closedir(struct ceph_mount_info *c, struct ceph_dir_result *d) { return ceph_closedir(c, d); }

int vd_readdir_batch(struct ceph_mount_info *c, struct ceph_dir_result *d, char *out, size_t outlen) {
    /* Each record takes at most 1 + 255 + 1 bytes, so this many always fit. */
    int count = (int)(outlen / (2 + sizeof(((struct dirent *)0)->d_name)));
    if (count < 1) return -ERANGE;
    if (count > 256) count = 256;
    struct dirent entries[256];
    int r = ceph_getdents(c, d, (char *)entries, count * (int)sizeof(struct dirent));
    if (r <= 0) return r;
    size_t used = 0;
    for (int i = 0; i < r / (int)sizeof(struct dirent); i++) {
        size_t len = strnlen(entries[i].d_name, sizeof(entries[i].d_name));
        out[used++] = (char)entries[i].d_type;
        memcpy(out + used, entries[i].d_name, len);
        used += len;
        out[used++] = 0;
    }
    return (int)used;
}

int vd_mds_command(struct ceph_mount_info *c, const char *spec, const char **cmd, size_t cmdlen,
                   const char *inbuf, size_t inbuflen, char **outbuf, size_t *outbuflen,
                   char **outs, size_t *outslen) {
    return ceph_mds_command(c, spec, cmd, cmdlen, inbuf, inbuflen, outbuf, outbuflen, outs, outslen);
}
void vd_buffer_free(char *b) { ceph_buffer_free(b); }

int vd_link(struct ceph_mount_info *c, const char *e, const char *n) { return ceph_link(c, e, n); }

/* Low level. The statx flags are 0 (sync with the MDS), and lookups never
   follow: ll_lookup returns the inode a name refers to, whatever its type. */
#define VD_WANT CEPH_STATX_BASIC_STATS

int vd_ll_walk(struct ceph_mount_info *c, const char *path, struct Inode **out, vd_stat *st) {
    struct ceph_statx stx;
    int r = ceph_ll_walk(c, path, out, &stx, VD_WANT, AT_SYMLINK_NOFOLLOW, ceph_mount_perms(c));
    if (r == 0 && st) fill(st, &stx);
    return r;
}
int vd_ll_lookup(struct ceph_mount_info *c, struct Inode *p, const char *n, struct Inode **out, vd_stat *st) {
    struct ceph_statx stx;
    int r = ceph_ll_lookup(c, p, n, out, &stx, VD_WANT, 0, ceph_mount_perms(c));
    if (r == 0 && st) fill(st, &stx);
    return r;
}
int vd_ll_put(struct ceph_mount_info *c, struct Inode *in) { return ceph_ll_put(c, in); }
int vd_ll_getattr(struct ceph_mount_info *c, struct Inode *in, vd_stat *st) {
    struct ceph_statx stx;
    int r = ceph_ll_getattr(c, in, &stx, VD_WANT, 0, ceph_mount_perms(c));
    if (r == 0) fill(st, &stx);
    return r;
}
int vd_ll_setattr(struct ceph_mount_info *c, struct Inode *in, int mask, uint32_t mode, uint32_t uid, uint32_t gid) {
    struct ceph_statx stx;
    memset(&stx, 0, sizeof stx);
    int m = 0;
    if (mask & 1) { stx.stx_mode = (uint16_t)mode; m |= CEPH_SETATTR_MODE; }
    if (mask & 2) { stx.stx_uid = uid; m |= CEPH_SETATTR_UID; }
    if (mask & 4) { stx.stx_gid = gid; m |= CEPH_SETATTR_GID; }
    return ceph_ll_setattr(c, in, &stx, m, ceph_mount_perms(c));
}
int vd_ll_mkdir(struct ceph_mount_info *c, struct Inode *p, const char *n, uint32_t mode, struct Inode **out, vd_stat *st) {
    struct ceph_statx stx;
    int r = ceph_ll_mkdir(c, p, n, (mode_t)mode, out, &stx, VD_WANT, 0, ceph_mount_perms(c));
    if (r == 0 && st) fill(st, &stx);
    return r;
}
int vd_ll_create(struct ceph_mount_info *c, struct Inode *p, const char *n, uint32_t mode, int flags,
                 struct Inode **out, struct Fh **fh, vd_stat *st) {
    struct ceph_statx stx;
    int r = ceph_ll_create(c, p, n, (mode_t)mode, flags, out, fh, &stx, VD_WANT, 0, ceph_mount_perms(c));
    if (r == 0 && st) fill(st, &stx);
    return r;
}
int vd_ll_symlink(struct ceph_mount_info *c, struct Inode *p, const char *n, const char *t, struct Inode **out, vd_stat *st) {
    struct ceph_statx stx;
    int r = ceph_ll_symlink(c, p, n, t, out, &stx, VD_WANT, 0, ceph_mount_perms(c));
    if (r == 0 && st) fill(st, &stx);
    return r;
}
int vd_ll_readlink(struct ceph_mount_info *c, struct Inode *in, char *b, size_t s) {
    return ceph_ll_readlink(c, in, b, s, ceph_mount_perms(c));
}
int vd_ll_unlink(struct ceph_mount_info *c, struct Inode *p, const char *n) { return ceph_ll_unlink(c, p, n, ceph_mount_perms(c)); }
int vd_ll_rmdir(struct ceph_mount_info *c, struct Inode *p, const char *n) { return ceph_ll_rmdir(c, p, n, ceph_mount_perms(c)); }
int vd_ll_opendir(struct ceph_mount_info *c, struct Inode *in, struct ceph_dir_result **d) {
    return ceph_ll_opendir(c, in, d, ceph_mount_perms(c));
}
int vd_ll_open(struct ceph_mount_info *c, struct Inode *in, int flags, struct Fh **fh) {
    return ceph_ll_open(c, in, flags, fh, ceph_mount_perms(c));
}
int vd_ll_read(struct ceph_mount_info *c, struct Fh *fh, int64_t o, uint64_t s, char *b) { return ceph_ll_read(c, fh, o, s, b); }
int vd_ll_write(struct ceph_mount_info *c, struct Fh *fh, int64_t o, uint64_t s, const char *b) { return ceph_ll_write(c, fh, o, s, b); }
int vd_ll_fsync(struct ceph_mount_info *c, struct Fh *fh, int d) { return ceph_ll_fsync(c, fh, d); }
int vd_ll_close(struct ceph_mount_info *c, struct Fh *fh) { return ceph_ll_close(c, fh); }
