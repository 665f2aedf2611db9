/* fs_int.h - what src/fs.c shares with src/fs_xattr.c (not a public interface).
 *
 * A path resolves to one struct fs_obj: the object that holds its attributes
 * (a pending cache entry, a file object, a "dir/" marker, an implicit directory,
 * or the mount root, whose attributes live in memory).
 */
#ifndef LEXFS_FS_INT_H
#define LEXFS_FS_INT_H

#define FUSE_USE_VERSION 31

#include <fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cache/cache.h"
#include "src/fs.h"

struct fs {
	struct fs_conf conf;
	char *prefix; /* normalised: "" or "a/b/" */
	struct cache *cache;
	struct store *st; /* owned by cache */
	int64_t start_time;

	pthread_mutex_t lock;       /* guards the fields below */
	struct lexfs_meta root_meta; /* attributes and xattrs of the mount root */
	char **warned;               /* keys already warned about (bounded) */
	size_t nwarned;
	char **conflicts;            /* keys that are both a file and a prefix (bounded) */
	size_t nconflicts;
};

enum fs_kind {
	FS_NONE = 0,
	FS_ROOT,     /* the mount root */
	FS_PENDING,  /* a file the cache holds (open or not yet uploaded) */
	FS_FILE,     /* a file object (regular or symlink) */
	FS_MARKER,   /* a directory with its "dir/" marker */
	FS_IMPLICIT, /* a directory that only exists as a prefix */
};

struct fs_obj {
	enum fs_kind kind;
	char *key; /* the key holding the attributes ("dir/" for directories) */
	uint64_t size;
	int64_t mtime; /* backend time */
	char etag[96];
	char content_type[128];
	struct lexfs_meta meta;
};

struct fs *fs_self(void);
/* Resolve path; 0, -ENOENT or -errno. Free o with fs_obj_free in every case. */
int fs_lookup(struct fs *fs, const char *path, struct fs_obj *o);
void fs_obj_free(struct fs_obj *o);
bool fs_obj_is_dir(const struct fs_obj *o);
/* Persist o->meta (changed by the caller) wherever the object lives. */
int fs_obj_save_meta(struct fs *fs, struct fs_obj *o);
/* The full st_mode of o (type + permissions; defaults applied). */
mode_t fs_obj_mode(const struct fs *fs, const struct fs_obj *o);

/* xattr operations (src/fs_xattr.c). */
int fs_setxattr(const char *path, const char *name, const char *value, size_t size, int flags);
int fs_getxattr(const char *path, const char *name, char *value, size_t size);
int fs_listxattr(const char *path, char *list, size_t size);
int fs_removexattr(const char *path, const char *name);

#endif
