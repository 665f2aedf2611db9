/* fs.c - the FUSE operations: path -> key, POSIX semantics on objects.
 *
 * Objects and what they mean here (keys are relative to the mount prefix):
 *
 *   key          meaning                          attributes from
 *   ----------   ------------------------------   ------------------------------
 *   "a/f"        file, or symlink (mode S_IFLNK,   its metadata: mode, uid, gid,
 *                body = target)                    mtime (+ mtime_ns), xattr
 *   "a/"         directory marker (mkdir)          its metadata
 *   "a/x..."     makes "a" an implicit directory   mount defaults
 *   (root)       the mount root                    memory (chmod/utimens on the
 *                                                  root last as long as the mount)
 *
 * A file the cache holds (open, or written and not yet uploaded) is answered from
 * the cache (cache_pending), so a new file exists before its first upload.
 * Metadata names and formats are s3fs's: "mode" is the decimal st_mode, "uid" and
 * "gid" decimal, "mtime" decimal seconds; lexfs adds "mtime_ns" (the nanoseconds
 * within that second) so rsync sees exact times. s3fs ignores it.
 *
 * Keys that cannot be a path ("a//b", ".", "..", names over 255 bytes) are left
 * out of listings with one warning each; a key that is both a file and a prefix
 * shows as the directory (and the file is hidden).
 *
 * Listings (readdir) live in src/fs_dir.c, extended attributes in src/fs_xattr.c.
 * Every handler returns 0 / bytes or -errno; no state outside struct fs.
 */
#include "config.h"

#include "src/fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cache/meta_cache.h"
#include "src/log.h"
#include "src/opsrt.h"
#include "src/pathkey.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define FS_SET_MAX 1024 /* bound of the warned / conflict sets */
#define FS_MAX_WRITE (1u << 20)
#define FS_DIR_CT "application/x-directory"

static const char fs_empty[1] = "";

/* One open file handle (fi->fh). */
struct fs_fh {
	struct cache_file *cf;
	char *key;		   /* key at open time (used when FUSE gives no path) */
	bool wrote;		   /* mtime already moved to "now" by this handle */
	bool read_data;		   /* a read returned bytes: FileDownloaded at release */
	uint64_t size;		   /* as this handle saw it: fstat after unlink only */
	struct fs_fh *prev, *next; /* fs->handles, under fs->lock */
};

/* Record a storage event (src/events.h); size and etag come from a HEAD for
 * uploads, since the store call that made the object did not report them. */
static void fs_event(struct fs *fs, enum lexfs_event_type type, const char *key)
{
	struct events *ev = ops_events(fs->conf.ops);
	struct lexfs_event e = { .type = type, .key = key };
	struct lexfs_objinfo oi = { 0 };

	if (!ev)
		return;
	if (type == LEXFS_EV_UPLOADED && store_info(fs->st, key, &oi, NULL) == 0) {
		e.has_size = true;
		e.size = oi.size;
		e.etag = oi.etag;
	}
	events_emit(ev, &e);
	objinfo_free(&oi);
}

struct fs *fs_self(void)
{
	return fuse_get_context()->private_data;
}

static void now_ts(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static int meta_set_num(struct lexfs_meta *m, const char *name, int64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	return meta_set(m, name, num);
}

/* Parse a decimal metadata value; false when absent or malformed. */
static bool meta_num(const struct lexfs_meta *m, const char *name, int64_t *out)
{
	const char *v = meta_get(m, name);
	char *end;
	long long n;

	if (!v || !*v)
		return false;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || (*end != '\0' && *end != '.'))
		return false;
	*out = n;
	return true;
}

static int set_mtime(struct lexfs_meta *m, const struct timespec *ts)
{
	int rc = meta_set_num(m, "mtime", ts->tv_sec);

	if (!rc)
		rc = meta_set_num(m, "mtime_ns", ts->tv_nsec);
	return rc;
}

/* The attributes a new object starts with. */
static int new_meta(struct lexfs_meta *m, mode_t mode)
{
	struct fuse_context *ctx = fuse_get_context();
	struct timespec ts;
	int rc;

	meta_init(m);
	now_ts(&ts);
	rc = meta_set_num(m, "mode", mode);
	if (!rc)
		rc = meta_set_num(m, "uid", ctx->uid);
	if (!rc)
		rc = meta_set_num(m, "gid", ctx->gid);
	if (!rc)
		rc = set_mtime(m, &ts);
	if (rc)
		meta_free(m);
	return rc;
}

/* A small table is enough: the store's default covers the rest. */
static const char *guess_content_type(const char *key)
{
	static const struct {
		const char *ext;
		const char *type;
	} types[] = {
	    {"txt", "text/plain"},	  {"html", "text/html"},	{"htm", "text/html"},
	    {"css", "text/css"},	  {"csv", "text/csv"},		{"md", "text/markdown"},
	    {"js", "text/javascript"},	  {"json", "application/json"}, {"xml", "application/xml"},
	    {"pdf", "application/pdf"},	  {"zip", "application/zip"},	{"gz", "application/gzip"},
	    {"tar", "application/x-tar"}, {"png", "image/png"},		{"jpg", "image/jpeg"},
	    {"jpeg", "image/jpeg"},	  {"gif", "image/gif"},		{"svg", "image/svg+xml"},
	    {"webp", "image/webp"},	  {"mp3", "audio/mpeg"},	{"mp4", "video/mp4"},
	    {"wasm", "application/wasm"},
	};
	const char *slash = strrchr(key, '/');
	const char *dot = strrchr(slash ? slash : key, '.');

	if (!dot || !dot[1])
		return "application/octet-stream";
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(dot + 1, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* --- bounded string sets (warned keys, file/prefix conflicts); fs->lock held --- */

static bool set_has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* true when s was added (it was not there and there was room). */
static bool set_add(char ***v, size_t *n, const char *s)
{
	char **nv;
	char *dup;

	if (set_has(*v, *n, s) || *n >= FS_SET_MAX)
		return false;
	dup = strdup(s);
	if (!dup)
		return false;
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv) {
		free(dup);
		return false;
	}
	nv[(*n)++] = dup;
	*v = nv;
	return true;
}

static void set_del(char **v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(v[i], s) == 0) {
			free(v[i]);
			v[i] = v[--*n];
			return;
		}
	}
}

