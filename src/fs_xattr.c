/* fs_xattr.c - extended attributes: users' user.* names and lexfs's own.
 *
 * user.* names set by users persist in the object's metadata under "xattr", in
 * s3fs's format, so a bucket moves between the two tools: a JSON object
 * {"user.name":"<base64 of the value>",...} (keys sorted, compact), URL-encoded
 * (percent-encoding of everything but unreserved characters) because metadata
 * values must be printable ASCII.
 *
 * lexfs's names are computed, read-only and listed by listxattr:
 *
 *   user.lexfs.presigned_url[.SECONDS]      GET URL (default expiry from config)
 *   user.lexfs.presigned_put_url[.SECONDS]  PUT URL
 *   user.lexfs.url                          public (unsigned) URL
 *   user.lexfs.etag, user.lexfs.content_type, user.lexfs.backend
 *   user.lexfs.stats                        (root) cache + store status, JSON (with
 *                                           "health" and "events", src/opsrt.c)
 *   user.lexfs.metrics                      (root) Prometheus text (src/opsrt.c)
 *
 * and write-only controls: user.lexfs.invalidate (drop cached data and metadata:
 * on the root everything, on a directory what lies under it) and, on the root,
 * user.lexfs.control.NAME = VALUE (store_control, e.g. fault injection).
 * Setting a computed lexfs name is ENOTSUP (cp -a skips that error silently), a
 * control anywhere but the root EPERM; removing one succeeds and changes nothing (it is
 * computed), because rsync -X removes every name its source lacks and stops on
 * any error.
 * Names outside user.* are not supported: ENODATA on read (so cp -a and rsync -X
 * go on), ENOTSUP on write.
 */
#include "src/fs_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>
#include <sys/xattr.h>

#include "cache/meta_cache.h"
#include "src/crypto.h"
#include "src/log.h"
#include "src/opsrt.h"

