/* meta_cache.c - stat, negative and directory-listing caches with TTLs.
 *
 * Two hash tables under one leaf lock (mc->lock; nothing else is taken while it is
 * held, so any caller may call in with any lock held):
 *
 *   stats  key -> what store_info said (an objinfo), or "absent" (negative entry),
 *          until now + stat_ttl_ms
 *   lists  directory prefix ("" or "dir/") -> the complete listing with delimiter
 *          "/" as one page, until now + list_ttl_ms
 *
 * A listing put here also fills the stat table with every object that carries its
 * metadata (has_meta), so `ls -l` of a directory needs no HEAD per file.
 *
 * Invariants: an expired entry is never returned (it is dropped when met); our own
 * changes of a key (meta_cache_forget) drop the key's stat entry, its directory
 * marker's, its own listing as a directory, and the entries and listings of every
 * ancestor directory; an answer from before such a change is not put (epoch);
 * each table holds at most MC_MAX entries (past it, expired entries go, then all).
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "cache/meta_cache.h"

#define MC_BUCKETS 4096
#define MC_MAX 200000

struct mc_stat {
	struct mc_stat *next;
	char *key;
	bool negative;
	struct lexfs_objinfo oi;
	int64_t expires;
};

struct mc_list {
	struct mc_list *next;
	char *prefix;
	struct lexfs_list_page page;
	int64_t expires;
};

struct meta_cache {
	pthread_mutex_t lock;
	struct mc_stat *stats[MC_BUCKETS];
	struct mc_list *lists[MC_BUCKETS];
	size_t nstats, nlists;
	uint64_t epoch; /* moved on by every forget and invalidate */
	uint64_t stat_hits, neg_hits, stat_misses, list_hits, list_misses;
};

static size_t bucket(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)(h % MC_BUCKETS);
}

/* Deep copy of an objinfo (key and metadata duplicated). */
static int oi_copy(struct lexfs_objinfo *dst, const struct lexfs_objinfo *src)
{
	*dst = *src;
	dst->key = NULL;
	meta_init(&dst->meta);
	if (src->key) {
		dst->key = strdup(src->key);
		if (!dst->key)
			return -ENOMEM;
	}
	if (meta_copy(&dst->meta, &src->meta) < 0) {
		free(dst->key);
		dst->key = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void stat_free(struct mc_stat *s)
{
	free(s->key);
	objinfo_free(&s->oi);
	free(s);
}

static void list_free(struct mc_list *l)
{
	free(l->prefix);
	list_page_free(&l->page);
	free(l);
}

static int page_copy(struct lexfs_list_page *dst, const struct lexfs_list_page *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src->n == 0)
		return 0;
	dst->items = calloc(src->n, sizeof(*dst->items));
	if (!dst->items)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		if (oi_copy(&dst->items[i], &src->items[i]) < 0) {
			dst->n = i;
			list_page_free(dst);
			return -ENOMEM;
		}
	}
	dst->n = src->n;
	return 0;
}