static void set_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void fs_warn_key_once(struct fs *fs, const char *key, const char *why)
{
	bool first;

	pthread_mutex_lock(&fs->lock);
	first = set_add(&fs->warned, &fs->nwarned, key);
	pthread_mutex_unlock(&fs->lock);
	if (first)
		log_warn("skipping key \"%s\": %s", key, why);
}

bool fs_add_conflict(struct fs *fs, const char *key)
{
	bool added;

	pthread_mutex_lock(&fs->lock);
	added = set_add(&fs->conflicts, &fs->nconflicts, key);
	pthread_mutex_unlock(&fs->lock);
	return added;
}

static bool is_conflict(struct fs *fs, const char *key)
{
	bool r;

	pthread_mutex_lock(&fs->lock);
	r = set_has(fs->conflicts, fs->nconflicts, key);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static void forget_conflict(struct fs *fs, const char *key)
{
	pthread_mutex_lock(&fs->lock);
	set_del(fs->conflicts, &fs->nconflicts, key);
	pthread_mutex_unlock(&fs->lock);
}

void fs_log_store_fail(const char *what, const char *key, int rc, const struct lexfs_err *err)
{
	if (rc == -ENOENT)
		return;
	if (err && err->code)
		log_warn("%s %s: %s (LEXFS-%03d%s%s)", what, key, strerror(-rc), (int)err->code,
			 err->message[0] ? ": " : "", err->message);
	else
		log_warn("%s %s: %s", what, key, strerror(-rc));
}

/* --- resolving a path --- */

void fs_obj_free(struct fs_obj *o)
{
	free(o->key);
	meta_free(&o->meta);
	memset(o, 0, sizeof(*o));
}

bool fs_obj_is_dir(const struct fs_obj *o)
{
	return o->kind == FS_ROOT || o->kind == FS_MARKER || o->kind == FS_IMPLICIT;
}

static void obj_from_info(struct fs_obj *o, struct lexfs_objinfo *oi)
{
	o->size = oi->size;
	o->mtime = oi->mtime;
	snprintf(o->etag, sizeof(o->etag), "%s", oi->etag);
	snprintf(o->content_type, sizeof(o->content_type), "%s", oi->content_type);
	o->meta = oi->meta; /* hand-off */
	meta_init(&oi->meta);
}

/* store_info through the stat and negative caches (cache/meta_cache.h). */
/* The directory key ("" or "a/b/") that holds key ("a/b/c" or "a/b/c/"); caller
 * frees. */
static char *parent_dkey(const char *key)
{
	size_t n = strlen(key);
	const char *slash = n > 1 ? memrchr(key, '/', n - 1) : NULL;

	return strndup(key, slash ? (size_t)(slash - key) + 1 : 0);
}

/* What the cached listing of key's directory says of key (meta_cache_list_find);
 * 0 when none is cached. */
static int listed(struct fs *fs, const char *key, struct lexfs_objinfo *oi)
{
	char *dkey = parent_dkey(key);
	int rc = dkey ? meta_cache_list_find(fs->cache, dkey, key, oi) : 0;

	free(dkey);
	return rc;
}

/* Like listed(), but a directory of at most one listing page is listed (and
 * cached) first when no listing of it is cached: one LIST then answers every new
 * name created there until it expires (cp -r, tar x, rsync look up each name before
 * they create it), where a HEAD and a LIST per name would be needed otherwise.
 * A larger directory is not listed for this: 0, and the caller asks for key. */
static int listed_or_list(struct fs *fs, const char *key, struct lexfs_objinfo *oi)
{
	uint64_t epoch = meta_cache_epoch(fs->cache);
	struct lexfs_list_page page = {0};
	char *dkey;
	int rc = listed(fs, key, oi);

	if (rc != 0)
		return rc;
	dkey = parent_dkey(key);
	if (!dkey)
		return 0;
	if (store_list(fs->st, dkey, "/", NULL, 1000, &page, NULL) == 0 && !page.next_token) {
		meta_cache_list_put(fs->cache, dkey, &page, epoch);
		rc = meta_cache_list_find(fs->cache, dkey, key, oi);
	}
	list_page_free(&page);
	free(dkey);
	return rc;
}

static int cached_info(struct fs *fs, const char *key, struct lexfs_objinfo *oi)
{
	uint64_t epoch = meta_cache_epoch(fs->cache);
	int rc = meta_cache_stat_get(fs->cache, key, oi);

	if (rc == 1)
		return 0;
	if (rc == -ENOENT)
		return rc;
	/* a listing of the directory knows whether the name exists: a new name (cp,
	 * rsync, tar) costs no HEAD */
	rc = listed_or_list(fs, key, oi);
	if (rc == 1 && oi->has_meta)
		return 0;
	objinfo_free(oi);
	memset(oi, 0, sizeof(*oi));
	if (rc == -ENOENT || rc == 2)
		return -ENOENT; /* 2: a directory of that name hides the file */
	rc = store_info(fs->st, key, oi, NULL);
	if (rc == 0 || rc == -ENOENT)
		meta_cache_stat_put(fs->cache, key, rc == 0 ? oi : NULL, epoch);
	return rc;
}

/* Our own change of key in the store: no cache may answer from before it. */
static void changed(struct fs *fs, const char *key)
{
	meta_cache_forget(fs->cache, key);
}

/* Our own upload (or copy, or metadata update) of key succeeded: the caches
 * learn what the store holds. etag may be NULL (unknown). */
static void uploaded(struct fs *fs, const char *key, const struct lexfs_put_opts *opts,
		     uint64_t size, const char *etag)
{
	struct lexfs_objinfo oi = {.size = size, .mtime = (int64_t)time(NULL), .has_meta = true};

	snprintf(oi.etag, sizeof(oi.etag), "%s", etag ? etag : "");
	if (opts->meta)
		oi.meta = *opts->meta; /* borrowed: note_put copies */
	snprintf(oi.content_type, sizeof(oi.content_type), "%s",
		 opts->content_type ? opts->content_type : "");
	meta_cache_note_put(fs->cache, key, &oi);
}

/* The listing of a directory we just made: its marker alone. */
static void new_dir_listing(struct fs *fs, const char *dkey, const struct lexfs_put_opts *opts)
{
	struct lexfs_objinfo marker = {.key = (char *)dkey, .mtime = (int64_t)time(NULL),
				       .has_meta = true};
	struct lexfs_list_page page = {.items = &marker, .n = 1};

	if (opts->meta)
		marker.meta = *opts->meta;
	snprintf(marker.content_type, sizeof(marker.content_type), "%s", FS_DIR_CT);
	meta_cache_list_put(fs->cache, dkey, &page, meta_cache_epoch(fs->cache));
}

/* 1 when something lies under dkey (other than the marker itself), 0 when not. */
static int has_children(struct fs *fs, const char *dkey, bool recursive)
{
	struct lexfs_list_page page = {0};
	char *token = NULL;
	int found = 0;
	int rc;

	do {
		rc = store_list(fs->st, dkey, recursive ? NULL : "/", token, 2, &page, NULL);
		free(token);
		token = NULL;
		if (rc)
			return rc;
		for (size_t i = 0; i < page.n && !found; i++)
			if (strcmp(page.items[i].key, dkey) != 0)
				found = 1;
		token = page.next_token;
		page.next_token = NULL;
		list_page_free(&page);
	} while (!found && token);
	free(token);
	return found;
}

/* The answer of lookup_dir goes into the stat cache under the "dir/" key: the
 * marker's info, an entry with is_prefix set for an implicit directory, or a
 * negative entry. */
static int lookup_dir_store(struct fs *fs, struct fs_obj *o, struct lexfs_objinfo *oi)
{
	struct lexfs_list_page page = {0};
	bool marker = false;
	int rc;

	rc = store_list(fs->st, o->key, "/", NULL, 1, &page, NULL);
	if (rc)
		return rc;
	if (page.n == 0) {
		list_page_free(&page);
		return -ENOENT;
	}
	if (!page.items[0].is_prefix && strcmp(page.items[0].key, o->key) == 0) {
		marker = true;
		if (page.items[0].has_meta) {
			*oi = page.items[0]; /* hand-off */
			memset(&page.items[0], 0, sizeof(page.items[0]));
			free(oi->key);
			oi->key = NULL;
			list_page_free(&page);
			return 0;
		}
	}
	list_page_free(&page);
	if (!marker) {
		oi->is_prefix = true;
		return 0;
	}
	rc = store_info(fs->st, o->key, oi, NULL);
	if (rc == -ENOENT) { /* removed meanwhile */
		objinfo_free(oi);
		memset(oi, 0, sizeof(*oi));
		oi->is_prefix = true;
		rc = 0;
	}
	return rc;
}

static int lookup_dir(struct fs *fs, struct fs_obj *o)
{
	uint64_t epoch = meta_cache_epoch(fs->cache);
	struct lexfs_objinfo oi = {0};
	int rc;

	rc = meta_cache_stat_get(fs->cache, o->key, &oi);
	if (rc == 0) {
		/* a listing of the parent that does not name the directory: none */
		char *name = strndup(o->key, strlen(o->key) - 1);

		rc = name ? listed(fs, name, &oi) : 0;
		free(name);
		objinfo_free(&oi);
		memset(&oi, 0, sizeof(oi));
		rc = rc == 2 || rc == 0 ? 0 : -ENOENT;
	}
	if (rc == 0) {
		rc = lookup_dir_store(fs, o, &oi);
		if (rc == 0 || rc == -ENOENT)
			meta_cache_stat_put(fs->cache, o->key, rc == 0 ? &oi : NULL, epoch);
	} else if (rc == 1) {
		rc = 0;
	}
	if (rc == 0 && oi.is_prefix) {
		o->kind = FS_IMPLICIT;
		o->mtime = fs->start_time;
	} else if (rc == 0) {
		o->kind = FS_MARKER;
		obj_from_info(o, &oi);
	}
	objinfo_free(&oi);
	return rc;
}

int fs_lookup(struct fs *fs, const char *path, struct fs_obj *o)
{
	struct lexfs_objinfo oi = {0};
	int rc;

	memset(o, 0, sizeof(*o));
	meta_init(&o->meta);
	if (!path)
		return -ENOENT;
	if (strcmp(path, "/") == 0) {
		o->kind = FS_ROOT;
		o->key = strdup(fs->prefix);
		o->mtime = fs->start_time;
		pthread_mutex_lock(&fs->lock);
		rc = meta_copy(&o->meta, &fs->root_meta);
		pthread_mutex_unlock(&fs->lock);
		return o->key ? rc : -ENOMEM;
	}
	o->key = pathkey_key(fs->prefix, path, false);
	if (!o->key)
		return -ENOMEM;

	rc = cache_pending(fs->cache, o->key, &o->size, &o->meta, o->content_type,
			   sizeof(o->content_type));
	if (rc == 0) {
		o->kind = FS_PENDING;
		o->mtime = fs->start_time;
		return 0;
	}
	if (rc != -ENOENT)
		return rc;

	if (!is_conflict(fs, o->key)) {
		rc = cached_info(fs, o->key, &oi);
		if (rc == 0) {
			o->kind = FS_FILE;
			obj_from_info(o, &oi);
			objinfo_free(&oi);
			return 0;
		}
		objinfo_free(&oi);
		if (rc != -ENOENT)
			return rc;
	}

	/* A directory: one listing finds its marker (listed first) or any key
	 * below it; a missing name costs a HEAD and a LIST, no more. */
	free(o->key);
	o->key = pathkey_key(fs->prefix, path, true);
	if (!o->key)
		return -ENOMEM;
	return lookup_dir(fs, o);
}

mode_t fs_obj_mode(const struct fs *fs, const struct fs_obj *o)
{
	bool dir = fs_obj_is_dir(o);
	mode_t dflt =
	    dir ? (S_IFDIR | (0777 & ~fs->conf.umask)) : (S_IFREG | (0666 & ~fs->conf.umask));
	int64_t m;
	mode_t type;

	if (!meta_num(&o->meta, "mode", &m) || m < 0 || m > 0177777)
		return dflt;
	type = (mode_t)m & S_IFMT;
	if (dir)
		type = S_IFDIR; /* a marker is a directory whatever its mode says */
	else if (type != S_IFLNK)
		type = S_IFREG; /* s3fs's old directory objects and devices: plain files */
	return type | ((mode_t)m & 07777);
}

void fs_obj_stat(const struct fs *fs, const struct fs_obj *o, struct stat *st)
{
	int64_t v;
	struct timespec mt = {.tv_sec = o->mtime, .tv_nsec = 0};

	memset(st, 0, sizeof(*st));
	st->st_mode = fs_obj_mode(fs, o);
	st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	st->st_uid = meta_num(&o->meta, "uid", &v) && v >= 0 ? (uid_t)v : fs->conf.uid;
	st->st_gid = meta_num(&o->meta, "gid", &v) && v >= 0 ? (gid_t)v : fs->conf.gid;
	if (meta_num(&o->meta, "mtime", &v)) {
		mt.tv_sec = v;
		if (meta_num(&o->meta, "mtime_ns", &v) && v >= 0 && v < 1000000000)
			mt.tv_nsec = v;
	}
	st->st_mtim = mt;
	st->st_ctim = mt;
	st->st_atim = mt;
	st->st_size = S_ISDIR(st->st_mode) ? 4096 : (off_t)o->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((o->size + 511) / 512);
}

/* Persist o->meta. The cache takes it when it holds the key; otherwise the store. */
int fs_obj_save_meta(struct fs *fs, struct fs_obj *o)
{
	struct lexfs_put_opts opts = {0};
	struct lexfs_src src = {.buf = fs_empty, .fd = -1, .off = 0, .len = 0};
	struct lexfs_err err = {0};
	int rc;

	if (fs->conf.read_only)
		return -EROFS;
	switch (o->kind) {
	case FS_ROOT:
		pthread_mutex_lock(&fs->lock);
		meta_free(&fs->root_meta);
		rc = meta_copy(&fs->root_meta, &o->meta);
		pthread_mutex_unlock(&fs->lock);
		return rc;
	case FS_PENDING:
	case FS_FILE:
		rc = cache_set_meta(fs->cache, o->key, &o->meta);
		if (rc < 0)
			return rc;
		if (rc == 1)
			return 0;
		break; /* not held (any more): the object is in the store */
	case FS_MARKER:
		break;
	case FS_IMPLICIT:
		/* Give the directory a marker to carry its attributes. */
		opts.content_type = FS_DIR_CT;
		opts.meta = &o->meta;
		rc = store_upload(fs->st, o->key, &src, &opts, NULL, &err);
		changed(fs, o->key);
		if (rc)
			fs_log_store_fail("upload", o->key, rc, &err);
		else
			o->kind = FS_MARKER;
		return rc;
	default:
		return -ENOENT;
	}
	opts.content_type = o->content_type[0] ? o->content_type : NULL;
	opts.meta = &o->meta;
	opts.have_src_size = true; /* what the lookup said: no HEAD to copy it */
	opts.src_size = o->size;
	rc = store_set_meta(fs->st, o->key, &opts, &err);
	if (rc) {
		changed(fs, o->key);
		fs_log_store_fail("set metadata of", o->key, rc, &err);
	} else {
		/* chmod then utimens (rsync, cp -p, tar) need no HEAD in between */
		uploaded(fs, o->key, &opts, o->size, o->etag);
	}
	return rc;
}

/* --- FUSE handlers --- */

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fs *fs = fs_self();

	cfg->use_ino = 0;
	/* An open file that is unlinked must not be renamed to .fuse_hidden*: a
	 * rename costs a copy here. */
	cfg->hard_remove = 1;
	cfg->entry_timeout = fs->conf.entry_timeout;
	cfg->attr_timeout = fs->conf.attr_timeout;
	cfg->negative_timeout = fs->conf.negative_timeout;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC; /* no download of what O_TRUNC drops */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->max_write < FS_MAX_WRITE)
		conn->max_write = FS_MAX_WRITE; /* libfuse clamps to its buffer */
	return fs;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct fs_fh *fh = fi ? (struct fs_fh *)(uintptr_t)fi->fh : NULL;
	struct fs_obj o;
	int rc;

	if (!path && fh) {
		/* Unlinked while open: only the cache knows it. */
		memset(&o, 0, sizeof(o));
		meta_init(&o.meta);
		o.kind = FS_PENDING;
		o.mtime = fs->start_time;
		rc = cache_pending(fs->cache, fh->key, &o.size, &o.meta, o.content_type,
				   sizeof(o.content_type));
		if (rc == -ENOENT) {
			o.size = fh->size; /* unlinked: the cache no longer names it */
			rc = 0;
		}
	} else {
		rc = fs_lookup(fs, path, &o);
	}
	if (rc == 0)
		fs_obj_stat(fs, &o, st);
	fs_obj_free(&o);
	return rc;
}

