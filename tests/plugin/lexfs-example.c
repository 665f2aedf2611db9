/* lexfs-example.c - an example third-party driver, built as a shared object.
 *
 * lexfs looks a driver name it does not have built in up as PLUGIN_DIR/lexfs-NAME.so
 * and calls the function LEXFS_PLUGIN_SYMBOL (lexfs_driver_plugin) for the driver's
 * table, whose name must be NAME and whose abi must be LEXFS_DRIVER_ABI. The lexfs
 * executable exports no symbols, so a plugin lives on the types of drivers/driver.h
 * and its own code: it cannot call meta_set(), settings_get(), lexfs_fail() or a
 * built-in driver. What it hands back through out-pointers (info and list pages,
 * metadata, URLs) lexfs frees with free(), so it allocates them with malloc().
 *
 * This driver keeps objects in memory, one store per open (nothing outlives the
 * process), sorted by key. Its one setting is base_url (default "example://"), the
 * start of what get_url returns; any other key in its group is left unread, so
 * lexfs reports it as an unknown option.
 *
 * The build also compiles it into broken plugins the registry must refuse
 * (tests/local.mk, tests/test_plugins.py): EXAMPLE_ABI claims another ABI,
 * EXAMPLE_NO_ENTRY exports the entry point under a wrong name, EXAMPLE_NO_GET_URL
 * leaves a required operation out.
 */
/* strdup, strndup, pread: POSIX, also under -std=c11 (lexfs's config.h is not
 * needed: a plugin is built outside lexfs's tree too). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drivers/driver.h"

#ifndef EXAMPLE_ABI
#define EXAMPLE_ABI LEXFS_DRIVER_ABI
#endif

#define EXAMPLE_KEY_MAX 1024

struct eobj {
	char *key;
	uint8_t *data;
	uint64_t size;
	int64_t mtime;
	char etag[32];
	char content_type[128];
	struct lexfs_meta meta;
};

struct lexfs_drv {
	pthread_mutex_t lock; /* guards objs, n, cap, gen */
	struct eobj *objs;    /* sorted by key */
	size_t n, cap;
	uint64_t gen; /* uploads so far: each object's etag */
	char *base_url;
};

__attribute__((format(printf, 4, 5))) static int fail(struct lexfs_err *err, enum lexfs_code code,
						      int errnum, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		memset(err, 0, sizeof(*err));
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

static int nomem(struct lexfs_err *err)
{
	return fail(err, LEXFS_E_STORAGE, ENOMEM, "example: out of memory");
}

static void meta_clear(struct lexfs_meta *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->kv[i].name);
		free(m->kv[i].value);
	}
	free(m->kv);
	m->kv = NULL;
	m->n = 0;
}

