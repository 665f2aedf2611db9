/* fs_dir.c - directory listings: readdir over store_list pages.
 *
 * A directory handle keeps the listing made at offset 0 (sorted, deduplicated),
 * so a directory larger than one reply is not listed again for every reply, and
 * gives each entry an offset so the attributes of readdirplus reach the kernel:
 * when the driver's listing carries the metadata, `ls -l` costs no HEAD per file;
 * when it does not (S3), the HEADs run in parallel here instead of one after the
 * other in the kernel's lookups. Listings and attributes go through the metadata
 * cache (cache/meta_cache.h), so a second `ls -l` within the TTLs costs nothing.
 *
 * Names that cannot be a path are skipped with one warning per key (fs.c keeps
 * the set); a key that is both a file and a prefix shows as the directory and is
 * remembered, so getattr agrees.
 */
#include "src/fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/meta_cache.h"
#include "src/log.h"
#include "src/pathkey.h"

struct dent {
	char *name;
	bool dir;
	bool held;  /* from the cache (open or not yet uploaded): wins over the listing */
	bool attrs; /* st is complete (listing carried metadata) */
	struct stat st;
	char *key; /* full key, for warnings and the conflict set */
};

struct dents {
	struct dent *v;
	size_t n, cap;
};

static void dents_free(struct dents *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].name);
		free(d->v[i].key);
	}
	free(d->v);
}

static int dents_add(struct fs *fs, struct dents *d, const char *dkey, struct lexfs_objinfo *it,
		     bool held)
{
	size_t plen = strlen(dkey);
	const char *rel = it->key + plen;
	size_t len = strlen(rel);
	const char *why;
	struct dent *e;

	if (strncmp(it->key, dkey, plen) != 0)
		return 0; /* a driver answering outside the prefix: ignore */
	if (it->is_prefix && len > 0 && rel[len - 1] == '/')
		len--;
	if (len == 0 && !it->is_prefix)
		return 0; /* the directory's own marker */
	why = pathkey_name_bad(rel, len);
	if (why) {
		fs_warn_key_once(fs, it->key, why);
		return 0;
	}
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 64;
		struct dent *nv = realloc(d->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		d->v = nv;
		d->cap = ncap;
	}
	e = &d->v[d->n];
	memset(e, 0, sizeof(*e));
	e->name = strndup(rel, len);
	e->key = strndup(it->key, plen + len);
	if (!e->name || !e->key) {
		free(e->name);
		free(e->key);
		return -ENOMEM;
	}
	e->dir = it->is_prefix;
	e->held = held;
	if (!it->is_prefix && it->has_meta) {
		struct fs_obj o = {.kind = FS_FILE, .size = it->size, .mtime = it->mtime};

		o.meta = it->meta;
		fs_obj_stat(fs, &o, &e->st);
		e->attrs = true;
	}
	d->n++;
	return 0;
}

static int dent_cmp(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (x->dir != y->dir)
		return (int)y->dir - (int)x->dir; /* directory first */
	return (int)y->held - (int)x->held; /* then what the cache holds */
}