/* --- directories --- */

static int fs_mkdir(const char *path, mode_t mode)
{
	struct fs *fs = fs_self();
	struct lexfs_src src = {.buf = fs_empty, .fd = -1, .off = 0, .len = 0};
	struct lexfs_put_opts opts = {.content_type = FS_DIR_CT};
	struct lexfs_err err = {0};
	struct lexfs_meta meta;
	char *key;
	int rc;

	if (fs->conf.read_only)
		return -EROFS;
	key = pathkey_key(fs->prefix, path, true);
	if (!key)
		return -ENOMEM;
	rc = new_meta(&meta, S_IFDIR | (mode & 07777));
	if (rc)
		goto out;
	opts.meta = &meta;
	rc = store_upload(fs->st, key, &src, &opts, NULL, &err);
	if (rc) {
		changed(fs, key);
		fs_log_store_fail("mkdir", key, rc, &err);
	} else {
		uploaded(fs, key, &opts, 0, NULL);
		/* A new directory holds only its marker: names looked up in it next
		 * (cp -r, tar x, rsync) are answered without a request. */
		new_dir_listing(fs, key, &opts);
	}
	meta_free(&meta);
out:
	free(key);
	return rc;
}

static int fs_rmdir(const char *path)
{
	struct fs *fs = fs_self();
	struct lexfs_err err = {0};
	struct fs_obj o;
	int rc;

	if (fs->conf.read_only)
		return -EROFS;
	rc = fs_lookup(fs, path, &o);
	if (rc)
		goto out;
	if (o.kind == FS_ROOT) {
		rc = -EBUSY;
		goto out;
	}
	if (!fs_obj_is_dir(&o)) {
		rc = -ENOTDIR;
		goto out;
	}
	rc = has_children(fs, o.key, true);
	if (rc < 0)
		goto out;
	if (rc > 0) {
		rc = -ENOTEMPTY;
		goto out;
	}
	rc = store_remove(fs->st, o.key, &err);
	changed(fs, o.key);
	if (rc)
		fs_log_store_fail("rmdir", o.key, rc, &err);
out:
	fs_obj_free(&o);
	return rc;
}

