// A narrow C facade over libcephfs.
//
// libcephfs.h refuses to compile unless glibc was configured with
// _FILE_OFFSET_BITS=64, and defining that inside a Clang module map breaks the
// Glibc module. So libcephfs.h is included only by ccephfs.c, which is built
// with -D_FILE_OFFSET_BITS=64; Swift sees this header, which has no
// dependency on the offset size.
#ifndef CCEPHFS_H
#define CCEPHFS_H

#include <stddef.h>
#include <stdint.h>

struct ceph_mount_info;
struct ceph_dir_result;
struct Inode;
struct Fh;

typedef struct vd_stat {
    uint64_t ino;
    uint32_t mode;
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
    uint64_t size;
    int64_t mtime_sec;
    int64_t mtime_nsec;
} vd_stat;

// The cluster argument is a rados_t; void* keeps librados out of this module.
int vd_create_from_rados(struct ceph_mount_info **cmount, void *cluster);
int vd_conf_set(struct ceph_mount_info *cmount, const char *option, const char *value);
int vd_conf_get(struct ceph_mount_info *cmount, const char *option, char *buf, size_t len);
int vd_init(struct ceph_mount_info *cmount);
int vd_select_filesystem(struct ceph_mount_info *cmount, const char *fs_name);
int vd_mount(struct ceph_mount_info *cmount, const char *root);
int vd_unmount(struct ceph_mount_info *cmount);
int vd_release(struct ceph_mount_info *cmount);
void vd_shutdown(struct ceph_mount_info *cmount);
int vd_abort_conn(struct ceph_mount_info *cmount);
uint64_t vd_get_instance_id(struct ceph_mount_info *cmount);

int vd_stat_path(struct ceph_mount_info *cmount, const char *path, vd_stat *out, int nofollow);
int vd_fstat(struct ceph_mount_info *cmount, int fd, vd_stat *out);
int vd_mkdir(struct ceph_mount_info *cmount, const char *path, uint32_t mode);
int vd_rmdir(struct ceph_mount_info *cmount, const char *path);
int vd_rename(struct ceph_mount_info *cmount, const char *from, const char *to);
int vd_unlink(struct ceph_mount_info *cmount, const char *path);
int vd_symlink(struct ceph_mount_info *cmount, const char *target, const char *linkpath);
int vd_readlink(struct ceph_mount_info *cmount, const char *path, char *buf, int64_t size);
int vd_chmod(struct ceph_mount_info *cmount, const char *path, uint32_t mode);

int vd_open(struct ceph_mount_info *cmount, const char *path, int flags, uint32_t mode);
int vd_close(struct ceph_mount_info *cmount, int fd);
int vd_read(struct ceph_mount_info *cmount, int fd, char *buf, int64_t size, int64_t offset);
int vd_write(struct ceph_mount_info *cmount, int fd, const char *buf, int64_t size, int64_t offset);
int vd_fsync(struct ceph_mount_info *cmount, int fd, int dataonly);
int vd_ftruncate(struct ceph_mount_info *cmount, int fd, int64_t size);
int vd_flock(struct ceph_mount_info *cmount, int fd, int operation, uint64_t owner);

int vd_getxattr(struct ceph_mount_info *cmount, const char *path, const char *name, void *value, size_t size);
int vd_setxattr(struct ceph_mount_info *cmount, const char *path, const char *name, const void *value, size_t size, int flags);
int vd_removexattr(struct ceph_mount_info *cmount, const char *path, const char *name);

int vd_opendir(struct ceph_mount_info *cmount, const char *path, struct ceph_dir_result **dirp);
int vd_closedir(struct ceph_mount_info *cmount, struct ceph_dir_result *dirp);
// Returns 1 with an entry, 0 at the end, or a negative errno. d_type is the dirent type (DT_*).
/* Directory entries, several at once, as records of a type byte, the name and a NUL.
   Returns the bytes used, 0 at the end, or -errno. */
int vd_readdir_batch(struct ceph_mount_info *cmount, struct ceph_dir_result *dirp, char *out, size_t outlen);

int vd_mds_command(struct ceph_mount_info *cmount, const char *mds_spec, const char **cmd, size_t cmdlen,
                   const char *inbuf, size_t inbuflen, char **outbuf, size_t *outbuflen,
                   char **outs, size_t *outslen);
void vd_buffer_free(char *buf);

int vd_link(struct ceph_mount_info *cmount, const char *existing, const char *newname);

/* Inode-based (ceph_ll_*) calls, with the mount's own credentials. Names are
   single components resolved in a parent inode; nothing is followed. Every
   struct Inode returned holds a reference that vd_ll_put drops; every struct Fh
   is closed by vd_ll_close. A vd_stat, where given, is filled on success. */
int vd_ll_walk(struct ceph_mount_info *cmount, const char *path, struct Inode **out, vd_stat *st);
int vd_ll_lookup(struct ceph_mount_info *cmount, struct Inode *parent, const char *name, struct Inode **out, vd_stat *st);
int vd_ll_put(struct ceph_mount_info *cmount, struct Inode *in);
int vd_ll_getattr(struct ceph_mount_info *cmount, struct Inode *in, vd_stat *st);
// mask: 1 mode, 2 uid, 4 gid (CEPH_SETATTR_MODE/UID/GID).
int vd_ll_setattr(struct ceph_mount_info *cmount, struct Inode *in, int mask, uint32_t mode, uint32_t uid, uint32_t gid);
int vd_ll_mkdir(struct ceph_mount_info *cmount, struct Inode *parent, const char *name, uint32_t mode, struct Inode **out, vd_stat *st);
int vd_ll_create(struct ceph_mount_info *cmount, struct Inode *parent, const char *name, uint32_t mode, int flags,
                 struct Inode **out, struct Fh **fh, vd_stat *st);
int vd_ll_symlink(struct ceph_mount_info *cmount, struct Inode *parent, const char *name, const char *target,
                  struct Inode **out, vd_stat *st);
int vd_ll_readlink(struct ceph_mount_info *cmount, struct Inode *in, char *buf, size_t size);
int vd_ll_unlink(struct ceph_mount_info *cmount, struct Inode *parent, const char *name);
int vd_ll_rmdir(struct ceph_mount_info *cmount, struct Inode *parent, const char *name);
int vd_ll_opendir(struct ceph_mount_info *cmount, struct Inode *in, struct ceph_dir_result **dirp);
int vd_ll_open(struct ceph_mount_info *cmount, struct Inode *in, int flags, struct Fh **fh);
int vd_ll_read(struct ceph_mount_info *cmount, struct Fh *fh, int64_t offset, uint64_t size, char *buf);
int vd_ll_write(struct ceph_mount_info *cmount, struct Fh *fh, int64_t offset, uint64_t size, const char *buf);
int vd_ll_fsync(struct ceph_mount_info *cmount, struct Fh *fh, int dataonly);
int vd_ll_close(struct ceph_mount_info *cmount, struct Fh *fh);

#endif