static int item_cmp(const void *a, const void *b)
{
	const struct lexfs_objinfo *x = a, *y = b;

	return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

/* Index of key in page (sorted), or -(insertion point) - 1. */
static long page_find(const struct lexfs_list_page *page, const char *key)
{
	size_t lo = 0, hi = page->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(page->items[mid].key ? page->items[mid].key : "", key);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

/* Insert a copy of it into page at its place, replacing an item of the same key. */
static int page_insert(struct lexfs_list_page *page, const struct lexfs_objinfo *it)
{
	long at = page_find(page, it->key);
	struct lexfs_objinfo copy, *nv;
	size_t pos;

	if (oi_copy(&copy, it) < 0)
		return -ENOMEM;
	if (at >= 0) {
		objinfo_free(&page->items[at]);
		page->items[at] = copy;
		return 0;
	}
	pos = (size_t)(-at - 1);
	nv = realloc(page->items, (page->n + 1) * sizeof(*nv));
	if (!nv) {
		objinfo_free(&copy);
		return -ENOMEM;
	}
	memmove(nv + pos + 1, nv + pos, (page->n - pos) * sizeof(*nv));
	nv[pos] = copy;
	page->items = nv;
	page->n++;
	return 0;
}

/* mc->lock held. */
static struct mc_stat **stat_slot(struct meta_cache *mc, const char *key)
{
	struct mc_stat **pp = &mc->stats[bucket(key)];

	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

static struct mc_list **list_slot(struct meta_cache *mc, const char *prefix)
{
	struct mc_list **pp = &mc->lists[bucket(prefix)];

	while (*pp && strcmp((*pp)->prefix, prefix) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void stat_remove(struct meta_cache *mc, const char *key)
{
	struct mc_stat **pp = stat_slot(mc, key), *s = *pp;

	if (s) {
		*pp = s->next;
		stat_free(s);
		mc->nstats--;
	}
}

static void list_remove(struct meta_cache *mc, const char *prefix)
{
	struct mc_list **pp = list_slot(mc, prefix), *l = *pp;

	if (l) {
		*pp = l->next;
		list_free(l);
		mc->nlists--;
	}
}

/* Drop entries under prefix ("" all); with only_expired, just the expired ones. */
static void drop_where(struct meta_cache *mc, const char *prefix, bool only_expired, int64_t now)
{
	size_t plen = prefix ? strlen(prefix) : 0;

	for (size_t b = 0; b < MC_BUCKETS; b++) {
		for (struct mc_stat **pp = &mc->stats[b]; *pp;) {
			struct mc_stat *s = *pp;

			if ((only_expired ? s->expires <= now : true) &&
			    strncmp(s->key, prefix ? prefix : "", plen) == 0) {
				*pp = s->next;
				stat_free(s);
				mc->nstats--;
			} else {
				pp = &s->next;
			}
		}
		for (struct mc_list **pp = &mc->lists[b]; *pp;) {
			struct mc_list *l = *pp;

			if ((only_expired ? l->expires <= now : true) &&
			    strncmp(l->prefix, prefix ? prefix : "", plen) == 0) {
				*pp = l->next;
				list_free(l);
				mc->nlists--;
			} else {
				pp = &l->next;
			}
		}
	}
}

static void make_room(struct meta_cache *mc)
{
	if (mc->nstats < MC_MAX && mc->nlists < MC_MAX)
		return;
	drop_where(mc, "", true, cache_now_ms());
	if (mc->nstats >= MC_MAX || mc->nlists >= MC_MAX)
		drop_where(mc, "", false, 0);
}

int meta_cache_create(struct cache *c)
{
	struct meta_cache *mc = calloc(1, sizeof(*mc));

	if (!mc)
		return -ENOMEM;
	pthread_mutex_init(&mc->lock, NULL);
	c->mc = mc;
	return 0;
}

void meta_cache_destroy(struct cache *c)
{
	struct meta_cache *mc = c->mc;

	if (!mc)
		return;
	drop_where(mc, "", false, 0);
	pthread_mutex_destroy(&mc->lock);
	free(mc);
	c->mc = NULL;
}

int meta_cache_stat_get(struct cache *c, const char *key, struct lexfs_objinfo *out)
{
	struct meta_cache *mc = c->mc;
	struct mc_stat *s;
	int ret = 0;

	if (!mc || c->conf.stat_ttl_ms <= 0)
		return 0;
	pthread_mutex_lock(&mc->lock);
	s = *stat_slot(mc, key);
	if (s && s->expires <= cache_now_ms()) {
		stat_remove(mc, key);
		s = NULL;
	}
	if (!s) {
		mc->stat_misses++;
	} else if (s->negative) {
		mc->neg_hits++;
		ret = -ENOENT;
	} else if (oi_copy(out, &s->oi) == 0) {
		mc->stat_hits++;
		ret = 1;
	}
	pthread_mutex_unlock(&mc->lock);
	return ret;
}

/* mc->lock held. */
static void stat_put_locked(struct cache *c, struct meta_cache *mc, const char *key,
			    const struct lexfs_objinfo *oi, int64_t expires)
{
	struct mc_stat **pp, *s;

	stat_remove(mc, key);
	make_room(mc);
	s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->key = strdup(key);
	if (!s->key || (oi && oi_copy(&s->oi, oi) < 0)) {
		free(s->key);
		free(s);
		return;
	}
	s->negative = oi == NULL;
	s->expires = expires;
	pp = &mc->stats[bucket(key)];
	s->next = *pp;
	*pp = s;
	mc->nstats++;
}

uint64_t meta_cache_epoch(struct cache *c)
{
	struct meta_cache *mc = c->mc;
	uint64_t e;

	if (!mc)
		return 0;
	pthread_mutex_lock(&mc->lock);
	e = mc->epoch;
	pthread_mutex_unlock(&mc->lock);
	return e;
}

void meta_cache_stat_put(struct cache *c, const char *key, const struct lexfs_objinfo *oi,
			 uint64_t epoch)
{
	struct meta_cache *mc = c->mc;

	if (!mc || c->conf.stat_ttl_ms <= 0)
		return;
	pthread_mutex_lock(&mc->lock);
	if (mc->epoch == epoch)
		stat_put_locked(c, mc, key, oi, cache_now_ms() + c->conf.stat_ttl_ms);
	pthread_mutex_unlock(&mc->lock);
}

static struct mc_list *list_live(struct meta_cache *mc, const char *prefix, int64_t now);

int meta_cache_list_get(struct cache *c, const char *prefix, struct lexfs_list_page *out)
{
	struct meta_cache *mc = c->mc;
	struct mc_list *l;
	int ret = 0;

	if (!mc || c->conf.list_ttl_ms <= 0)
		return 0;
	pthread_mutex_lock(&mc->lock);
	l = list_live(mc, prefix, cache_now_ms());
	if (!l) {
		mc->list_misses++;
	} else if (page_copy(out, &l->page) == 0) {
		mc->list_hits++;
		ret = 1;
	}
	pthread_mutex_unlock(&mc->lock);
	return ret;
}

void meta_cache_list_put(struct cache *c, const char *prefix, const struct lexfs_list_page *all,
			 uint64_t epoch)
{
	struct meta_cache *mc = c->mc;
	struct mc_list *l, **pp;
	int64_t now = cache_now_ms();

	if (!mc)
		return;
	pthread_mutex_lock(&mc->lock);
	if (mc->epoch != epoch)
		goto out;
	/* a listing that carries metadata answers stat for its objects */
	if (c->conf.stat_ttl_ms > 0) {
		for (size_t i = 0; i < all->n; i++) {
			const struct lexfs_objinfo *it = &all->items[i];

			if (!it->is_prefix && it->has_meta && it->key)
				stat_put_locked(c, mc, it->key, it, now + c->conf.stat_ttl_ms);
		}
	}
	if (c->conf.list_ttl_ms <= 0)
		goto out;
	list_remove(mc, prefix);
	make_room(mc);
	l = calloc(1, sizeof(*l));
	if (!l)
		goto out;
	l->prefix = strdup(prefix);
	if (!l->prefix || page_copy(&l->page, all) < 0) {
		free(l->prefix);
		free(l);
		goto out;
	}
	/* kept in key order, so lookups and our own insertions can bisect */
	if (l->page.n > 1)
		qsort(l->page.items, l->page.n, sizeof(*l->page.items), item_cmp);
	l->expires = now + c->conf.list_ttl_ms;
	pp = &mc->lists[bucket(prefix)];
	l->next = *pp;
	*pp = l;
	mc->nlists++;
out:
	pthread_mutex_unlock(&mc->lock);
}

void meta_cache_forget(struct cache *c, const char *key)
{
	struct meta_cache *mc = c->mc;
	size_t n = strlen(key);
	char *buf;

	if (!mc)
		return;
	buf = malloc(n + 2);
	pthread_mutex_lock(&mc->lock);
	mc->epoch++;
	if (!buf) {
		drop_where(mc, "", false, 0); /* out of memory: forget everything */
		goto out;
	}
	stat_remove(mc, key);
	/* the key as a directory ("a/b" -> "a/b/"): its marker entry and listing */
	memcpy(buf, key, n + 1);
	if (n > 0 && key[n - 1] != '/') {
		buf[n] = '/';
		buf[n + 1] = '\0';
	}
	stat_remove(mc, buf);
	list_remove(mc, buf);
	/* Every ancestor directory: a new key can make "a/" and "a/b/" appear (as
	 * implicit directories) and a removed one make them vanish, so their entries
	 * and listings are stale too. Parent of "a/b/c" is "a/b/", then "a/", then "". */
	for (size_t len = strlen(buf); len > 0;) {
		char *slash = len > 1 ? memrchr(buf, '/', len - 1) : NULL;

		len = slash ? (size_t)(slash - buf) + 1 : 0;
		buf[len] = '\0';
		if (len > 0)
			stat_remove(mc, buf);
		list_remove(mc, buf);
	}
out:
	pthread_mutex_unlock(&mc->lock);
	free(buf);
}

/* mc->lock held. The cached, unexpired listing of prefix, or NULL. */
static struct mc_list *list_live(struct meta_cache *mc, const char *prefix, int64_t now)
{
	struct mc_list *l = *list_slot(mc, prefix);

	if (l && l->expires <= now) {
		list_remove(mc, prefix);
		l = NULL;
	}
	return l;
}

void meta_cache_note_put(struct cache *c, const char *key, const struct lexfs_objinfo *oi)
{
	struct meta_cache *mc = c->mc;
	int64_t now = cache_now_ms();
	struct lexfs_objinfo it;
	size_t len = strlen(key);
	char *buf;

	if (!mc)
		return;
	buf = malloc(len + 1);
	pthread_mutex_lock(&mc->lock);
	mc->epoch++;
	if (!buf) {
		drop_where(mc, "", false, 0);
		goto out;
	}
	if (c->conf.stat_ttl_ms > 0)
		stat_put_locked(c, mc, key, oi, now + c->conf.stat_ttl_ms); /* replaces */
	else
		stat_remove(mc, key);
	/* The object goes into its directory's listing, then each directory into its
	 * parent's as a prefix: "a/b/c" -> listing "a/b/" gets "a/b/c", "a/" gets
	 * "a/b/", "" gets "a/". A listing that cannot take it is dropped. */
	memcpy(buf, key, len + 1);
	it = *oi;
	it.key = buf;
	/* a marker "a/b/" shows in a delimited listing of "a/" as a common prefix */
	it.is_prefix = len > 0 && key[len - 1] == '/';
	for (;;) {
		char *slash = len > 1 ? memrchr(buf, '/', len - 1) : NULL;
		size_t plen = slash ? (size_t)(slash - buf) + 1 : 0;
		char saved = buf[plen];
		struct mc_list *l;

		buf[plen] = '\0'; /* buf is the directory now ... */
		l = list_live(mc, buf, now);
		buf[plen] = saved; /* ... and the item again */
		if (l && (!it.is_prefix || page_find(&l->page, buf) < 0) &&
		    page_insert(&l->page, &it) < 0) {
			buf[plen] = '\0';
			list_remove(mc, buf);
		}
		if (plen == 0)
			break;
		buf[plen] = '\0';
		stat_remove(mc, buf); /* the directory exists now, implicitly or not */
		memset(&it, 0, sizeof(it));
		it.key = buf;
		it.is_prefix = true;
		len = plen;
	}
out:
	pthread_mutex_unlock(&mc->lock);
	free(buf);
}

void meta_cache_note_delete(struct cache *c, const char *key)
{
	struct meta_cache *mc = c->mc;
	size_t n = strlen(key);
	const char *slash = n > 1 ? memrchr(key, '/', n - 1) : NULL;
	size_t plen = slash ? (size_t)(slash - key) + 1 : 0;
	struct mc_list *l;
	char *dkey;
	bool emptied = true;

	if (!mc)
		return;
	dkey = strndup(key, plen);
	if (!dkey) {
		meta_cache_forget(c, key);
		return;
	}
	pthread_mutex_lock(&mc->lock);
	mc->epoch++;
	if (c->conf.stat_ttl_ms > 0)
		stat_put_locked(c, mc, key, NULL, cache_now_ms() + c->conf.stat_ttl_ms);
	else
		stat_remove(mc, key);
	l = list_live(mc, dkey, cache_now_ms());
	if (l) {
		long at = page_find(&l->page, key);

		if (at >= 0) {
			objinfo_free(&l->page.items[at]);
			memmove(&l->page.items[at], &l->page.items[at + 1],
				(l->page.n - (size_t)at - 1) * sizeof(*l->page.items));
			l->page.n--;
		}
		/* anything but the directory's own marker left in it? */
		for (size_t i = 0; i < l->page.n && emptied; i++)
			if (strcmp(l->page.items[i].key ? l->page.items[i].key : "", dkey) != 0)
				emptied = false;
	}
	pthread_mutex_unlock(&mc->lock);
	if (emptied)
		meta_cache_forget(c, key); /* the directory may be gone: drop upwards */
	free(dkey);
}

int meta_cache_list_find(struct cache *c, const char *dkey, const char *key,
			 struct lexfs_objinfo *out)
{
	struct meta_cache *mc = c->mc;
	size_t n = strlen(key);
	struct mc_list *l;
	char *asdir;
	long at;
	int ret;

	if (!mc || c->conf.list_ttl_ms <= 0)
		return 0;
	asdir = malloc(n + 2);
	if (!asdir)
		return 0;
	memcpy(asdir, key, n);
	asdir[n] = '/';
	asdir[n + 1] = '\0';
	pthread_mutex_lock(&mc->lock);
	l = list_live(mc, dkey, cache_now_ms());
	if (!l) {
		ret = 0;
	} else if (page_find(&l->page, asdir) >= 0) {
		ret = 2; /* a directory hides a file of the same name (fs_dir.c) */
	} else {
		at = page_find(&l->page, key);
		ret = at >= 0 ? 1 : -ENOENT;
		memset(out, 0, sizeof(*out));
		if (at >= 0 && l->page.items[at].has_meta && oi_copy(out, &l->page.items[at]) < 0)
			ret = 0;
	}
	if (ret != 0)
		mc->list_hits++;
	pthread_mutex_unlock(&mc->lock);
	free(asdir);
	return ret;
}

void meta_cache_invalidate(struct cache *c, const char *prefix)
{
	struct meta_cache *mc = c->mc;

	if (!mc)
		return;
	pthread_mutex_lock(&mc->lock);
	mc->epoch++;
	drop_where(mc, prefix ? prefix : "", false, 0);
	pthread_mutex_unlock(&mc->lock);
}

void meta_cache_stats(struct cache *c, struct json_t *root)
{
	struct meta_cache *mc = c->mc;
	json_t *o;

	if (!mc)
		return;
	o = json_object();
	if (!o)
		return;
	pthread_mutex_lock(&mc->lock);
	json_object_set_new(o, "stat_entries", json_integer((json_int_t)mc->nstats));
	json_object_set_new(o, "list_entries", json_integer((json_int_t)mc->nlists));
	json_object_set_new(o, "stat_hits", json_integer((json_int_t)mc->stat_hits));
	json_object_set_new(o, "negative_hits", json_integer((json_int_t)mc->neg_hits));
	json_object_set_new(o, "stat_misses", json_integer((json_int_t)mc->stat_misses));
	json_object_set_new(o, "list_hits", json_integer((json_int_t)mc->list_hits));
	json_object_set_new(o, "list_misses", json_integer((json_int_t)mc->list_misses));
	pthread_mutex_unlock(&mc->lock);
	json_object_set_new(root, "metadata_cache", o);
}