/* --- files --- */

/* Open handles are listed so fs_destroy can close those whose RELEASE the
 * kernel never sent (it may drop them at unmount). */
static void fh_link(struct fs *fs, struct fs_fh *fh)
{
	pthread_mutex_lock(&fs->lock);
	fh->next = fs->handles;
	if (fs->handles)
		fs->handles->prev = fh;
	fs->handles = fh;
	fs->nhandles++;
	pthread_mutex_unlock(&fs->lock);
}

static void fh_unlink(struct fs *fs, struct fs_fh *fh)
{
	pthread_mutex_lock(&fs->lock);
	if (fh->prev)
		fh->prev->next = fh->next;
	else
		fs->handles = fh->next;
	if (fh->next)
		fh->next->prev = fh->prev;
	fs->nhandles--;
	pthread_mutex_unlock(&fs->lock);
}

static int fh_new(const char *key, uint64_t size, struct cache_file *cf, struct fuse_file_info *fi)
{
	struct fs_fh *fh = calloc(1, sizeof(*fh));

	if (fh)
		fh->key = strdup(key);
	if (!fh || !fh->key) {
		free(fh);
		cache_release(cf);
		return -ENOMEM;
	}
	fh->cf = cf;
	fh->size = size;
	fh_link(fs_self(), fh);
	fi->fh = (uint64_t)(uintptr_t)fh;
	return 0;
}