/* dst (empty) becomes a copy of src; 0 or -ENOMEM (dst empty again). */
static int meta_dup(struct lexfs_meta *dst, const struct lexfs_meta *src)
{
	dst->kv = NULL;
	dst->n = 0;
	if (!src || src->n == 0)
		return 0;
	dst->kv = calloc(src->n, sizeof(*dst->kv));
	if (!dst->kv)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		dst->kv[i].name = strdup(src->kv[i].name);
		dst->kv[i].value = strdup(src->kv[i].value);
		dst->n++;
		if (!dst->kv[i].name || !dst->kv[i].value) {
			meta_clear(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

static void eobj_clear(struct eobj *o)
{
	free(o->key);
	free(o->data);
	meta_clear(&o->meta);
	memset(o, 0, sizeof(*o));
}

/* Index of key, or of where it would go (*found false). Called locked. */
static size_t find_locked(const lexfs_drv *d, const char *key, bool *found)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(d->objs[mid].key, key);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static int bad_key(const char *key, struct lexfs_err *err)
{
	if (!key || !*key || key[0] == '/' || strlen(key) > EXAMPLE_KEY_MAX)
		return fail(err, LEXFS_E_INVALID_PATH, EINVAL, "example: invalid key");
	return 0;
}

static int ex_open(const struct lexfs_driver_conf *conf, lexfs_drv **out, struct lexfs_err *err)
{
	const char *base_url = "example://";
	lexfs_drv *d;

	*out = NULL;
	/* Mark what this driver reads; lexfs reports the rest as unknown options. */
	for (size_t i = 0; conf->settings && i < conf->settings->n; i++) {
		struct setting *s = &conf->settings->v[i];

		if (strcmp(s->key, "base_url") == 0) {
			base_url = s->value;
			s->used = true;
		}
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return nomem(err);
	d->base_url = strdup(base_url);
	if (!d->base_url) {
		free(d);
		return nomem(err);
	}
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

static void ex_close(lexfs_drv *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		eobj_clear(&d->objs[i]);
	free(d->objs);
	free(d->base_url);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* Nothing to reach: the store is this process's memory. */
static int ex_health(lexfs_drv *d, int timeout_ms, struct lexfs_err *err)
{
	(void)d;
	(void)timeout_ms;
	(void)err;
	return 0;
}

/* The bytes of src in a new buffer (*out: caller frees; NULL when empty). */
static int read_src(const struct lexfs_src *src, uint8_t **out)
{
	uint64_t done = 0;
	uint8_t *b;

	*out = NULL;
	if (src->len == 0)
		return 0;
	if (src->len > SIZE_MAX)
		return -EFBIG;
	b = malloc((size_t)src->len);
	if (!b)
		return -ENOMEM;
	if (src->buf) {
		memcpy(b, src->buf, (size_t)src->len);
		*out = b;
		return 0;
	}
	while (done < src->len) {
		ssize_t n =
		    pread(src->fd, b + done, (size_t)(src->len - done), src->off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int rc = n < 0 ? -errno : -EIO;

			free(b);
			return rc;
		}
		done += (uint64_t)n;
	}
	*out = b;
	return 0;
}

static void fill_info(const struct eobj *o, struct lexfs_objinfo *out)
{
	out->size = o->size;
	out->mtime = o->mtime;
	snprintf(out->etag, sizeof(out->etag), "%s", o->etag);
	snprintf(out->content_type, sizeof(out->content_type), "%s", o->content_type);
	out->has_meta = true;
}

static int ex_upload(lexfs_drv *d, const char *key, const struct lexfs_src *src,
		     const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
		     struct lexfs_err *err)
{
	struct eobj o = {0};
	size_t at;
	bool found;
	int rc;

	rc = bad_key(key, err);
	if (rc)
		return rc;
	rc = read_src(src, &o.data);
	if (rc)
		return fail(err, LEXFS_E_STORAGE, -rc, "example: cannot read the upload: %s",
			    strerror(-rc));
	o.key = strdup(key);
	if (!o.key || meta_dup(&o.meta, opts ? opts->meta : NULL) < 0) {
		eobj_clear(&o);
		return nomem(err);
	}
	o.size = src->len;
	o.mtime = (int64_t)time(NULL);
	snprintf(o.content_type, sizeof(o.content_type), "%s",
		 opts && opts->content_type ? opts->content_type : "application/octet-stream");

	pthread_mutex_lock(&d->lock);
	snprintf(o.etag, sizeof(o.etag), "ex-%" PRIu64, ++d->gen);
	at = find_locked(d, key, &found);
	if (found) {
		eobj_clear(&d->objs[at]);
		d->objs[at] = o;
	} else {
		if (d->n == d->cap) {
			size_t cap = d->cap ? 2 * d->cap : 16;
			struct eobj *objs = realloc(d->objs, cap * sizeof(*objs));

			if (!objs) {
				pthread_mutex_unlock(&d->lock);
				eobj_clear(&o);
				return nomem(err);
			}
			d->objs = objs;
			d->cap = cap;
		}
		memmove(&d->objs[at + 1], &d->objs[at], (d->n - at) * sizeof(*d->objs));
		d->objs[at] = o;
		d->n++;
	}
	if (out) {
		out->size = o.size;
		snprintf(out->etag, sizeof(out->etag), "%s", o.etag);
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int notfound(struct lexfs_err *err, const char *key)
{
	return fail(err, LEXFS_E_NOTFOUND, ENOENT, "example: no object %s", key);
}

static int ex_download(lexfs_drv *d, const char *key, uint64_t off, uint64_t len,
		       lexfs_sink_fn sink, void *arg, struct lexfs_err *err)
{
	uint8_t *copy = NULL;
	uint64_t n = 0;
	size_t at;
	bool found;
	int rc;

	pthread_mutex_lock(&d->lock);
	at = find_locked(d, key, &found);
	if (!found) {
		pthread_mutex_unlock(&d->lock);
		return notfound(err, key);
	}
	/* Copy the range out, so the sink runs unlocked. */
	if (off < d->objs[at].size) {
		n = d->objs[at].size - off;
		if (len < n)
			n = len;
		copy = malloc((size_t)n);
		if (!copy) {
			pthread_mutex_unlock(&d->lock);
			return nomem(err);
		}
		memcpy(copy, d->objs[at].data + off, (size_t)n);
	}
	pthread_mutex_unlock(&d->lock);
	rc = n ? sink(arg, copy, (size_t)n) : 0;
	free(copy);
	return rc;
}

static int ex_info(lexfs_drv *d, const char *key, struct lexfs_objinfo *out, struct lexfs_err *err)
{
	size_t at;
	bool found;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&d->lock);
	at = find_locked(d, key, &found);
	if (!found) {
		pthread_mutex_unlock(&d->lock);
		return notfound(err, key);
	}
	fill_info(&d->objs[at], out);
	rc = meta_dup(&out->meta, &d->objs[at].meta);
	pthread_mutex_unlock(&d->lock);
	return rc ? nomem(err) : 0;
}

static void page_clear(struct lexfs_list_page *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->items[i].key);
		meta_clear(&p->items[i].meta);
	}
	free(p->items);
	free(p->next_token);
	memset(p, 0, sizeof(*p));
}

/* Keys in order, from the first after token; with a delimiter, the keys below a
 * common prefix show as that one prefix. The page ends after max_keys items with
 * next_token its last item. */
static int ex_list(lexfs_drv *d, const char *prefix, const char *delim, const char *token,
		   unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err)
{
	size_t pl, i, at, cpl = 0;
	const char *cp = NULL; /* the last common prefix listed: cpl bytes of a key */
	bool found;

	memset(out, 0, sizeof(*out));
	if (!prefix)
		prefix = "";
	if (delim && !*delim)
		delim = NULL;
	if (max_keys == 0 || max_keys > 1000)
		max_keys = 1000;
	pl = strlen(prefix);
	out->items = calloc(max_keys, sizeof(*out->items));
	if (!out->items)
		return nomem(err);

	pthread_mutex_lock(&d->lock);
	at = find_locked(d, token && strcmp(token, prefix) > 0 ? token : prefix, &found);
	for (i = at; i < d->n; i++) {
		const struct eobj *o = &d->objs[i];
		struct lexfs_objinfo *it;
		const char *hit;
		size_t len;

		if (strncmp(o->key, prefix, pl) != 0)
			break;
		if (token && strcmp(o->key, token) <= 0)
			continue;
		/* only now is o->key known to be at least pl bytes long */
		hit = delim ? strstr(o->key + pl, delim) : NULL;
		len = hit ? (size_t)(hit - o->key) + strlen(delim) : 0;
		if (hit && cp && len == cpl && strncmp(o->key, cp, cpl) == 0)
			continue; /* below the prefix just listed */
		/* below the prefix the previous page ended with */
		if (hit && token && strlen(token) == len && strncmp(o->key, token, len) == 0)
			continue;
		if (out->n == max_keys) {
			out->next_token = strdup(out->items[out->n - 1].key);
			if (!out->next_token)
				goto nomem;
			break;
		}
		it = &out->items[out->n];
		it->key = hit ? strndup(o->key, len) : strdup(o->key);
		if (!it->key)
			goto nomem;
		out->n++;
		if (hit) {
			it->is_prefix = true;
			cp = o->key;
			cpl = len;
			continue;
		}
		fill_info(o, it);
		if (meta_dup(&it->meta, &o->meta) < 0)
			goto nomem;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
nomem:
	pthread_mutex_unlock(&d->lock);
	page_clear(out);
	return nomem(err);
}

static int ex_remove(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	size_t at;
	bool found;

	(void)err; /* an absent key is success: nothing can fail */

	pthread_mutex_lock(&d->lock);
	at = find_locked(d, key, &found);
	if (found) {
		eobj_clear(&d->objs[at]);
		memmove(&d->objs[at], &d->objs[at + 1], (d->n - at - 1) * sizeof(*d->objs));
		d->n--;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

#ifndef EXAMPLE_NO_GET_URL
/* base_url and the key as it is (a real driver would percent-encode it). */
static int ex_get_url(lexfs_drv *d, const char *key, char **url, struct lexfs_err *err)
{
	size_t len = strlen(d->base_url) + strlen(key) + 1;

	*url = malloc(len);
	if (!*url)
		return nomem(err);
	snprintf(*url, len, "%s%s", d->base_url, key);
	return 0;
}
#endif

static const struct lexfs_driver example_driver = {
    .name = "example",
    .abi = EXAMPLE_ABI,
    .caps = LEXFS_CAP_RANGE_READ,
    .min_part_size = 0,
    .max_part_size = 0,
    .max_parts = 0,
    .max_object_size = 0,
    .open = ex_open,
    .close = ex_close,
    .health_check = ex_health,
    .upload = ex_upload,
    .download = ex_download,
    .info = ex_info,
    .list = ex_list,
    .remove = ex_remove,
#ifndef EXAMPLE_NO_GET_URL
    .get_url = ex_get_url,
#else
    .get_url = NULL,
#endif
    .exists = NULL,
    .copy = NULL,
    .move = NULL,
    .set_meta = NULL,
    .remove_many = NULL,
    .mp_begin = NULL,
    .mp_part = NULL,
    .mp_complete = NULL,
    .mp_abort = NULL,
    .presign = NULL,
    .control = NULL,
    .server_time = NULL,
    .mp_list = NULL,
    .mp_abort_id = NULL,
};

#ifndef EXAMPLE_NO_ENTRY
const struct lexfs_driver *lexfs_driver_plugin(void)
{
	return &example_driver;
}
#else
/* The entry point under a name lexfs does not look for. */
const struct lexfs_driver *lexfs_example_driver(void);

const struct lexfs_driver *lexfs_example_driver(void)
{
	return &example_driver;
}
#endif
