/* upload.c - the upload engine.
 *
 * M1: whole-file uploads from the cache file (one PUT), in the caller's thread.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "cache/meta_cache.h"
#include "src/log.h"

int centry_upload(struct cache *c, struct centry *e)
{
	struct lexfs_err err = {0};
	struct lexfs_meta meta;
	struct lexfs_put_opts opts = {0};
	struct lexfs_src src = {0};
	char ct[128];
	char *key = NULL;
	uint64_t gen, size;
	int ret;

	meta_init(&meta);
	pthread_mutex_lock(&e->lock);
	while (e->busy)
		pthread_cond_wait(&e->cond, &e->lock);
	if (e->poison) {
		ret = e->poison;
		pthread_mutex_unlock(&e->lock);
		return ret;
	}
	if (!e->dirty || !e->hashed) {
		pthread_mutex_unlock(&e->lock);
		return 0;
	}
	ret = centry_fill_all(c, e);
	if (ret == 0)
		ret = meta_copy(&meta, &e->meta);
	key = centry_key_dup(e);
	if (ret == 0 && !key)
		ret = -ENOMEM;
	if (ret < 0) {
		e->last_err = ret;
		pthread_mutex_unlock(&e->lock);
		goto out;
	}
	gen = e->gen;
	size = e->size;
	snprintf(ct, sizeof(ct), "%s", e->content_type);
	src.fd = e->fd;
	src.off = 0;
	src.len = size;
	e->busy = true;
	e->up_total = size;
	e->up_done = 0;
	pthread_mutex_unlock(&e->lock);

	opts.content_type = ct[0] ? ct : NULL;
	opts.meta = &meta;
	ret = store_upload(c->st, key, &src, &opts, NULL, &err);
	if (ret < 0)
		log_err("cache: upload of %s failed: %s (%s)", key, strerror(-ret), err.message);

	pthread_mutex_lock(&e->lock);
	e->busy = false;
	e->last_err = ret;
	if (ret == 0) {
		e->remote_exists = true;
		e->up_done = size;
		if (e->gen == gen)
			e->dirty = false;
	}
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);

	pthread_mutex_lock(&c->lock);
	if (ret == 0) {
		c->st_uploads++;
		c->st_upload_bytes += size;
	} else {
		c->st_upload_errors++;
	}
	pthread_mutex_unlock(&c->lock);
	meta_cache_forget(c, key);
	if (ret == 0)
		centry_unpin(c, e);
out:
	free(key);
	meta_free(&meta);
	return ret;
}

int upload_engine_start(struct cache *c)
{
	return 0;
}

void upload_engine_stop(struct cache *c)
{
}

void upload_drain(struct cache *c)
{
}

int upload_schedule(struct cache *c, struct centry *e)
{
	return centry_upload(c, e);
}

void upload_enqueue(struct cache *c, struct centry *e, int64_t due_ms)
{
}

int upload_wait_room(struct cache *c, struct centry *e, uint64_t end)
{
	return 0;
}

void upload_after_write(struct cache *c, struct centry *e, uint64_t off, uint64_t len)
{
}

void upload_after_truncate(struct cache *c, struct centry *e, uint64_t size)
{
}

void upload_stream_abort(struct cache *c, struct centry *e)
{
}