static struct fs_fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fs_fh *)(uintptr_t)fi->fh;
}

static int fs_create_file(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct cache_file *cf = NULL;
	struct lexfs_meta meta;
	char *key;
	int rc;

	if (fs->conf.read_only)
		return -EROFS;
	key = pathkey_key(fs->prefix, path, false);
	if (!key)
		return -ENOMEM;
	rc = new_meta(&meta, S_IFREG | (mode & 07777));
	if (rc)
		goto out;
	rc = cache_open(fs->cache, key, fi->flags | O_CREAT, NULL, &meta, guess_content_type(key),
			&cf);
	meta_free(&meta);
	if (rc)
		goto out;
	rc = fh_new(key, 0, cf, fi);
	if (!rc)
		fh_of(fi)->wrote = true; /* created now: its mtime is already "now" */
out:
	free(key);
	return rc;
}

static int open_obj(struct fs *fs, struct fs_obj *o, int flags, struct cache_file **cf)
{
	struct lexfs_objinfo oi = {0};

	if (fs_obj_is_dir(o))
		return -EISDIR;
	oi.size = o->size;
	oi.mtime = o->mtime;
	snprintf(oi.etag, sizeof(oi.etag), "%s", o->etag);
	snprintf(oi.content_type, sizeof(oi.content_type), "%s", o->content_type);
	oi.meta = o->meta; /* borrowed: cache_open copies */
	oi.has_meta = true;
	return cache_open(fs->cache, o->key, flags, &oi, &o->meta,
			  o->content_type[0] ? o->content_type : NULL, cf);
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct cache_file *cf = NULL;
	struct fs_obj o;
	int rc;

	if (fs->conf.read_only && (fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	rc = fs_lookup(fs, path, &o);
	if (rc)
		goto out;
	rc = open_obj(fs, &o, fi->flags, &cf);
	if (rc)
		goto out;
	rc = fh_new(o.key, (fi->flags & O_TRUNC) ? 0 : o.size, cf, fi);
out:
	fs_obj_free(&o);
	return rc;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs_fh *fh = fh_of(fi);
	ssize_t n = cache_read(fh->cf, buf, size, off);

	if (n > 0 && !__atomic_load_n(&fh->read_data, __ATOMIC_RELAXED))
		__atomic_store_n(&fh->read_data, true, __ATOMIC_RELAXED);
	return (int)n;
}

/* A write moves mtime to now (once per handle: later utimens wins). */
static void touch_pending(struct fs *fs, const char *key)
{
	struct lexfs_meta meta;
	struct timespec ts;
	uint64_t size;
	char ct[128];

	meta_init(&meta);
	if (cache_pending(fs->cache, key, &size, &meta, ct, sizeof(ct)) == 0) {
		now_ts(&ts);
		if (set_mtime(&meta, &ts) == 0)
			cache_set_meta(fs->cache, key, &meta);
	}
	meta_free(&meta);
}

static void mark_written(struct fs *fs, const char *path, struct fs_fh *fh)
{
	char *key;

	if (fh->wrote)
		return;
	fh->wrote = true;
	key = path ? pathkey_key(fs->prefix, path, false) : NULL;
	touch_pending(fs, key ? key : fh->key);
	free(key);
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct fs_fh *fh = fh_of(fi);
	ssize_t n = cache_write(fh->cf, buf, size, off);

	if (n > 0) {
		mark_written(fs, path, fh);
		if ((uint64_t)off + (uint64_t)n > fh->size)
			fh->size = (uint64_t)off + (uint64_t)n;
	}
	return (int)n;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct cache_file *cf = NULL;
	struct fs_obj o;
	int rc, rc2;

	if (fs->conf.read_only)
		return -EROFS;
	if (fi) {
		rc = cache_ftruncate(fh_of(fi)->cf, size);
		if (!rc) {
			mark_written(fs, path, fh_of(fi));
			fh_of(fi)->size = (uint64_t)size;
		}
		return rc;
	}
	rc = fs_lookup(fs, path, &o);
	if (rc)
		goto out;
	rc = open_obj(fs, &o, O_WRONLY, &cf);
	if (rc)
		goto out;
	rc = cache_ftruncate(cf, size);
	if (!rc)
		touch_pending(fs, o.key);
	rc2 = rc ? 0 : cache_flush(cf);
	if (!rc)
		rc = rc2;
	rc2 = cache_release(cf);
	if (!rc)
		rc = rc2;
out:
	fs_obj_free(&o);
	return rc;
}

static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	return cache_flush(fh_of(fi)->cf);
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	return cache_fsync(fh_of(fi)->cf);
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct fs_fh *fh = fh_of(fi);
	int rc;

	fh_unlink(fs_self(), fh);
	rc = cache_release(fh->cf);

	if (rc)
		log_warn("upload of %s failed at close: %s", fh->key, strerror(-rc));
	if (fh->read_data && !fh->wrote)
		fs_event(fs_self(), LEXFS_EV_DOWNLOADED, fh->key);
	free(fh->key);
	free(fh);
	return rc;
}

static int fs_unlink(const char *path)
{
	struct fs *fs = fs_self();
	struct lexfs_err err = {0};
	char *key;
	int rc;

	if (fs->conf.read_only)
		return -EROFS;
	key = pathkey_key(fs->prefix, path, false);
	if (!key)
		return -ENOMEM;
	rc = cache_unlink(fs->cache, key);
	if (rc == 0) { /* 1: the cache held it and it never reached the store */
		rc = store_remove(fs->st, key, &err);
		if (rc) {
			changed(fs, key);
			fs_log_store_fail("remove", key, rc, &err);
		} else {
			meta_cache_note_delete(fs->cache, key);
			fs_event(fs, LEXFS_EV_DELETED, key);
		}
	} else if (rc == 1) {
		rc = 0;
	}
	forget_conflict(fs, key);
	free(key);
	return rc;
}

/* --- rename --- */

static int rename_dir(struct fs *fs, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to);
	struct lexfs_list_page page = {0};
	struct lexfs_err err = {0};
	char **keys = NULL;
	size_t n = 0, cap = 0;
	char *token = NULL;
	int rc;

	/* Copy everything first, delete only when all copies exist: a failure
	 * leaves the source whole. */
	do {
		rc = store_list(fs->st, from, NULL, token, 1000, &page, &err);
		free(token);
		token = NULL;
		if (rc) {
			fs_log_store_fail("list", from, rc, &err);
			goto out;
		}
		for (size_t i = 0; i < page.n && !rc; i++) {
			const char *k = page.items[i].key;
			char *dst;

			if (page.items[i].is_prefix || strncmp(k, from, flen) != 0)
				continue;
			dst = malloc(tlen + strlen(k + flen) + 1);
			if (!dst) {
				rc = -ENOMEM;
				break;
			}
			memcpy(dst, to, tlen);
			memcpy(dst + tlen, k + flen, strlen(k + flen) + 1);
			rc = store_copy(fs->st, k, dst, NULL, &err);
			if (rc)
				fs_log_store_fail("copy", k, rc, &err);
			else
				fs_event(fs, LEXFS_EV_UPLOADED, dst);
			free(dst);
			if (rc)
				break;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				char **nv = realloc(keys, ncap * sizeof(*nv));

				if (!nv) {
					rc = -ENOMEM;
					break;
				}
				keys = nv;
				cap = ncap;
			}
			keys[n] = strdup(k);
			if (!keys[n]) {
				rc = -ENOMEM;
				break;
			}
			n++;
		}
		token = page.next_token;
		page.next_token = NULL;
		list_page_free(&page);
	} while (!rc && token);
	for (size_t i = 0; !rc && i < n; i += 1000) {
		size_t batch = n - i < 1000 ? n - i : 1000;

		rc = store_remove_many(fs->st, (const char *const *)keys + i, batch, &err);
		if (rc)
			fs_log_store_fail("remove", from, rc, &err);
		for (size_t j = i; !rc && j < i + batch; j++)
			fs_event(fs, LEXFS_EV_DELETED, keys[j]);
	}