#define XA_USER "user."
#define XA_LEXFS "user.lexfs."
#define XA_PRESIGN "user.lexfs.presigned_url"
#define XA_PRESIGN_PUT "user.lexfs.presigned_put_url"
#define XA_CONTROL "user.lexfs.control."
#define XA_META "xattr"
#define XA_VALUE_MAX (64 * 1024)

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Caller frees; NULL on ENOMEM. Malformed escapes are kept as they are. */
static char *url_decode(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else if (s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* Caller frees; NULL on ENOMEM. */
static char *url_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), o = 0;
	char *out = malloc(3 * n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

/* The user xattrs of an object as a JSON object (caller json_decref's). A
 * malformed "xattr" value reads as none, with a warning: never a failure. */
static json_t *xattrs_load(const struct fs_obj *o)
{
	const char *enc = meta_get(&o->meta, XA_META);
	json_t *obj = NULL;
	char *raw;

	if (enc && *enc) {
		raw = url_decode(enc);
		if (raw)
			obj = json_loads(raw, 0, NULL);
		free(raw);
		if (!obj || !json_is_object(obj)) {
			log_warn("ignoring malformed xattr metadata of %s", o->key);
			json_decref(obj);
			obj = NULL;
		}
	}
	return obj ? obj : json_object();
}

static int xattrs_store(struct fs_obj *o, json_t *obj)
{
	char *raw, *enc;
	int rc;

	if (json_object_size(obj) == 0) {
		meta_del(&o->meta, XA_META); /* absent already is fine */
		return 0;
	}
	raw = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (!raw)
		return -ENOMEM;
	enc = url_encode(raw);
	free(raw);
	if (!enc)
		return -ENOMEM;
	rc = meta_set(&o->meta, XA_META, enc);
	free(enc);
	return rc;
}

/* Hand `len` bytes of val to getxattr's buffer conventions. */
static int reply(const void *val, size_t len, char *buf, size_t size)
{
	if (len > XA_VALUE_MAX * 16)
		return -E2BIG;
	if (size == 0)
		return (int)len;
	if (len > size)
		return -ERANGE;
	memcpy(buf, val, len);
	return (int)len;
}

static int reply_str_free(char *s, char *buf, size_t size)
{
	int rc = reply(s, strlen(s), buf, size);

	free(s);
	return rc;
}

/* A lookup may not know the etag: the cache does not keep etags (a file it holds
 * may be clean, or about to be replaced by its upload), and a rename or metadata
 * update recorded in the stat cache may not have learned the new one. Ask the
 * store, so listxattr and the getxattr after it agree (rsync -X calls both); what
 * it says of a file the cache does not hold goes into the stat cache, so the next
 * call needs no request. */
static void file_etag(struct fs *fs, struct fs_obj *o)
{
	struct lexfs_objinfo oi = {0};
	uint64_t epoch = meta_cache_epoch(fs->cache);

	if ((o->kind == FS_PENDING || o->kind == FS_FILE) && !o->etag[0] &&
	    store_info(fs->st, o->key, &oi, NULL) == 0) {
		snprintf(o->etag, sizeof(o->etag), "%s", oi.etag);
		if (o->kind == FS_FILE)
			meta_cache_stat_put(fs->cache, o->key, &oi, epoch);
	}
	objinfo_free(&oi);
}

/* Expiry from a ".SECONDS" suffix (0 = none given); -EINVAL when malformed. */
static int64_t presign_expiry(const char *suffix, int64_t dflt)
{
	char *end;
	long long v;

	if (*suffix == '\0')
		return dflt > 0 ? dflt : 3600;
	if (*suffix != '.' || suffix[1] < '0' || suffix[1] > '9')
		return -ENODATA;
	errno = 0;
	v = strtoll(suffix + 1, &end, 10);
	if (errno || *end || v <= 0)
		return -EINVAL;
	return v;
}

/* The cache's status plus the fs layer's open handles. Caller frees. */
static char *stats_json(struct fs *fs)
{
	char *text = cache_stats_json(fs->cache);
	json_t *obj, *mine;
	size_t files, dirs;

	if (!text)
		return NULL;
	obj = json_loads(text, 0, NULL);
	if (!obj || !json_is_object(obj)) {
		json_decref(obj);
		return text;
	}
	free(text);
	pthread_mutex_lock(&fs->lock);
	files = fs->nhandles;
	dirs = fs->ndirs;
	pthread_mutex_unlock(&fs->lock);
	mine = json_pack("{s:I,s:I}", "open_handles", (json_int_t)files, "open_dirs",
			 (json_int_t)dirs);
	if (mine)
		json_object_set_new(obj, "fs", mine);
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return text;
}

static int lexfs_get(struct fs *fs, struct fs_obj *o, const char *name, char *buf, size_t size)
{
	bool file = o->kind == FS_FILE || o->kind == FS_PENDING;
	const char *backend;
	char *s = NULL;
	int rc;

	if (strcmp(name, "user.lexfs.backend") == 0) {
		backend = store_backend_name(fs->st);
		if (!backend || !*backend || strcmp(backend, "default") == 0)
			backend = store_driver(fs->st)->name; /* the one backend: its driver */
		return reply(backend, strlen(backend), buf, size);
	}
	if (strcmp(name, "user.lexfs.stats") == 0) {
		if (o->kind != FS_ROOT)
			return -ENODATA;
		s = stats_json(fs);
		if (s && fs->conf.ops) {
			char *all = ops_stats_json(fs->conf.ops, s);

			free(s);
			s = all;
		}
		return s ? reply_str_free(s, buf, size) : -ENOMEM;
	}
	if (strcmp(name, "user.lexfs.metrics") == 0) {
		if (o->kind != FS_ROOT || !fs->conf.ops)
			return -ENODATA;
		s = ops_metrics_text(fs->conf.ops);
		return s ? reply_str_free(s, buf, size) : -ENOMEM;
	}
	if (!file)
		return -ENODATA;
	if (strcmp(name, "user.lexfs.url") == 0) {
		rc = store_get_url(fs->st, o->key, &s, NULL);
		return rc ? rc : reply_str_free(s, buf, size);
	}
	if (strcmp(name, "user.lexfs.etag") == 0) {
		file_etag(fs, o);
		return o->etag[0] ? reply(o->etag, strlen(o->etag), buf, size) : -ENODATA;
	}
	if (strcmp(name, "user.lexfs.content_type") == 0)
		return o->content_type[0]
			   ? reply(o->content_type, strlen(o->content_type), buf, size)
			   : -ENODATA;
	if (has_prefix(name, XA_PRESIGN_PUT) || has_prefix(name, XA_PRESIGN)) {
		bool put = has_prefix(name, XA_PRESIGN_PUT);
		int64_t exp = presign_expiry(name + strlen(put ? XA_PRESIGN_PUT : XA_PRESIGN),
					     fs->conf.presign_expiry_s);

		if (exp < 0)
			return (int)exp;
		rc = store_presign(fs->st, o->key, put ? LEXFS_PUT : LEXFS_GET, exp, &s, NULL);
		if (rc == -ENOTSUP)
			return -ENODATA;
		return rc ? rc : reply_str_free(s, buf, size);
	}
	return -ENODATA;
}

int fs_getxattr(const char *path, const char *name, char *buf, size_t size)
{
	struct fs *fs = fs_self();
	struct fs_obj o;
	json_t *obj = NULL, *v;
	uint8_t *val = NULL;
	size_t len = 0;
	int rc;

	/* No lookup for other namespaces: the kernel asks security.capability on
	 * every write. */
	if (!has_prefix(name, XA_USER))
		return -ENODATA;
	rc = fs_lookup(fs, path, &o);
	if (rc)
		goto out;
	if (has_prefix(name, XA_LEXFS)) {
		rc = lexfs_get(fs, &o, name, buf, size);
		goto out;
	}
	obj = xattrs_load(&o);
	v = json_object_get(obj, name);
	if (!v || !json_is_string(v)) {
		rc = -ENODATA;
		goto out;
	}
	rc = crypto_base64_decode(json_string_value(v), &val, &len);
	if (rc) {
		log_warn("xattr %s of %s is not base64", name, o.key);
		rc = -ENODATA;
		goto out;
	}
	rc = reply(val, len, buf, size);
out:
	free(val);
	json_decref(obj);
	fs_obj_free(&o);
	return rc;
}

/* A NUL-separated name list for listxattr. */
struct name_list {
	char *p;
	size_t len, cap;
};

static int list_add(struct name_list *l, const char *name)
{
	size_t n = strlen(name) + 1;

	if (l->len + n > l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 512;
		char *np;

		while (ncap < l->len + n)
			ncap *= 2;
		np = realloc(l->p, ncap);
		if (!np)
			return -ENOMEM;
		l->p = np;
		l->cap = ncap;
	}
	memcpy(l->p + l->len, name, n);
	l->len += n;
	return 0;
}

int fs_listxattr(const char *path, char *list, size_t size)
{
	static const char *const file_names[] = {
	    XA_PRESIGN,
	    XA_PRESIGN_PUT,
	    "user.lexfs.url",
	    "user.lexfs.backend",
	};
	struct fs *fs = fs_self();
	struct name_list l = {0};
	struct fs_obj o;
	json_t *obj = NULL, *v;
	const char *k;
	int rc;

	rc = fs_lookup(fs, path, &o);
	if (rc)
		goto out;
	if (o.kind == FS_FILE || o.kind == FS_PENDING) {
		for (size_t i = 0; i < sizeof(file_names) / sizeof(file_names[0]) && !rc; i++)
			rc = list_add(&l, file_names[i]);
		file_etag(fs, &o);
		if (!rc && o.etag[0])
			rc = list_add(&l, "user.lexfs.etag");
		if (!rc && o.content_type[0])
			rc = list_add(&l, "user.lexfs.content_type");
	} else {
		rc = list_add(&l, "user.lexfs.backend");
		if (!rc && o.kind == FS_ROOT)
			rc = list_add(&l, "user.lexfs.stats");
		if (!rc && o.kind == FS_ROOT && fs->conf.ops)
			rc = list_add(&l, "user.lexfs.metrics");
	}
	obj = xattrs_load(&o);
	json_object_foreach(obj, k, v)
	{
		if (rc)
			break;
		if (has_prefix(k, XA_USER) && !has_prefix(k, XA_LEXFS))
			rc = list_add(&l, k);
	}
	if (!rc)
		rc = reply(l.p, l.len, list, size);
out:
	free(l.p);
	json_decref(obj);
	fs_obj_free(&o);
	return rc;
}

static int root_control(struct fs *fs, const char *name, const char *value, size_t size)
{
	struct lexfs_err err = {0};
	char *val;
	int rc;

	if (strcmp(name, "user.lexfs.invalidate") == 0) {
		cache_invalidate(fs->cache, fs->prefix);
		return 0;
	}
	if (!has_prefix(name, XA_CONTROL))
		return -ENOTSUP; /* a computed name (see fs_setxattr) */
	if (!name[strlen(XA_CONTROL)])
		return -EPERM;
	val = strndup(value, size);
	if (!val)
		return -ENOMEM;
	rc = store_control(fs->st, name + strlen(XA_CONTROL), val, &err);
	if (rc)
		log_warn("control %s=%s: %s%s%s", name + strlen(XA_CONTROL), val, strerror(-rc),
			 err.message[0] ? ": " : "", err.message);
	else
		log_notice("control %s=%s applied", name + strlen(XA_CONTROL), val);
	free(val);
	return rc;
}

/* user.lexfs.invalidate on a directory: drop what the caches hold under it. */
static int invalidate_dir(struct fs *fs, const char *path)
{
	struct fs_obj o;
	int rc = fs_lookup(fs, path, &o);

	if (rc == 0 && !fs_obj_is_dir(&o))
		rc = -ENOTDIR;
	if (rc == 0) {
		cache_invalidate(fs->cache, o.key);  /* "dir/": everything under it */
		meta_cache_forget(fs->cache, o.key); /* and its ancestors' listings */
	}
	fs_obj_free(&o);
	return rc;
}

int fs_setxattr(const char *path, const char *name, const char *value, size_t size, int flags)
{
	struct fs *fs = fs_self();
	struct fs_obj o;
	json_t *obj = NULL;
	char *b64 = NULL;
	int rc;

	if (!has_prefix(name, XA_USER))
		return -ENOTSUP;
	if (size > XA_VALUE_MAX)
		return -E2BIG;
	if (has_prefix(name, XA_LEXFS)) {
		if (strcmp(path, "/") == 0)
			return root_control(fs, name, value, size);
		if (strcmp(name, "user.lexfs.invalidate") == 0)
			return invalidate_dir(fs, path);
		if (has_prefix(name, XA_CONTROL))
			return -EPERM; /* controls are set on the mount root */
		/* A computed name cannot be set. ENOTSUP (not EPERM): cp -a and
		 * cp --preserve=xattr copy every listed name and skip this error
		 * silently, where EPERM prints a line per name and file. */
		return -ENOTSUP;
	}
	rc = fs_lookup(fs, path, &o);
	if (rc)
		goto out;
	obj = xattrs_load(&o);
	if ((flags & XATTR_CREATE) && json_object_get(obj, name)) {
		rc = -EEXIST;
		goto out;
	}
	if ((flags & XATTR_REPLACE) && !json_object_get(obj, name)) {
		rc = -ENODATA;
		goto out;
	}
	b64 = crypto_base64(value, size);
	if (!b64 || json_object_set_new(obj, name, json_string(b64))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = xattrs_store(&o, obj);
	if (!rc)
		rc = fs_obj_save_meta(fs, &o);
out:
	free(b64);
	json_decref(obj);
	fs_obj_free(&o);
	return rc;
}

int fs_removexattr(const char *path, const char *name)
{
	struct fs *fs = fs_self();
	struct fs_obj o;
	json_t *obj = NULL;
	int rc;

	if (!has_prefix(name, XA_USER))
		return -ENODATA;
	rc = fs_lookup(fs, path, &o);
	if (rc)
		goto out;
	if (has_prefix(name, XA_LEXFS)) {
		/* Computed names cannot go away; removing one is a no-op. rsync -X
		 * removes every name its source lacks and fails on any error. */
		rc = 0;
		goto out;
	}
	obj = xattrs_load(&o);
	if (json_object_del(obj, name)) {
		rc = -ENODATA;
		goto out;
	}
	rc = xattrs_store(&o, obj);
	if (!rc)
		rc = fs_obj_save_meta(fs, &o);
out:
	json_decref(obj);
	fs_obj_free(&o);
	return rc;
}
