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
	STAT_ADD(c, st_direct_reads, 1);
	STAT_ADD(c, st_direct_bytes, *got);
	return ret;
}

void readahead_free(struct ra_state *ra)
{
	free(ra);
}