out:
	/* every key under both prefixes, and their ancestors' listings */
	meta_cache_invalidate(fs->cache, from);
	meta_cache_invalidate(fs->cache, to);
	changed(fs, from);
	changed(fs, to);
	free(token);
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	return rc;
}

/* src: what the lookup of `from` found. The copy keeps every attribute the store
 * has (not only the ones lexfs knows: Content-Encoding, Cache-Control, ...). */
static int rename_file(struct fs *fs, const struct fs_obj *src, const char *from, const char *to)
{
	struct lexfs_put_opts opts = {.content_type = src->content_type[0] ? src->content_type
									   : NULL,
				      .meta = &src->meta};
	struct lexfs_err err = {0};
	int rc;

	/* A target the cache holds must not be uploaded over the renamed file. */
	rc = cache_unlink(fs->cache, to);
	if (rc < 0)
		return rc;
	rc = cache_rename(fs->cache, from, to);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return 0;
	rc = store_move(fs->st, from, to, &err);
	if (rc) {
		changed(fs, from);
		changed(fs, to);
		fs_log_store_fail("rename", from, rc, &err);
		return rc;
	}
	/* to first: a directory that held only `from` is not emptied in between */
	uploaded(fs, to, &opts, src->size, src->etag);
	meta_cache_note_delete(fs->cache, from);
	/* rename is reported as FileDeleted (old key) + FileUploaded (new key). */
	fs_event(fs, LEXFS_EV_DELETED, from);
	fs_event(fs, LEXFS_EV_UPLOADED, to);
	return 0;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	struct fs *fs = fs_self();
	struct fs_obj src, dst;
	bool dst_exists;
	int rc;

	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (fs->conf.read_only)
		return -EROFS;
	rc = fs_lookup(fs, from, &src);
	if (rc) {
		fs_obj_free(&src);
		return rc;
	}
	rc = fs_lookup(fs, to, &dst);
	if (rc && rc != -ENOENT)
		goto out;
	dst_exists = rc == 0;
	rc = 0;
	if (src.kind == FS_ROOT || dst.kind == FS_ROOT) {
		rc = -EBUSY;
		goto out;
	}
	if (dst_exists && (flags & RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto out;
	}
	if (fs_obj_is_dir(&src)) {
		if (dst_exists && !fs_obj_is_dir(&dst)) {
			rc = -ENOTDIR;
			goto out;
		}
		free(dst.key);
		dst.key = pathkey_key(fs->prefix, to, true);
		if (!dst.key) {
			rc = -ENOMEM;
			goto out;
		}
		if (pathkey_under(src.key, dst.key)) {
			rc = -EINVAL; /* into itself */
			goto out;
		}
		if (dst_exists) {
			rc = has_children(fs, dst.key, true);
			if (rc < 0)
				goto out;
			if (rc > 0) {
				rc = -ENOTEMPTY;
				goto out;
			}
		}
		rc = rename_dir(fs, src.key, dst.key);
	} else {
		if (dst_exists && fs_obj_is_dir(&dst)) {
			rc = -EISDIR;
			goto out;
		}
		free(dst.key);
		dst.key = pathkey_key(fs->prefix, to, false);
		if (!dst.key) {
			rc = -ENOMEM;
			goto out;
		}
		rc = rename_file(fs, &src, src.key, dst.key);
		forget_conflict(fs, src.key);
	}
out:
	fs_obj_free(&src);
	fs_obj_free(&dst);
	return rc;
}

/* --- attributes --- */

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct fs_obj o;
	int rc = fs_lookup(fs, path, &o);

	if (!rc) {
		mode_t type = fs_obj_mode(fs, &o) & S_IFMT;

		rc = meta_set_num(&o.meta, "mode", type | (mode & 07777));
		if (!rc)
			rc = fs_obj_save_meta(fs, &o);
	}
	fs_obj_free(&o);
	return rc;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct fs_obj o;
	int rc = fs_lookup(fs, path, &o);

	if (!rc && !meta_get(&o.meta, "mode"))
		rc = meta_set_num(&o.meta, "mode", fs_obj_mode(fs, &o)); /* keep what stat showed */
	if (!rc && uid != (uid_t)-1)
		rc = meta_set_num(&o.meta, "uid", uid);
	if (!rc && gid != (gid_t)-1)
		rc = meta_set_num(&o.meta, "gid", gid);
	if (!rc)
		rc = fs_obj_save_meta(fs, &o);
	fs_obj_free(&o);
	return rc;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct timespec ts;
	struct fs_obj o;
	int rc;

	if (tv && tv[1].tv_nsec == UTIME_OMIT)
		return 0;
	if (!tv || tv[1].tv_nsec == UTIME_NOW)
		now_ts(&ts);
	else
		ts = tv[1];
	rc = fs_lookup(fs, path, &o);
	if (!rc && !meta_get(&o.meta, "mode"))
		rc = meta_set_num(&o.meta, "mode", fs_obj_mode(fs, &o));
	if (!rc)
		rc = set_mtime(&o.meta, &ts);
	if (!rc)
		rc = fs_obj_save_meta(fs, &o);
	fs_obj_free(&o);
	return rc;
}

