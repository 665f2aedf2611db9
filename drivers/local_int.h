/* local_int.h - internals shared by the local driver's files (local.c: keys, safe
 * opening, sidecars, objects; local_list.c: listings; local_mpu.c: multipart).
 * The on-disk layout and the rules are described at the top of local.c.
 */
#ifndef LEXFS_LOCAL_INT_H
#define LEXFS_LOCAL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "drivers/driver.h"

#define LOCAL_CHUNK (256 * 1024)
#define LOCAL_KEY_MAX 1024
#define SIDE_FILE "#f.json"
#define SIDE_DIR "#d.json"

struct lexfs_drv {
	int root_fd;
	int meta_fd;
	int tmp_fd;
	int mpu_fd;
	char *root;
	char *base_url;
	char *signing_key;
	size_t signing_keylen;
	int64_t presign_max;
	bool have_openat2;
	bool do_fsync;
	uint64_t seq; /* temp-name counter, __atomic */
};

struct lexfs_mpu {
	char id[33];
	char *key;
	char content_type[128];
	struct lexfs_meta meta;
};

/* A directory entry of a listing. */
struct ent {
	char *name;
	size_t len;
	bool dir;
};

/* Errors: fill err and return -errno (an escape, EXDEV/ELOOP, becomes LEXFS-006). */
int local_fail_errno(struct lexfs_err *err, int e, const char *what, const char *key);
int local_oom(struct lexfs_err *err);

/* Keys: 0 or -EINVAL / -ENAMETOOLONG with LEXFS-006. */
int local_check_key(const char *key, bool allow_empty, struct lexfs_err *err);
bool local_is_marker(const char *key);
/* "a/b" for "a/b" and "a/b/"; "." for the root. */
void local_data_path(const char *key, char *out, size_t outlen);
/* Open path beneath dirfd without leaving it: fd or -errno (-EXDEV/-ELOOP: escape). */
int local_open_beneath(const lexfs_drv *d, int dirfd, const char *path, int flags, mode_t mode);

/* Sidecars and object info. */
bool local_side_exists(const lexfs_drv *d, const char *key);
int local_fill_info(const lexfs_drv *d, const char *key, const struct stat *st,
		    struct lexfs_objinfo *oi);

/* Temp files and the atomic commit of one into place. */
void local_temp_name(lexfs_drv *d, char *out, size_t outlen);
int local_new_temp(lexfs_drv *d, char *tmp, size_t tmplen, const char *key,
		   struct lexfs_err *err);
int local_commit_temp(lexfs_drv *d, const char *key, int fd, const char *tmp, const char *etag,
		      const char *ctype, const struct lexfs_meta *meta,
		      struct lexfs_objinfo *out, struct lexfs_err *err);
int local_write_src(int fd, const struct lexfs_src *src);
int local_copy_range(int in, off_t in_off, int out, uint64_t len);

/* local_list.c */
/* Entries of dirfd (files and directories; no symlinks; no .lexfs at the root)
 * starting with name_prefix, in key order. Free with local_ents_free. */
int local_read_dir(lexfs_drv *d, int dirfd, bool at_root, const char *name_prefix,
		   struct ent **out, size_t *nout);
void local_ents_free(struct ent *v, size_t n);
int local_list(lexfs_drv *d, const char *prefix, const char *delim, const char *token,
	       unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err);

/* local_mpu.c */
void local_mpu_rmdir(lexfs_drv *d, const lexfs_mpu *m);
int local_mp_begin(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
		   lexfs_mpu **out, struct lexfs_err *err);
int local_mp_part(lexfs_drv *d, lexfs_mpu *m, unsigned partno, const struct lexfs_src *src,
		  struct lexfs_err *err);
int local_mp_complete(lexfs_drv *d, lexfs_mpu *m, unsigned nparts, struct lexfs_objinfo *out,
		      struct lexfs_err *err);
int local_mp_abort(lexfs_drv *d, lexfs_mpu *m, struct lexfs_err *err);
int local_mp_list(lexfs_drv *d, const char *prefix, const char *token, unsigned max,
		  struct lexfs_upload_page *out, struct lexfs_err *err);
int local_mp_abort_id(lexfs_drv *d, const char *key, const char *upload_id, struct lexfs_err *err);

#endif
