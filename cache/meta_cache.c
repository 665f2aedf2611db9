/* meta_cache.c - stat, negative and listing caches (M4). */
#include "config.h"

#include <errno.h>
#include <jansson.h>

#include "cache/cache_int.h"
#include "cache/meta_cache.h"

int meta_cache_create(struct cache *c)
{
	return 0;
}

void meta_cache_destroy(struct cache *c)
{
}

void meta_cache_stats(struct cache *c, struct json_t *root)
{
}

int meta_cache_stat_get(struct cache *c, const char *key, struct lexfs_objinfo *out)
{
	return 0;
}

void meta_cache_stat_put(struct cache *c, const char *key, const struct lexfs_objinfo *oi)
{
}

int meta_cache_list_get(struct cache *c, const char *prefix, struct lexfs_list_page *out)
{
	return 0;
}

void meta_cache_list_put(struct cache *c, const char *prefix, const struct lexfs_list_page *all)
{
}

void meta_cache_forget(struct cache *c, const char *key)
{
}

void meta_cache_invalidate(struct cache *c, const char *prefix)
{
}