/* --- symlinks, links, statfs --- */

static int fs_symlink(const char *target, const char *path)
{
	struct fs *fs = fs_self();
	struct lexfs_src src = {.buf = target, .fd = -1, .off = 0, .len = strlen(target)};
	struct lexfs_put_opts opts = {.content_type = "application/octet-stream"};
	struct lexfs_err err = {0};
	struct lexfs_meta meta;
	char *key;
	int rc;

	if (fs->conf.read_only)
		return -EROFS;
	key = pathkey_key(fs->prefix, path, false);
	if (!key)
		return -ENOMEM;
	rc = new_meta(&meta, S_IFLNK | 0777);
	if (rc)
		goto out;
	opts.meta = &meta;
	rc = store_upload(fs->st, key, &src, &opts, NULL, &err);
	if (rc) {
		changed(fs, key);
		fs_log_store_fail("symlink", key, rc, &err);
	} else {
		uploaded(fs, key, &opts, src.len, NULL);
	}
	meta_free(&meta);
out:
	free(key);
	return rc;
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct fs *fs = fs_self();
	struct lexfs_err err = {0};
	struct fs_obj o;
	size_t got = 0;
	int rc;

	if (size == 0)
		return -EINVAL;
	rc = fs_lookup(fs, path, &o);
	if (rc)
		goto out;
	if (!S_ISLNK(fs_obj_mode(fs, &o))) {
		rc = -EINVAL;
		goto out;
	}
	rc = store_read(fs->st, o.key, 0, size - 1, buf, &got, &err);
	if (rc)
		fs_log_store_fail("readlink", o.key, rc, &err);
	else
		buf[got] = '\0';
out:
	fs_obj_free(&o);
	return rc;
}

