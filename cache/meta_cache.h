/* meta_cache.h - stat, negative and directory-listing caches with TTLs.
 *
 * The fs layer asks here before it asks the store, and tells it what the store
 * answered. The cache's own writes, renames and deletes (cache_rename,
 * cache_unlink, cache_set_meta, uploads) forget the keys they touch, so nobody
 * sees a stale answer for our own changes. TTLs come from cache_conf
 * (stat_ttl_ms, list_ttl_ms); a TTL of 0 disables that cache.
 */
#ifndef LEXFS_META_CACHE_H
#define LEXFS_META_CACHE_H

#include "cache/cache.h"

struct json_t;

/* Every put takes the epoch read before the store was asked: our own changes
 * (forget, invalidate) move the epoch on, so an answer the store gave before a
 * change of ours is not remembered after it. */
uint64_t meta_cache_epoch(struct cache *c);

/* Stat cache. 1: hit, *out filled (caller frees with objinfo_free); -ENOENT:
 * negative hit (the key is known not to exist); 0: miss. */
int meta_cache_stat_get(struct cache *c, const char *key, struct lexfs_objinfo *out);
/* Remember what store_info answered (oi) or, with oi NULL, that it said ENOENT. */
void meta_cache_stat_put(struct cache *c, const char *key, const struct lexfs_objinfo *oi,
			 uint64_t epoch);

/* Listing cache: the complete listing of a directory prefix ("dir/" or "" for the
 * root) with delimiter "/". 1: hit, *out is a single page holding every item
 * (next_token NULL; caller frees with list_page_free); 0: miss. */
int meta_cache_list_get(struct cache *c, const char *prefix, struct lexfs_list_page *out);
/* Remember a complete listing (the pages' items concatenated in one page).
 * Items with has_meta also fill the stat cache (so ls -l needs no HEAD). */
void meta_cache_list_put(struct cache *c, const char *prefix, const struct lexfs_list_page *all,
			 uint64_t epoch);

/* Our own change of key: drop its stat/negative entry and the listings of every
 * directory above it. */
void meta_cache_forget(struct cache *c, const char *key);
/* Our own upload of key succeeded with these attributes (oi: key ignored): the stat
 * cache gets them, and a cached listing of its directory gets the object (and each
 * cached ancestor listing its directory prefix), so the next lookup of a new name
 * there is answered without a request. */
void meta_cache_note_put(struct cache *c, const char *key, const struct lexfs_objinfo *oi);

/* Our own delete of the object key (not a directory marker) succeeded: it leaves
 * the stat cache (a negative entry) and its directory's cached listing; a
 * directory left without entries may vanish from its parent (an implicit one
 * does), so then the listings above it are dropped instead. */
void meta_cache_note_delete(struct cache *c, const char *key);

/* What the cached listing of directory dkey ("" or "dir/") says of key (a child of
 * it, file form "dir/x"): 0 no listing cached; -ENOENT neither an object nor a
 * directory of that name; 1 an object (*out filled when the listing carried its
 * metadata, has_meta set then; caller frees with objinfo_free); 2 a directory
 * (key + "/" is a prefix or a marker there). */
int meta_cache_list_find(struct cache *c, const char *dkey, const char *key,
			 struct lexfs_objinfo *out);
/* Drop everything under prefix (NULL or "": everything). */
void meta_cache_invalidate(struct cache *c, const char *prefix);

/* Internal to cache/. */
int meta_cache_create(struct cache *c);
void meta_cache_destroy(struct cache *c);
void meta_cache_stats(struct cache *c, struct json_t *root);

#endif
