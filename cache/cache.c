/* cache.c - cache entries and their I/O: open handles, the cache file, lazy fetch.
 *
 * One struct centry per key (cache_int.h has the states, locks and invariants).
 * A handle (struct cache_file) points at its entry; all handles of one key share
 * it, so they see one cache file.
 *
 * Layout of the cache directory:
 *   lock          flock()ed by the mount that owns the directory
 *   journal       write-back journal (journal.c)
 *   data/<id>     one cache file per entry that has one; id is 16 hex digits
 *
 * Data path:
 *   read, no cache file    ranged GET straight into the caller's buffer (through
 *                          read-ahead, readahead.c)
 *   read, cache file       missing ranges of the original object are fetched first
 *                          (FETCH_CHUNK-aligned), then pread
 *   write                  pwrite into the cache file; the written range becomes
 *                          valid without fetching anything; a sequential writer
 *                          feeds the streaming upload (upload.c)
 *   flush / fsync          sync mode: upload now (upload.c); write-back: make the
 *                          cache file complete, fdatasync it, journal it, and let the
 *                          upload engine send it after the delay
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cache/cache_int.h"
#include "cache/meta_cache.h"
#include "src/log.h"

#define FETCH_CHUNK (1024 * 1024)

struct cache_file {
	struct cache *c;
	struct centry *e;
	bool writable;
	bool flushed;	     /* flush ran and this handle changed nothing since */
	struct ra_state *ra; /* read-ahead state of this handle (REMOTE reads) */
};

/* ---- small helpers ---------------------------------------------------------- */

int64_t cache_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

char *centry_key_dup(struct centry *e)
{
	char *k;

	pthread_mutex_lock(&e->keylock);
	k = strdup(e->key);
	pthread_mutex_unlock(&e->keylock);
	return k;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		char save = tmp[i];

		tmp[i] = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		tmp[i] = save;
	}
	return 0;
}

void cache_data_path(const struct cache *c, uint64_t id, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%016" PRIx64, c->datadir, id);
}

/* ---- range sets ------------------------------------------------------------- */

void rs_init(struct rangeset *rs)
{
	rs->v = NULL;
	rs->n = rs->cap = 0;
}

void rs_free(struct rangeset *rs)
{
	free(rs->v);
	rs_init(rs);
}

int rs_add(struct rangeset *rs, uint64_t start, uint64_t end)
{
	size_t i, j;

	if (start >= end)
		return 0;
	/* first range that ends at or after start (touching merges) */
	for (i = 0; i < rs->n && rs->v[i].end < start; i++)
		;
	/* ranges i..j-1 overlap or touch [start, end) */
	for (j = i; j < rs->n && rs->v[j].start <= end; j++) {
		if (rs->v[j].start < start)
			start = rs->v[j].start;
		if (rs->v[j].end > end)
			end = rs->v[j].end;
	}
	if (j > i) {
		rs->v[i].start = start;
		rs->v[i].end = end;
		memmove(&rs->v[i + 1], &rs->v[j], (rs->n - j) * sizeof(rs->v[0]));
		rs->n -= j - i - 1;
		return 0;
	}
	if (rs->n == rs->cap) {
		size_t ncap = rs->cap ? rs->cap * 2 : 8;
		struct range *nv = realloc(rs->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		rs->v = nv;
		rs->cap = ncap;
	}
	memmove(&rs->v[i + 1], &rs->v[i], (rs->n - i) * sizeof(rs->v[0]));
	rs->v[i].start = start;
	rs->v[i].end = end;
	rs->n++;
	return 0;
}

void rs_clip(struct rangeset *rs, uint64_t limit)
{
	while (rs->n > 0 && rs->v[rs->n - 1].start >= limit)
		rs->n--;
	if (rs->n > 0 && rs->v[rs->n - 1].end > limit)
		rs->v[rs->n - 1].end = limit;
}

bool rs_first_gap(const struct rangeset *rs, uint64_t start, uint64_t end, uint64_t *gs,
		  uint64_t *ge)
{
	for (size_t i = 0; i < rs->n && start < end; i++) {
		if (rs->v[i].end <= start)
			continue;
		if (rs->v[i].start > start) {
			*gs = start;
			*ge = rs->v[i].start < end ? rs->v[i].start : end;
			return true;
		}
		start = rs->v[i].end;
	}
	if (start < end) {
		*gs = start;
		*ge = end;
		return true;
	}
	return false;
}

/* ---- entries ---------------------------------------------------------------- */

static struct centry *centry_new(const char *key)
{
	struct centry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return NULL;
	}
	pthread_mutex_init(&e->keylock, NULL);
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	e->fd = -1;
	rs_init(&e->valid);
	meta_init(&e->meta);
	return e;
}

/* Close and (unless it must survive for the journal) delete the cache file. */
static void centry_free(struct cache *c, struct centry *e)
{
	if (e->stream) {
		pthread_mutex_lock(&e->lock);
		upload_stream_abort(c, e);
		pthread_mutex_unlock(&e->lock);
	}
	if (e->fd >= 0) {
		close(e->fd);
		if (!e->dirty || !e->hashed || e->poison) {
			char path[4096];

			cache_data_path(c, e->id, path, sizeof(path));
			unlink(path);
		}
	}
	__atomic_sub_fetch(&c->disk_used, e->disk_bytes, __ATOMIC_RELAXED);
	rs_free(&e->valid);
	meta_free(&e->meta);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->keylock);
	free(e->key);
	free(e);
}