static int fs_link(const char *from, const char *to)
{
	return -EPERM;
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_blocks = (fsblkcnt_t)1 << 40; /* 4 PiB: object stores do not run out */
	sv->f_bfree = sv->f_blocks;
	sv->f_bavail = sv->f_blocks;
	sv->f_files = (fsfilcnt_t)1 << 32;
	sv->f_ffree = sv->f_files;
	sv->f_favail = sv->f_files;
	sv->f_namemax = PATHKEY_NAME_MAX;
	return 0;
}

static const struct fuse_operations fs_ops = {
    .init = fs_init,
    .getattr = fs_getattr,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .mkdir = fs_mkdir,
    .rmdir = fs_rmdir,
    .create = fs_create_file,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .truncate = fs_truncate,
    .flush = fs_flush,
    .fsync = fs_fsync,
    .release = fs_release,
    .unlink = fs_unlink,
    .rename = fs_rename,
    .chmod = fs_chmod,
    .chown = fs_chown,
    .utimens = fs_utimens,
    .symlink = fs_symlink,
    .readlink = fs_readlink,
    .link = fs_link,
    .statfs = fs_statfs,
    .setxattr = fs_setxattr,
    .getxattr = fs_getxattr,
    .listxattr = fs_listxattr,
    .removexattr = fs_removexattr,
};

const struct fuse_operations *fs_operations(void)
{
	return &fs_ops;
}

int fs_create(const struct fs_conf *conf, struct cache **cache, struct fs **out)
{
	struct fs *fs;
	struct timespec ts;
	int rc = -ENOMEM;

	*out = NULL;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		goto fail;
	fs->conf = *conf;
	fs->prefix = pathkey_prefix(conf->prefix);
	if (!fs->prefix) {
		rc = -EINVAL;
		log_err("mount prefix \"%s\" is not a valid path",
			conf->prefix ? conf->prefix : "");
		goto fail;
	}
	fs->conf.prefix = fs->prefix;
	meta_init(&fs->root_meta);
	now_ts(&ts);
	fs->start_time = ts.tv_sec;
	if (meta_set_num(&fs->root_meta, "mode", S_IFDIR | (0777 & ~conf->umask)) ||
	    meta_set_num(&fs->root_meta, "uid", conf->uid) ||
	    meta_set_num(&fs->root_meta, "gid", conf->gid) || set_mtime(&fs->root_meta, &ts))
		goto fail;
	if (pthread_mutex_init(&fs->lock, NULL)) {
		meta_free(&fs->root_meta);
		goto fail;
	}
	fs->cache = *cache;
	*cache = NULL;
	fs->st = cache_store(fs->cache);
	*out = fs;
	return 0;
fail:
	if (fs) {
		meta_free(&fs->root_meta);
		free(fs->prefix);
		free(fs);
	}
	if (*cache)
		cache_destroy(*cache);
	*cache = NULL;
	return rc;
}

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	while (fs->handles) {
		struct fs_fh *fh = fs->handles;

		fs->handles = fh->next;
		cache_release(fh->cf);
		free(fh->key);
		free(fh);
	}
	fs_dirs_free(fs);
	cache_destroy(fs->cache);
	pthread_mutex_destroy(&fs->lock);
	meta_free(&fs->root_meta);
	set_free(fs->warned, fs->nwarned);
	set_free(fs->conflicts, fs->nconflicts);
	free(fs->prefix);
	free(fs);
}