/* Append the items of page to all (moved: page is left empty). */
static int page_append(struct lexfs_list_page *all, struct lexfs_list_page *page)
{
	struct lexfs_objinfo *nv;

	if (page->n == 0)
		return 0;
	nv = realloc(all->items, (all->n + page->n) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	memcpy(nv + all->n, page->items, page->n * sizeof(*nv));
	all->items = nv;
	all->n += page->n;
	free(page->items);
	page->items = NULL;
	page->n = 0;
	return 0;
}

/* The complete listing of dkey (delimiter "/") as one page, through the listing
 * cache (cache/meta_cache.h). Caller frees with list_page_free. */
static int list_dir(struct fs *fs, const char *dkey, struct lexfs_list_page *all)
{
	uint64_t epoch = meta_cache_epoch(fs->cache);
	struct lexfs_list_page page = {0};
	struct lexfs_err err = {0};
	char *token = NULL;
	int rc;

	memset(all, 0, sizeof(*all));
	if (meta_cache_list_get(fs->cache, dkey, all) == 1)
		return 0;
	do {
		rc = store_list(fs->st, dkey, "/", token, 1000, &page, &err);
		free(token);
		token = NULL;
		if (rc) {
			fs_log_store_fail("list", dkey, rc, &err);
			break;
		}
		rc = page_append(all, &page);
		token = page.next_token;
		page.next_token = NULL;
		list_page_free(&page);
	} while (!rc && token);
	free(token);
	if (rc) {
		list_page_free(all);
		return rc;
	}
	meta_cache_list_put(fs->cache, dkey, all, epoch);
	return 0;
}

/* What the cache holds under dkey and the store may not list yet (a file being
 * written, or closed and waiting for its upload in write-back mode): it shows
 * like any other entry, and a key deeper down shows as its subdirectory. */
static int add_held(struct fs *fs, struct dents *d, const char *dkey)
{
	struct lexfs_list_page held;
	size_t plen = strlen(dkey);
	int rc = cache_held_list(fs->cache, dkey, &held);

	for (size_t i = 0; i < held.n && !rc; i++) {
		struct lexfs_objinfo *it = &held.items[i];
		const char *slash = strchr(it->key + plen, '/');

		if (slash) {
			it->key[slash - it->key + 1] = '\0'; /* "dkey/sub/" */
			it->is_prefix = true;
		}
		rc = dents_add(fs, d, dkey, it, true);
	}
	list_page_free(&held);
	return rc;
}

/* A listing without metadata (S3's ListObjectsV2 has none) would cost the
 * kernel's lookup of every entry one HEAD after the other; here they run
 * FS_HEAD_PARALLEL at a time, answer from the stat cache where it can, and fill
 * it, so readdirplus hands the kernel complete attributes. */
#define FS_HEAD_PARALLEL 16
#define FS_HEAD_BATCH 1000

static int fill_attrs(struct fs *fs, struct dents *d)
{
	const char *keys[FS_HEAD_BATCH];
	struct dent *which[FS_HEAD_BATCH];
	struct lexfs_objinfo *outs;
	int rcs[FS_HEAD_BATCH];
	size_t i = 0;

	outs = calloc(FS_HEAD_BATCH, sizeof(*outs));
	if (!outs)
		return -ENOMEM;
	while (i < d->n) {
		uint64_t epoch = meta_cache_epoch(fs->cache);
		size_t n = 0;

		for (; i < d->n && n < FS_HEAD_BATCH; i++) {
			struct dent *e = &d->v[i];
			struct lexfs_objinfo oi = {0};
			int hit;

			if (e->dir || e->attrs)
				continue;
			hit = meta_cache_stat_get(fs->cache, e->key, &oi);
			if (hit == 1) {
				struct fs_obj o = {.kind = FS_FILE,
						   .size = oi.size,
						   .mtime = oi.mtime,
						   .meta = oi.meta};

				fs_obj_stat(fs, &o, &e->st);
				e->attrs = true;
				objinfo_free(&oi);
			} else if (hit == 0) {
				keys[n] = e->key;
				which[n++] = e;
			}
		}
		if (n == 0)
			continue;
		store_info_many(fs->st, keys, n, FS_HEAD_PARALLEL, outs, rcs);
		for (size_t k = 0; k < n; k++) {
			if (rcs[k] == 0) {
				struct fs_obj o = {.kind = FS_FILE,
						   .size = outs[k].size,
						   .mtime = outs[k].mtime,
						   .meta = outs[k].meta};

				fs_obj_stat(fs, &o, &which[k]->st);
				which[k]->attrs = true;
			}
			if (rcs[k] == 0 || rcs[k] == -ENOENT)
				meta_cache_stat_put(fs->cache, keys[k],
						    rcs[k] == 0 ? &outs[k] : NULL, epoch);
			objinfo_free(&outs[k]);
			memset(&outs[k], 0, sizeof(outs[k]));
		}
	}
	free(outs);
	return 0;
}

/* List the directory once (at offset 0) into d: sorted, bad names dropped, a
 * file hidden by a directory of the same name dropped (and remembered). With
 * `attrs` (readdirplus), every file entry gets its attributes. */
static int load_dents(struct fs *fs, const char *path, bool attrs, struct dents *d)
{
	struct lexfs_list_page all = {0};
	char *dkey = pathkey_key(fs->prefix, path, true);
	size_t out = 0;
	int rc;

	if (!dkey)
		return -ENOMEM;
	rc = list_dir(fs, dkey, &all);
	for (size_t i = 0; i < all.n && !rc; i++)
		rc = dents_add(fs, d, dkey, &all.items[i], false);
	list_page_free(&all);
	if (!rc)
		rc = add_held(fs, d, dkey);
	if (rc)
		goto out;
	if (d->n > 1)
		qsort(d->v, d->n, sizeof(*d->v), dent_cmp);
	for (size_t i = 0; i < d->n; i++) {
		struct dent *e = &d->v[i];

		if (out > 0 && strcmp(e->name, d->v[out - 1].name) == 0) {
			/* Sorted directory first, then what the cache holds: a file after
			 * a directory of its name is hidden by it; the same name twice
			 * (the cache's and the listing's) is one entry. */
			if (d->v[out - 1].dir && !e->dir && !e->held && fs_add_conflict(fs, e->key))
				log_warn("key \"%s\" is both a file and a directory prefix; "
					 "showing the directory",
					 e->key);
			free(e->name);
			free(e->key);
			continue;
		}
		d->v[out++] = *e;
	}
	d->n = out;
	if (attrs)
		rc = fill_attrs(fs, d);
out:
	free(dkey);
	return rc;
}

/* An open directory: its listing, and its place in fs->dirs (so fs_destroy
 * frees those whose RELEASEDIR the kernel dropped at unmount). */
struct fs_dh {
	struct dents d;
	struct fs_dh *prev, *next; /* under fs->lock */
};

int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct fs_dh *dh = calloc(1, sizeof(*dh));

	if (!dh)
		return -ENOMEM;
	pthread_mutex_lock(&fs->lock);
	dh->next = fs->dirs;
	if (fs->dirs)
		fs->dirs->prev = dh;
	fs->dirs = dh;
	fs->ndirs++;
	pthread_mutex_unlock(&fs->lock);
	fi->fh = (uint64_t)(uintptr_t)dh;
	return 0;
}

