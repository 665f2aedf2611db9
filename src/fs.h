/* fs.h - the FUSE operations: path -> key, POSIX semantics, xattrs.
 *
 * The fs layer owns the cache (which owns the store). main() builds the stack with
 * fs_create() and hands fs_operations() and the struct fs to fuse_new().
 */
#ifndef LEXFS_FS_H
#define LEXFS_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "cache/cache.h"

struct fuse_operations;

struct fs_conf {
	const char *prefix;      /* key prefix of the mount ("" or "photos/2024/") */
	uid_t uid;               /* owner of objects without a uid in metadata */
	gid_t gid;
	mode_t umask;            /* applied to objects without a mode */
	double entry_timeout;    /* kernel caches, seconds */
	double attr_timeout;
	double negative_timeout; /* 0: no negative entries cached by the kernel */
	int64_t presign_expiry_s; /* default expiry of user.lexfs.presigned_url */
	uint64_t max_file_size;   /* 0: unlimited */
	bool read_only;
};

struct fs;

/* Takes ownership of *cache (NULLed) in all cases. */
int fs_create(const struct fs_conf *conf, struct cache **cache, struct fs **out);
void fs_destroy(struct fs *fs);
const struct fuse_operations *fs_operations(void);

#endif
