/* readahead.c - reads of objects without a cache file. */
#include "config.h"

#include <stdlib.h>

#include "cache/cache_int.h"

int readahead_read(struct cache *c, struct ra_state **ra, const char *key, uint64_t size,
		   char *buf, size_t len, uint64_t off, size_t *got)
{
	int ret;

	*got = 0;
	ret = store_read(c->st, key, off, len, buf, got, NULL);
	pthread_mutex_lock(&c->lock);
	c->st_direct_reads++;
	c->st_direct_bytes += *got;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void readahead_free(struct ra_state *ra)
{
	free(ra);
}