static int tab_grow(struct cache *c)
{
	size_t nsz = c->tabsz * 2;
	struct centry **nt = calloc(nsz, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < c->tabsz; i++) {
		struct centry *e = c->tab[i];

		while (e) {
			struct centry *next = e->hnext;
			size_t b = hash_key(e->key) & (nsz - 1);

			e->hnext = nt[b];
			nt[b] = e;
			e = next;
		}
	}
	free(c->tab);
	c->tab = nt;
	c->tabsz = nsz;
	return 0;
}

/* c->lock held. */
static struct centry *tab_find(struct cache *c, const char *key)
{
	struct centry *e = c->tab[hash_key(key) & (c->tabsz - 1)];

	while (e && strcmp(e->key, key) != 0)
		e = e->hnext;
	return e;
}

/* c->lock held; the entry's key is set. */
static void tab_insert(struct cache *c, struct centry *e)
{
	size_t b;

	if (c->nent >= c->tabsz * 2)
		(void)tab_grow(c); /* a full table is only slower */
	b = hash_key(e->key) & (c->tabsz - 1);
	e->hnext = c->tab[b];
	c->tab[b] = e;
	e->hashed = true;
	c->nent++;
}

/* c->lock held. */
static void tab_remove(struct cache *c, struct centry *e)
{
	struct centry **pp;

	if (!e->hashed)
		return;
	pp = &c->tab[hash_key(e->key) & (c->tabsz - 1)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	e->hnext = NULL;
	e->hashed = false;
	c->nent--;
}

/* c->lock held. LRU of CLEAN entries (refs 0, clean, with a cache file). */
static void lru_unlink(struct cache *c, struct centry *e)
{
	if (!e->lru_prev && c->lru_head != e)
		return;
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct cache *c, struct centry *e)
{
	e->lru_prev = NULL;
	e->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

void centry_hold(struct cache *c, struct centry *e)
{
	pthread_mutex_lock(&c->lock);
	if (__atomic_load_n(&e->refs, __ATOMIC_ACQUIRE) == 0)
		lru_unlink(c, e);
	__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&c->lock);
}

void centry_hold_more(struct centry *e)
{
	__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
}

/* Drop one reference. The last one pins a dirty entry (it must be uploaded), keeps
 * clean cached data on the LRU when a size limit allows caching, and frees the rest. */
void centry_put(struct cache *c, struct centry *e)
{
	bool do_free = false;

	pthread_mutex_lock(&c->lock);
	if (__atomic_load_n(&e->refs, __ATOMIC_ACQUIRE) > 1) {
		/* others hold it, and only holders add references without c->lock */
		__atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	pthread_mutex_lock(&e->lock);
	if (e->hashed && e->dirty && !e->poison) {
		/* the last reference of a dirty entry becomes the pin */
		e->pinned = true;
	} else if (e->hashed && !e->dirty && !e->poison && e->fd >= 0 && !e->busy &&
		   c->conf.size_limit > 0) {
		__atomic_store_n(&e->refs, 0, __ATOMIC_RELEASE);
		e->pinned = false;
		lru_push(c, e);
	} else {
		__atomic_store_n(&e->refs, 0, __ATOMIC_RELEASE);
		e->pinned = false;
		tab_remove(c, e);
		do_free = true;
	}
	pthread_mutex_unlock(&e->lock);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (do_free)
		centry_free(c, e);
}

/* Release the pin of a dirty entry that became clean or was dropped. */
void centry_unpin(struct cache *c, struct centry *e)
{
	bool drop = false;

	pthread_mutex_lock(&c->lock);
	if (e->pinned) {
		e->pinned = false; /* its reference is dropped below */
		drop = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (drop)
		centry_put(c, e);
}

/* Create the cache file of e if it has none. e->lock held. */
static int centry_ensure_file(struct cache *c, struct centry *e)
{
	char path[4096];
	int fd;

	if (e->fd >= 0)
		return 0;
	if (e->id == 0)
		e->id = __atomic_add_fetch(&c->next_id, 1, __ATOMIC_RELAXED);
	cache_data_path(c, e->id, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		int ret = -errno;

		log_err("cache: cannot create %s: %s", path, strerror(-ret));
		return ret;
	}
	if (ftruncate(fd, (off_t)e->size) < 0) {
		int ret = -errno;

		close(fd);
		unlink(path);
		return ret;
	}
	e->fd = fd;
	if (e->remote_exists && e->remote_limit == 0 && !e->dirty)
		e->remote_limit = e->size; /* everything still in the store */
	return 0;
}

/* Account cache-file growth for the size limit; e->lock held. */
static void centry_account(struct cache *c, struct centry *e)
{
	uint64_t now = e->size;

	__atomic_add_fetch(&c->disk_used, now - e->disk_bytes, __ATOMIC_RELAXED);
	e->disk_bytes = now;
}

/* Fetch the missing bytes of [off, off+len) from the store. e->lock held. */
static int centry_fetch(struct cache *c, struct centry *e, uint64_t off, uint64_t len)
{
	uint64_t end, gs, ge;
	char *key = NULL;
	int ret = 0;

	if (off >= e->remote_limit || len == 0)
		return 0;
	end = off + len < e->remote_limit ? off + len : e->remote_limit;
	off -= off % FETCH_CHUNK;
	end = end + (FETCH_CHUNK - 1) - ((end + FETCH_CHUNK - 1) % FETCH_CHUNK);
	if (end > e->remote_limit)
		end = e->remote_limit;
	while (rs_first_gap(&e->valid, off, end, &gs, &ge)) {
		struct lexfs_err err = {0};
		uint64_t got = 0;

		if (!key) {
			key = centry_key_dup(e);
			if (!key)
				return -ENOMEM;
		}
		ret = store_download_fd(c->st, key, gs, ge - gs, e->fd, (off_t)gs, &got, &err);
		if (ret == -ENOENT) {
			/* the original vanished: what was not fetched reads as zeros */
			log_warn("cache: %s vanished from the store while open", key);
			e->remote_limit = 0;
			rs_free(&e->valid);
			ret = 0;
			break;
		}
		if (ret < 0) {
			log_err("cache: fetch of %s [%" PRIu64 ", %" PRIu64 "): %s (%s)", key, gs,
				ge, strerror(-ret), err.message);
			break;
		}
		ret = rs_add(&e->valid, gs, ge);
		if (ret < 0)
			break;
		STAT_ADD(c, st_fetches, 1);
		STAT_ADD(c, st_fetch_bytes, got);
	}
	free(key);
	if (ret == 0 && e->valid.n == 1 && e->valid.v[0].start == 0 &&
	    e->valid.v[0].end >= e->remote_limit) {
		/* everything fetched: forget the bookkeeping */
		e->remote_limit = 0;
		rs_free(&e->valid);
	}
	return ret;
}

int centry_fill_all(struct cache *c, struct centry *e)
{
	if (e->fd < 0)
		return -EBADF;
	return centry_fetch(c, e, 0, e->remote_limit);
}

/* ---- create / destroy ------------------------------------------------------- */

int cache_create(const struct cache_conf *conf, struct store **st, struct cache **out)
{
	struct cache *c = NULL;
	char path[4096];
	int ret;

	*out = NULL;
	if (!conf->dir || !*conf->dir) {
		ret = -EINVAL;
		log_err("cache: no cache directory configured");
		goto fail;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		ret = -ENOMEM;
		goto fail;
	}
	c->conf = *conf;
	if (c->conf.upload_concurrency == 0)
		c->conf.upload_concurrency = 4;
	if (c->conf.part_size == 0)
		c->conf.part_size = 8 * 1024 * 1024;
	if (c->conf.readahead_max == 0)
		c->conf.readahead_max = 64 * 1024 * 1024;
	c->lockfd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->st = *st;
	*st = NULL;
	c->dir = strdup(conf->dir);
	if (!c->dir) {
		ret = -ENOMEM;
		goto fail;
	}
	c->conf.dir = c->dir;
	snprintf(path, sizeof(path), "%s/data", c->dir);
	c->datadir = strdup(path);
	c->tabsz = 256;
	c->tab = calloc(c->tabsz, sizeof(*c->tab));
	if (!c->datadir || !c->tab) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = mkdir_p(c->datadir, 0700);
	if (ret < 0) {
		log_err("cache: cannot create cache directory %s: %s", c->datadir, strerror(-ret));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/lock", c->dir);
	c->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lockfd < 0) {
		ret = -errno;
		log_err("cache: cannot open %s: %s", path, strerror(-ret));
		goto fail;
	}
	if (flock(c->lockfd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_err("cache: cache directory %s is in use by another lexfs mount", c->dir);
		goto fail;
	}
	ret = meta_cache_create(c);
	if (ret < 0)
		goto fail;
	ret = upload_engine_start(c);
	if (ret < 0)
		goto fail;
	/* after the engine: replayed entries are queued on it */
	ret = journal_open(c);
	if (ret < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	if (c) {
		upload_engine_stop(c);
		meta_cache_destroy(c);
		if (c->lockfd >= 0)
			close(c->lockfd);
		free(c->tab);
		free(c->datadir);
		free(c->dir);
		if (c->st)
			store_destroy(c->st);
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
		free(c);
	} else if (*st) {
		store_destroy(*st);
		*st = NULL;
	}
	return ret;
}

void cache_destroy(struct cache *c)
{
	if (!c)
		return;
	/* upload everything pending (write-back: with progress in the log) */
	upload_drain(c);
	upload_engine_stop(c);
	/* whatever remains: clean entries are freed; dirty ones keep their cache
	 * file and journal record for the next mount */
	for (size_t i = 0; i < c->tabsz; i++) {
		struct centry *e = c->tab[i];

		while (e) {
			struct centry *next = e->hnext;

			if (e->dirty && !e->poison)
				log_warn("cache: %s not uploaded; kept for the next mount", e->key);
			if (e->fd >= 0) {
				close(e->fd);
				e->fd = -1;
				if (!e->dirty || e->poison) {
					char path[4096];

					cache_data_path(c, e->id, path, sizeof(path));
					unlink(path);
				}
			}
			if (e->stream) {
				pthread_mutex_lock(&e->lock);
				upload_stream_abort(c, e);
				pthread_mutex_unlock(&e->lock);
			}
			rs_free(&e->valid);
			meta_free(&e->meta);
			pthread_cond_destroy(&e->cond);
			pthread_mutex_destroy(&e->lock);
			pthread_mutex_destroy(&e->keylock);
			free(e->key);
			free(e);
			e = next;
		}
	}
	journal_close(c);
	meta_cache_destroy(c);
	free(c->tab);
	if (c->lockfd >= 0)
		close(c->lockfd);
	store_destroy(c->st);
	free(c->datadir);
	free(c->dir);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct store *cache_store(struct cache *c)
{
	return c->st;
}

/* ---- lookup helpers for the other files --------------------------------------- */

/* Find key and hold it; NULL when the cache does not hold it. */
struct centry *cache_find_hold(struct cache *c, const char *key)
{
	struct centry *e;

	pthread_mutex_lock(&c->lock);
	e = tab_find(c, key);
	if (e) {
		if (__atomic_load_n(&e->refs, __ATOMIC_ACQUIRE) == 0)
			lru_unlink(c, e);
		__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

/* Insert an entry made by journal replay (dirty, pinned). */
int cache_adopt(struct cache *c, const char *key, uint64_t id, int fd, uint64_t size,
		const struct lexfs_meta *meta, const char *ct, struct centry **out)
{
	struct centry *e = centry_new(key);
	struct centry *old;

	if (!e)
		return -ENOMEM;
	if (meta && meta_copy(&e->meta, meta) < 0) {
		centry_free(c, e);
		return -ENOMEM;
	}
	snprintf(e->content_type, sizeof(e->content_type), "%s", ct ? ct : "");
	e->id = id;
	e->fd = fd;
	e->size = size;
	e->dirty = true;
	e->journaled = true;
	e->disk_bytes = size;
	pthread_mutex_lock(&c->lock);
	old = tab_find(c, key);
	if (old)
		tab_remove(c, old); /* a later record for the same key wins */
	tab_insert(c, e);
	e->pinned = true;
	__atomic_store_n(&e->refs, 1, __ATOMIC_RELEASE);
	STAT_ADD(c, disk_used, size);
	if (id >= c->next_id)
		c->next_id = id;
	pthread_mutex_unlock(&c->lock);
	if (old) {
		/* never uploaded: drop it (it is pinned, so nobody else holds it) */
		pthread_mutex_lock(&old->lock);
		old->dirty = false;
		pthread_mutex_unlock(&old->lock);
		centry_unpin(c, old);
	}
	*out = e;
	return 0;
}

/* ---- open / read / write ------------------------------------------------------ */

/* A clean entry whose object changed in the store: take the new size, metadata and
 * etag; cached bytes are dropped and fetched again by range. e->lock held. */
static int centry_refresh(struct cache *c, struct centry *e, const struct lexfs_objinfo *oi)
{
	struct lexfs_meta m;

	meta_init(&m);
	if (meta_copy(&m, &oi->meta) < 0)
		return -ENOMEM;
	if (e->fd >= 0) {
		if (ftruncate(e->fd, 0) < 0 || ftruncate(e->fd, (off_t)oi->size) < 0) {
			int ret = -errno;

			meta_free(&m);
			return ret;
		}
		rs_free(&e->valid);
		e->remote_limit = oi->size;
	}
	e->size = oi->size;
	e->remote_exists = true;
	meta_free(&e->meta);
	e->meta = m;
	snprintf(e->content_type, sizeof(e->content_type), "%s", oi->content_type);
	snprintf(e->etag, sizeof(e->etag), "%s", oi->etag);
	e->gen++;
	centry_account(c, e);
	return 0;
}

int cache_open(struct cache *c, const char *key, int flags, const struct lexfs_objinfo *existing,
	       const struct lexfs_meta *meta, const char *content_type, struct cache_file **out)
{
	struct cache_file *f;
	struct centry *e, *fresh = NULL;
	bool writable = (flags & O_ACCMODE) != O_RDONLY, fresh_used = false;
	int ret;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	e = tab_find(c, key);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		fresh = centry_new(key);
		if (!fresh)
			goto nomem;
		if (existing) {
			fresh->size = existing->size;
			fresh->remote_exists = true;
			snprintf(fresh->etag, sizeof(fresh->etag), "%s", existing->etag);
			snprintf(fresh->content_type, sizeof(fresh->content_type), "%s",
				 existing->content_type);
			if (meta_copy(&fresh->meta, &existing->meta) < 0)
				goto nomem;
		} else {
			fresh->dirty = true; /* a new file is created, even when empty */
			snprintf(fresh->content_type, sizeof(fresh->content_type), "%s",
				 content_type ? content_type : "");
			if (meta && meta_copy(&fresh->meta, meta) < 0)
				goto nomem;
		}
		pthread_mutex_lock(&c->lock);
		e = tab_find(c, key); /* somebody may have been faster */
		if (!e) {
			e = fresh;
			fresh = NULL;
			fresh_used = true;
			tab_insert(c, e);
		}
	}
	if (__atomic_load_n(&e->refs, __ATOMIC_ACQUIRE) == 0)
		lru_unlink(c, e);
	__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&c->lock);
	if (fresh)
		centry_free(c, fresh);

	f->c = c;
	f->e = e;
	f->writable = writable;
	pthread_mutex_lock(&e->lock);
	if (existing && !e->dirty && e->handles == 0 && !e->busy && !fresh_used &&
	    (existing->size != e->size ||
	     (existing->etag[0] && e->etag[0] && strcmp(existing->etag, e->etag) != 0))) {
		/* cached clean data of an object that changed in the store: forget it,
		 * the new bytes are fetched by range when needed */
		ret = centry_refresh(c, e, existing);
		if (ret < 0)
			goto fail_locked;
	}
	if (writable || e->dirty) {
		ret = centry_ensure_file(c, e);
		if (ret < 0)
			goto fail_locked;
	}
	if (writable && (flags & O_TRUNC) && (e->size > 0 || !e->dirty)) {
		while (e->busy)
			pthread_cond_wait(&e->cond, &e->lock);
		if (ftruncate(e->fd, 0) < 0) {
			ret = -errno;
			goto fail_locked;
		}
		if (e->stream)
			upload_stream_abort(c, e);
		e->size = 0;
		e->remote_limit = 0;
		rs_free(&e->valid);
		e->dirty = true;
		e->gen++;
		e->seq_end = 0;
		centry_account(c, e);
	}
	e->handles++;
	if (writable)
		e->writers++;
	pthread_mutex_unlock(&e->lock);
	*out = f;
	return 0;

fail_locked:
	pthread_mutex_unlock(&e->lock);
	centry_put(c, e);
	free(f);
	return ret;
nomem:
	if (fresh)
		centry_free(c, fresh);
	free(f);
	return -ENOMEM;
}

ssize_t cache_read(struct cache_file *f, char *buf, size_t size, off_t off)
{
	struct cache *c = f->c;
	struct centry *e = f->e;
	size_t done = 0;
	int ret;

	if (off < 0)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	if (e->fd < 0) {
		uint64_t esize = e->size;
		char *key = centry_key_dup(e);

		pthread_mutex_unlock(&e->lock);
		if (!key)
			return -ENOMEM;
		ret = readahead_read(c, &f->ra, key, esize, buf, size, (uint64_t)off, &done);
		free(key);
		return ret < 0 ? ret : (ssize_t)done;
	}
	if ((uint64_t)off >= e->size) {
		pthread_mutex_unlock(&e->lock);
		return 0;
	}
	if (size > e->size - (uint64_t)off)
		size = e->size - (uint64_t)off;
	ret = centry_fetch(c, e, (uint64_t)off, size);
	while (ret == 0 && done < size) {
		ssize_t n = pread(e->fd, buf + done, size - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -errno;
		else if (n == 0)
			break; /* cannot happen: the file is as long as size */
		else
			done += (size_t)n;
	}
	pthread_mutex_unlock(&e->lock);
	if (ret < 0)
		return ret;
	return (ssize_t)done;
}

ssize_t cache_write(struct cache_file *f, const char *buf, size_t size, off_t off)
{
	struct cache *c = f->c;
	struct centry *e = f->e;
	size_t done = 0;
	int ret = 0;

	if (!f->writable)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	if (c->conf.max_file_size && (uint64_t)off + size > c->conf.max_file_size)
		return -EFBIG;
	if (size == 0)
		return 0;
	ret = upload_wait_room(c, e, (uint64_t)off + size);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&e->lock);
	if (e->poison) {
		ret = e->poison;
		goto out;
	}
	ret = centry_ensure_file(c, e);
	if (ret < 0)
		goto out;
	while (done < size) {
		ssize_t n = pwrite(e->fd, buf + done, size - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	if (ret == -ENOSPC || ret == -EDQUOT) {
		/* a file that could not be written whole is never uploaded: the
		 * store keeps the old version (or nothing), not a partial object */
		log_err("cache: cache disk full while writing %s; the file will not be "
			"uploaded",
			e->key);
		e->poison = ret;
		if (e->stream && !e->busy)
			upload_stream_abort(c, e); /* else the uploader sees the poison */
		/* the bytes are worthless now: give the disk space back at once (close
		 * returns before release, and the next writer needs the room) */
		if (ftruncate(e->fd, 0) == 0) {
			e->size = 0;
			e->remote_limit = 0;
			rs_free(&e->valid);
			centry_account(c, e);
		}
		STAT_ADD(c, st_enospc, 1);
		goto out;
	}
	if (done > 0) {
		uint64_t end = (uint64_t)off + done;

		if ((uint64_t)off < e->remote_limit)
			(void)rs_add(&e->valid, (uint64_t)off,
				     end < e->remote_limit ? end : e->remote_limit);
		if (end > e->size) {
			e->size = end;
			centry_account(c, e);
		}
		e->dirty = true;
		e->gen++;
		f->flushed = false;
		upload_after_write(c, e, (uint64_t)off, done);
		e->seq_end = end;
		ret = 0;
	}
out:
	pthread_mutex_unlock(&e->lock);
	if (done > 0)
		return (ssize_t)done;
	return ret;
}

int cache_ftruncate(struct cache_file *f, off_t size)
{
	struct cache *c = f->c;
	struct centry *e = f->e;
	int ret = 0;

	if (!f->writable)
		return -EBADF;
	if (size < 0)
		return -EINVAL;
	if (c->conf.max_file_size && (uint64_t)size > c->conf.max_file_size)
		return -EFBIG;
	pthread_mutex_lock(&e->lock);
	if (e->poison) {
		ret = e->poison;
		goto out;
	}
	ret = centry_ensure_file(c, e);
	if (ret < 0)
		goto out;
	if ((uint64_t)size == e->size)
		goto out;
	if (ftruncate(e->fd, size) < 0) {
		ret = -errno;
		goto out;
	}
	if ((uint64_t)size < e->remote_limit) {
		e->remote_limit = (uint64_t)size;
		rs_clip(&e->valid, (uint64_t)size);
	}
	upload_after_truncate(c, e, (uint64_t)size);
	e->size = (uint64_t)size;
	e->dirty = true;
	e->gen++;
	f->flushed = false;
	centry_account(c, e);
out:
	pthread_mutex_unlock(&e->lock);
	return ret;
}

/* ---- flush / fsync / release --------------------------------------------------- */

static int do_flush(struct cache_file *f, bool force_upload)
{
	struct cache *c = f->c;
	struct centry *e = f->e;
	int ret;

	pthread_mutex_lock(&e->lock);
	if (e->poison) {
		ret = e->poison;
		pthread_mutex_unlock(&e->lock);
		return ret;
	}
	if (!e->dirty || !e->hashed) {
		pthread_mutex_unlock(&e->lock);
		return 0;
	}
	pthread_mutex_unlock(&e->lock);
	if (c->conf.writeback_s >= 0 && !force_upload)
		return upload_schedule(c, e);
	return centry_upload(c, e);
}

int cache_flush(struct cache_file *f)
{
	int ret;

	if (!f->writable)
		return 0;
	ret = do_flush(f, false);
	f->flushed = true;
	return ret;
}

int cache_fsync(struct cache_file *f)
{
	int ret;

	if (!f->writable)
		return 0;
	ret = do_flush(f, true);
	if (ret == 0)
		f->flushed = true;
	return ret;
}

int cache_release(struct cache_file *f)
{
	struct cache *c = f->c;
	struct centry *e = f->e;
	int ret = 0;

	if (f->writable && !f->flushed)
		ret = do_flush(f, false);
	pthread_mutex_lock(&e->lock);
	e->handles--;
	if (f->writable)
		e->writers--;
	if (e->handles == 0 && e->dirty && e->hashed && !e->poison && !e->journaled &&
	    c->conf.writeback_s < 0) {
		/* sync mode, the upload failed: keep it across restarts, retry later */
		pthread_mutex_unlock(&e->lock);
		if (journal_put(c, e) == 0)
			upload_enqueue(c, e, cache_now_ms() + 2000);
	} else if (e->handles == 0 && e->poison && e->hashed) {
		/* nothing to retry: forget the file */
		pthread_mutex_unlock(&e->lock);
		pthread_mutex_lock(&c->lock);
		pthread_mutex_lock(&e->lock);
		tab_remove(c, e);
		pthread_mutex_unlock(&e->lock);
		pthread_mutex_unlock(&c->lock);
		journal_drop(c, e);
	} else {
		pthread_mutex_unlock(&e->lock);
	}
	readahead_free(f->ra);
	centry_put(c, e);
	free(f);
	return ret;
}

/* ---- pending keys: rename / unlink / metadata ---------------------------------- */

int cache_pending(struct cache *c, const char *key, uint64_t *size, struct lexfs_meta *meta,
		  char *content_type, size_t ctlen)
{
	struct centry *e = cache_find_hold(c, key);
	int ret = 0;

	if (!e)
		return -ENOENT;
	pthread_mutex_lock(&e->lock);
	if (size)
		*size = e->size;
	if (meta) {
		meta_init(meta);
		ret = meta_copy(meta, &e->meta);
	}
	if (content_type && ctlen)
		snprintf(content_type, ctlen, "%s", e->content_type);
	pthread_mutex_unlock(&e->lock);
	centry_put(c, e);
	return ret;
}

int cache_held_list(struct cache *c, const char *prefix, struct lexfs_list_page *out)
{
	size_t plen = strlen(prefix), cap = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock); /* keys do not change while it is held */
	for (size_t i = 0; i < c->tabsz && !ret; i++) {
		for (struct centry *e = c->tab[i]; e && !ret; e = e->hnext) {
			struct lexfs_objinfo *it;

			if (strncmp(e->key, prefix, plen) != 0 || !e->key[plen])
				continue;
			pthread_mutex_lock(&e->lock);
			if (e->handles == 0 && !e->dirty && e->remote_exists) {
				pthread_mutex_unlock(&e->lock); /* cached clean data */
				continue;
			}
			if (out->n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct lexfs_objinfo *nv = realloc(out->items, ncap * sizeof(*nv));

				if (!nv) {
					pthread_mutex_unlock(&e->lock);
					ret = -ENOMEM;
					break;
				}
				out->items = nv;
				cap = ncap;
			}
			it = &out->items[out->n];
			memset(it, 0, sizeof(*it));
			meta_init(&it->meta);
			it->key = strdup(e->key);
			it->size = e->size;
			it->has_meta = true;
			snprintf(it->content_type, sizeof(it->content_type), "%s", e->content_type);
			if (!it->key || meta_copy(&it->meta, &e->meta) < 0) {
				objinfo_free(it);
				ret = -ENOMEM;
			} else {
				out->n++;
			}
			pthread_mutex_unlock(&e->lock);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (ret)
		list_page_free(out);
	return ret;
}

/* Wait until nobody uploads e, then own it (busy). e->lock held. */
static void centry_own(struct centry *e)
{
	while (e->busy)
		pthread_cond_wait(&e->cond, &e->lock);
	e->busy = true;
}

static void centry_disown(struct centry *e)
{
	e->busy = false;
	pthread_cond_broadcast(&e->cond);
}

/* Detach e from the table: it will never be uploaded. */
static void centry_detach(struct cache *c, struct centry *e)
{
	pthread_mutex_lock(&c->lock);
	tab_remove(c, e);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&e->lock);
	centry_own(e);
	if (e->stream)
		upload_stream_abort(c, e);
	centry_disown(e);
	pthread_mutex_unlock(&e->lock);
	journal_drop(c, e);
	centry_unpin(c, e);
}

int cache_rename(struct cache *c, const char *from, const char *to)
{
	struct centry *e, *victim;
	int ret;
	char *nk;

	if (strcmp(from, to) == 0)
		return 0;
	e = cache_find_hold(c, from);
	if (!e)
		return 0;
	nk = strdup(to);
	if (!nk) {
		centry_put(c, e);
		return -ENOMEM;
	}
	pthread_mutex_lock(&e->lock);
	centry_own(e); /* no upload runs while the name changes */
	ret = e->remote_exists ? 0 : 1;
	pthread_mutex_unlock(&e->lock);

	/* whatever the cache held under `to` is replaced */
	victim = cache_find_hold(c, to);
	if (victim) {
		centry_detach(c, victim);
		centry_put(c, victim);
	}
	pthread_mutex_lock(&c->lock);
	if (e->hashed) {
		tab_remove(c, e);
		pthread_mutex_lock(&e->keylock);
		free(e->key);
		e->key = nk;
		nk = NULL;
		pthread_mutex_unlock(&e->keylock);
		tab_insert(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	free(nk);

	pthread_mutex_lock(&e->lock);
	e->gen++;
	if (e->stream)
		upload_stream_abort(c, e); /* the parts went to the old name */
	centry_disown(e);
	pthread_mutex_unlock(&e->lock);
	if (e->journaled)
		(void)journal_put(c, e); /* the pending upload now has the new name */
	/* Neither name is in the store as the caches knew it: `from` is gone, and
	 * `to` is the cache's until its upload (lookups and listings ask the cache
	 * first, cache_pending and cache_held_list). */
	meta_cache_note_delete(c, from);
	meta_cache_note_delete(c, to);
	centry_put(c, e);
	return ret;
}

int cache_unlink(struct cache *c, const char *key)
{
	struct centry *e = cache_find_hold(c, key);
	int ret;

	meta_cache_note_delete(c, key);
	if (!e)
		return 0;
	pthread_mutex_lock(&c->lock);
	tab_remove(c, e); /* new opens get a new entry */
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&e->lock);
	centry_own(e); /* an upload in flight decides remote_exists */
	ret = e->remote_exists ? 0 : 1;
	centry_disown(e);
	pthread_mutex_unlock(&e->lock);
	centry_detach(c, e);
	centry_put(c, e);
	return ret;
}

int cache_set_meta(struct cache *c, const char *key, const struct lexfs_meta *meta)
{
	struct centry *e = cache_find_hold(c, key);
	struct lexfs_meta copy;
	int ret;

	meta_cache_forget(c, key);
	if (!e)
		return 0;
	meta_init(&copy);
	if (meta && meta_copy(&copy, meta) < 0) {
		centry_put(c, e);
		return -ENOMEM;
	}
	pthread_mutex_lock(&e->lock);
	centry_own(e);
	meta_free(&e->meta);
	e->meta = copy;
	e->gen++;
	e->meta_gen++;
	ret = e->dirty ? 1 : 0;
	centry_disown(e);
	pthread_mutex_unlock(&e->lock);
	if (ret == 1 && e->journaled)
		(void)journal_put(c, e);
	centry_put(c, e);
	return ret;
}

/* ---- invalidate / stats ------------------------------------------------------- */

void cache_invalidate(struct cache *c, const char *prefix)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	struct centry *e, *prev;

	meta_cache_invalidate(c, prefix);
	/* drop clean cached data (entries on the LRU have no reference) */
	pthread_mutex_lock(&c->lock);
	for (e = c->lru_tail; e; e = prev) {
		prev = e->lru_prev;
		if (plen && strncmp(e->key, prefix, plen) != 0)
			continue;
		lru_unlink(c, e);
		tab_remove(c, e);
		pthread_mutex_unlock(&c->lock);
		centry_free(c, e);
		pthread_mutex_lock(&c->lock);
		prev = c->lru_tail; /* the list may have changed meanwhile */
	}
	/* A clean entry that only a worker still holds for a moment (no handle, so
	 * not on the LRU yet) would serve the next open from its copy: take it out
	 * of the table, so that open starts afresh; it is freed when let go. Entries
	 * with handles keep them: a writer's bytes must stay where uploads find them. */
	for (size_t i = 0; i < c->tabsz; i++) {
		struct centry *next;

		for (e = c->tab[i]; e; e = next) {
			bool idle_clean;

			next = e->hnext;
			if (plen && strncmp(e->key, prefix, plen) != 0)
				continue;
			pthread_mutex_lock(&e->lock);
			idle_clean = !e->dirty && !e->busy && !e->pinned && e->handles == 0;
			pthread_mutex_unlock(&e->lock);
			if (idle_clean)
				tab_remove(c, e);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* Evict clean cached entries (LRU tail first) until disk_used + want fits the
 * limit. Returns true when it fits. */
bool cache_evict_for(struct cache *c, uint64_t want)
{
	bool fits;

	pthread_mutex_lock(&c->lock);
	while (c->conf.size_limit && c->disk_used + want > c->conf.size_limit && c->lru_tail) {
		struct centry *e = c->lru_tail;

		lru_unlink(c, e);
		tab_remove(c, e);
		STAT_ADD(c, st_evictions, 1);
		pthread_mutex_unlock(&c->lock);
		centry_free(c, e);
		pthread_mutex_lock(&c->lock);
	}
	fits = !c->conf.size_limit || c->disk_used + want <= c->conf.size_limit;
	pthread_mutex_unlock(&c->lock);
	return fits;
}

char *cache_stats_json(struct cache *c)
{
	json_t *root = json_object(), *files = json_array(), *stj = NULL;
	uint64_t pending = 0, dirty_bytes = 0, inflight = 0, open_files = 0, cached = 0;
	char *store_txt, *out = NULL;

	if (!root || !files)
		goto out;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->tabsz; i++) {
		for (struct centry *e = c->tab[i]; e; e = e->hnext) {
			uint64_t total = __atomic_load_n(&e->up_total, __ATOMIC_RELAXED);
			uint64_t done = __atomic_load_n(&e->up_done, __ATOMIC_RELAXED);
			bool busy = __atomic_load_n(&e->busy, __ATOMIC_RELAXED);

			unsigned refs = __atomic_load_n(&e->refs, __ATOMIC_RELAXED);

			if (refs == 0)
				cached++;
			else if (!e->pinned || refs > 1)
				open_files++;
			if (!e->dirty)
				continue;
			pending++;
			dirty_bytes += e->size;
			if (busy || e->stream)
				inflight += total > done ? total - done : 0;
			json_array_append_new(
			    files,
			    json_pack("{s:s, s:I, s:I, s:I, s:b, s:i}", "key", e->key, "size",
				      (json_int_t)e->size, "uploaded", (json_int_t)done, "total",
				      (json_int_t)total, "uploading", busy || e->stream != NULL,
				      "error", e->last_err));
		}
	}
	json_object_set_new(root, "mode",
			    json_string(c->conf.writeback_s >= 0 ? "writeback" : "sync"));
	json_object_set_new(root, "pending_uploads", json_integer((json_int_t)pending));
	json_object_set_new(root, "dirty_bytes", json_integer((json_int_t)dirty_bytes));
	json_object_set_new(root, "bytes_in_flight", json_integer((json_int_t)inflight));
	json_object_set_new(root, "open_files", json_integer((json_int_t)open_files));
	json_object_set_new(root, "cached_files", json_integer((json_int_t)cached));
	json_object_set_new(root, "cache_used", json_integer((json_int_t)STAT_GET(c, disk_used)));
	json_object_set_new(root, "cache_limit", json_integer((json_int_t)c->conf.size_limit));
	json_object_set_new(root, "uploads", json_integer((json_int_t)STAT_GET(c, st_uploads)));
	json_object_set_new(root, "upload_bytes",
			    json_integer((json_int_t)STAT_GET(c, st_upload_bytes)));
	json_object_set_new(root, "upload_errors",
			    json_integer((json_int_t)STAT_GET(c, st_upload_errors)));
	json_object_set_new(root, "streams", json_integer((json_int_t)STAT_GET(c, st_streams)));
	json_object_set_new(root, "stream_fallbacks",
			    json_integer((json_int_t)STAT_GET(c, st_stream_fallbacks)));
	json_object_set_new(root, "parts", json_integer((json_int_t)STAT_GET(c, st_parts)));
	json_object_set_new(root, "part_bytes",
			    json_integer((json_int_t)STAT_GET(c, st_part_bytes)));
	json_object_set_new(root, "fetches", json_integer((json_int_t)STAT_GET(c, st_fetches)));
	json_object_set_new(root, "fetch_bytes",
			    json_integer((json_int_t)STAT_GET(c, st_fetch_bytes)));
	json_object_set_new(root, "direct_reads",
			    json_integer((json_int_t)STAT_GET(c, st_direct_reads)));
	json_object_set_new(root, "direct_bytes",
			    json_integer((json_int_t)STAT_GET(c, st_direct_bytes)));
	json_object_set_new(root, "readahead_reads",
			    json_integer((json_int_t)STAT_GET(c, st_ra_reads)));
	json_object_set_new(root, "readahead_bytes",
			    json_integer((json_int_t)STAT_GET(c, st_ra_bytes)));
	json_object_set_new(root, "readahead_hits",
			    json_integer((json_int_t)STAT_GET(c, st_ra_hits)));
	json_object_set_new(root, "evictions", json_integer((json_int_t)STAT_GET(c, st_evictions)));
	json_object_set_new(root, "enospc", json_integer((json_int_t)STAT_GET(c, st_enospc)));
	json_object_set_new(root, "space_waits", json_integer((json_int_t)STAT_GET(c, st_waits)));
	pthread_mutex_unlock(&c->lock);
	json_object_set_new(root, "files", files);
	files = NULL;
	meta_cache_stats(c, root);
	store_txt = store_stats_json(c->st);
	if (store_txt) {
		stj = json_loads(store_txt, 0, NULL);
		free(store_txt);
	}
	json_object_set_new(root, "store", stj ? stj : json_object());
	out = json_dumps(root, JSON_COMPACT);
out:
	json_decref(files);
	json_decref(root);
	return out;
}