int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct fs_dh *dh = (struct fs_dh *)(uintptr_t)fi->fh;

	pthread_mutex_lock(&fs->lock);
	if (dh->prev)
		dh->prev->next = dh->next;
	else
		fs->dirs = dh->next;
	if (dh->next)
		dh->next->prev = dh->prev;
	fs->ndirs--;
	pthread_mutex_unlock(&fs->lock);
	dents_free(&dh->d);
	free(dh);
	return 0;
}

/* Offsets: 1 and 2 follow "." and "..", 3 + i follows entry i. The listing is
 * made at offset 0 and kept in the handle, so a directory larger than one reply
 * is not listed again for every reply. Attributes go with the entries
 * (readdirplus) when the listing carried the metadata. */
int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t offset,
	       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fs *fs = fs_self();
	struct dents *d = &((struct fs_dh *)(uintptr_t)fi->fh)->d;
	struct stat dst = {.st_mode = S_IFDIR};
	int rc;

	if (offset == 0) {
		dents_free(d);
		memset(d, 0, sizeof(*d));
		rc = load_dents(fs, path, (flags & FUSE_READDIR_PLUS) != 0, d);
		if (rc)
			return rc;
		if (filler(buf, ".", &dst, 1, 0))
			return 0;
	}
	if (offset <= 1 && filler(buf, "..", &dst, 2, 0))
		return 0;
	for (size_t i = offset > 2 ? (size_t)offset - 2 : 0; i < d->n; i++) {
		struct dent *e = &d->v[i];
		struct stat st = {0};
		bool plus = false;

		if (e->dir) {
			st.st_mode = S_IFDIR;
		} else if (e->attrs) {
			st = e->st;
			plus = (flags & FUSE_READDIR_PLUS) != 0;
		} else {
			st.st_mode = S_IFREG;
		}
		if (filler(buf, e->name, &st, (off_t)(i + 3), plus ? FUSE_FILL_DIR_PLUS : 0))
			break;
	}
	return 0;
}

void fs_dirs_free(struct fs *fs)
{
	while (fs->dirs) {
		struct fs_dh *dh = fs->dirs;

		fs->dirs = dh->next;
		dents_free(&dh->d);
		free(dh);
	}
}
