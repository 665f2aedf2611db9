/* cache.h - file data between the FUSE layer and the store.
 *
 * The FUSE layer (src/fs*.c) calls only this for file contents; the cache talks
 * to the backend only through drivers/store.h. The cache owns its store.
 *
 * A struct cache_file is one open handle. All handles of one key share one
 * underlying cache entry (one cache file), so two writers see each other's bytes
 * and a reader of a file being written sees the written bytes.
 *
 * Keys here are store keys (no leading '/'). Metadata (struct lexfs_meta) is what
 * goes up with the object: the fs layer builds it (mode/uid/gid/mtime/xattr) and
 * may change it while the object is pending (cache_set_meta) so the upload carries
 * the final attributes.
 */
#ifndef LEXFS_CACHE_H
#define LEXFS_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "drivers/store.h"

struct cache_conf {
	const char *dir;             /* cache directory (created if missing) */
	uint64_t size_limit;         /* bytes; 0: unlimited */
	int writeback_s;             /* -1: sync mode (default); >= 0: write-back delay */
	unsigned upload_concurrency; /* parts in flight per mount; default 4 */
	uint64_t part_size;          /* wanted part size; default 8 MiB (adapted) */
	uint64_t max_file_size;      /* 0: unlimited; EFBIG past it */
	uint64_t readahead_max;      /* read-ahead window cap; default 64 MiB */
	int stat_ttl_ms;             /* metadata cache TTLs */
	int list_ttl_ms;
	struct events *events;       /* NULL: none; FileUploaded after each upload */
};

struct cache;
struct cache_file;
struct events;

/* Takes ownership of *st (NULLed) in all cases. */
int cache_create(const struct cache_conf *conf, struct store **st, struct cache **out);
/* Drains pending uploads (write-back), then destroys the store. */
void cache_destroy(struct cache *c);
struct store *cache_store(struct cache *c);

/* Open key. `existing` is the object's info when it exists (NULL for a new file,
 * which is created empty). O_TRUNC empties. For a new file, `meta` and
 * `content_type` are what the upload will carry (copied). */
int cache_open(struct cache *c, const char *key, int flags, const struct lexfs_objinfo *existing,
	       const struct lexfs_meta *meta, const char *content_type, struct cache_file **out);
/* Bytes read (short at EOF) or -errno. */
ssize_t cache_read(struct cache_file *f, char *buf, size_t size, off_t off);
/* Bytes written or -errno (ENOSPC when the cache disk is full, EFBIG past max). */
ssize_t cache_write(struct cache_file *f, const char *buf, size_t size, off_t off);
int cache_ftruncate(struct cache_file *f, off_t size);
/* Make the object durable if dirty (sync mode) or journal it (write-back).
 * -EIO when the upload failed; the data stays in the cache. */
int cache_flush(struct cache_file *f);
/* Always uploads now if dirty. */
int cache_fsync(struct cache_file *f);
/* Close the handle (no upload here if flush already ran; otherwise as flush). */
int cache_release(struct cache_file *f);

/* State of a key the cache holds as open or not yet uploaded. 0 and fills *size,
 * meta (caller frees with meta_free) and content type; -ENOENT if the cache
 * does not hold the key. */
int cache_pending(struct cache *c, const char *key, uint64_t *size, struct lexfs_meta *meta,
		  char *content_type, size_t ctlen);
/* The keys under prefix (at any depth) that the cache holds and a listing of the
 * store may not show as they are: open, or closed and not yet uploaded. One page
 * (caller frees with list_page_free), items with size, content type and metadata
 * (has_meta), mtime 0. 0 or -ENOMEM. */
int cache_held_list(struct cache *c, const char *prefix, struct lexfs_list_page *out);
/* Apply rename / unlink / metadata change to a pending key. 1: the cache held it
 * and the change is done (the store need not be touched for it); 0: not held. */
int cache_rename(struct cache *c, const char *from, const char *to);
int cache_unlink(struct cache *c, const char *key);
int cache_set_meta(struct cache *c, const char *key, const struct lexfs_meta *meta);

/* Drop clean cached data and metadata (user.lexfs.invalidate). */
void cache_invalidate(struct cache *c, const char *prefix);
/* Status as JSON text (pending uploads, bytes in flight, cache use, errors,
 * store stats). Caller frees. */
char *cache_stats_json(struct cache *c);

#endif
