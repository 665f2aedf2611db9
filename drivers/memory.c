/* memory.c - the "memory" driver: objects in a hash table, for tests and demos.
 *
 * Every object is immutable once stored: a write builds a new struct mobj outside the
 * lock and swaps it in, and a reader takes a reference, drops the lock and streams the
 * bytes. So a download never blocks writers and never sees a partial object.
 *
 * Fault injection (settings at open, or control "fault" at run time) makes operations
 * fail before they touch anything, so a failed call has no effect:
 *
 *   error_rate=R   each operation fails with probability R (0..1)
 *   latency_ms=N   each operation first sleeps N ms
 *   fail_after=N   the Nth operation after the setting was applied, and every later
 *                  one, fails (0: off)
 *   errno=NAME     the error returned (EIO default; EIO and ETIMEDOUT are marked
 *                  retryable so the store retries them)
 *   seed=N         seed the fault RNG, so a single-threaded run fails the same calls
 *                  every time (tests)
 *   off            reset everything (tokens apply left to right)
 *
 * Open settings: base_url (default "mem://"), signing_key (secret; default a random
 * key per instance), presign_max_expiry (seconds, default 604800), fault_error_rate,
 * fault_latency_ms, fault_fail_after, fault_errno, fault_seed.
 *
 * Controls: "fault" (above) and "verify_url" (value: a presigned URL; returns 0,
 * -EACCES or -ETIMEDOUT as urlsign_verify, with this instance's signing key).
 *
 * Locking: drv->lock guards the table, the fault state and the RNG. A multipart upload
 * has its own mutex for its parts; it never takes drv->lock while holding it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drivers/builtin.h"
#include "drivers/driver.h"
#include "src/crypto.h"
#include "src/urlsign.h"

#define MEM_CHUNK (256 * 1024)

/* An object's bytes are a list of segments: one for a PUT, the parts themselves
 * after a multipart upload (complete moves them, it does not copy them). */
struct mseg {
	uint8_t *data;
	uint64_t len;
};

struct mobj {
	struct mobj *next; /* hash chain */
	char *key;
	unsigned refs;     /* guarded by drv->lock */
	struct mseg *segs; /* owned; their lengths add up to size */
	unsigned nsegs;
	uint64_t size;
	int64_t mtime;
	char etag[2 * MD5_LEN + 1];
	char content_type[128];
	struct lexfs_meta meta;
};

struct fault {
	uint64_t seed; /* 0: keep the RNG as it is */
	double error_rate;
	unsigned latency_ms;
	uint64_t fail_after;
	int errnum;
	uint64_t calls; /* operations since the setting was applied */
};

struct lexfs_drv {
	pthread_mutex_t lock;
	uint64_t mp_seq; /* completed multipart uploads (atomic): their ETags */
	struct mobj **tab; /* guarded by lock */
	size_t nbuckets;
	size_t nobjs;
	struct fault fault;
	uint64_t rng;
	char *base_url;
	char *signing_key;
	size_t signing_keylen;
	int64_t presign_max;
};

struct mpart {
	uint8_t *data;
	uint64_t len;
	bool set;
};

struct lexfs_mpu {
	pthread_mutex_t lock; /* guards parts */
	char *key;
	char content_type[128];
	struct lexfs_meta meta;
	struct mpart *parts;
	unsigned nparts;
};

/* ---- objects --------------------------------------------------------------- */

static void mobj_free(struct mobj *o)
{
	if (!o)
		return;
	free(o->key);
	for (unsigned i = 0; i < o->nsegs; i++)
		free(o->segs[i].data);
	free(o->segs);
	meta_free(&o->meta);
	free(o);
}

/* Drop a reference; caller holds drv->lock. */
static void mobj_put_locked(struct mobj *o)
{
	if (o && --o->refs == 0)
		mobj_free(o);
}

static void mobj_put(lexfs_drv *d, struct mobj *o)
{
	pthread_mutex_lock(&d->lock);
	mobj_put_locked(o);
	pthread_mutex_unlock(&d->lock);
}

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static struct mobj **slot_locked(lexfs_drv *d, const char *key)
{
	struct mobj **pp = &d->tab[hash_key(key) % d->nbuckets];

	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void grow_locked(lexfs_drv *d)
{
	size_t nb = d->nbuckets * 2, i;
	struct mobj **nt;

	if (d->nobjs < d->nbuckets)
		return;
	nt = calloc(nb, sizeof(*nt));
	if (!nt)
		return; /* keep the longer chains */
	for (i = 0; i < d->nbuckets; i++) {
		struct mobj *o = d->tab[i], *next;

		for (; o; o = next) {
			size_t h = hash_key(o->key) % nb;

			next = o->next;
			o->next = nt[h];
			nt[h] = o;
		}
	}
	free(d->tab);
	d->tab = nt;
	d->nbuckets = nb;
}

/* Insert or replace (the table takes the reference the caller had). */
static void insert_locked(lexfs_drv *d, struct mobj *o)
{
	struct mobj **pp = slot_locked(d, o->key);

	if (*pp) {
		struct mobj *old = *pp;

		o->next = old->next;
		*pp = o;
		old->next = NULL;
		mobj_put_locked(old);
	} else {
		o->next = NULL;
		*pp = o;
		d->nobjs++;
		grow_locked(d);
	}
}

static struct mobj *unlink_locked(lexfs_drv *d, const char *key)
{
	struct mobj **pp = slot_locked(d, key), *o = *pp;

	if (o) {
		*pp = o->next;
		o->next = NULL;
		d->nobjs--;
	}
	return o;
}

/* A new reference to key's object or NULL. */
static struct mobj *lookup(lexfs_drv *d, const char *key)
{
	struct mobj *o;

	pthread_mutex_lock(&d->lock);
	o = *slot_locked(d, key);
	if (o)
		o->refs++;
	pthread_mutex_unlock(&d->lock);
	return o;
}

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static void set_ctype(char dst[128], const char *ct)
{
	snprintf(dst, 128, "%s", ct && *ct ? ct : "application/octet-stream");
}

/* A new object (refs 1) that takes *segs (n of them; *segs is NULLed, also on
 * failure, when they are freed). Its ETag is `etag`, or with etag NULL the hex MD5
 * of the bytes (what S3 gives a single PUT; one segment then). */
static int mobj_new(const char *key, struct mseg **segs, unsigned n, const char *etag,
		    const char *ctype, const struct lexfs_meta *meta, struct mobj **out)
{
	struct mobj *o = calloc(1, sizeof(*o));
	uint8_t md5[MD5_LEN];

	if (!o) {
		for (unsigned i = 0; i < n; i++)
			free((*segs)[i].data);
		free(*segs);
		*segs = NULL;
		return -ENOMEM;
	}
	o->segs = *segs;
	o->nsegs = n;
	*segs = NULL;
	for (unsigned i = 0; i < n; i++)
		o->size += o->segs[i].len;
	o->key = strdup(key);
	meta_init(&o->meta);
	if (!o->key || (meta && meta_copy(&o->meta, meta) != 0)) {
		mobj_free(o);
		return -ENOMEM;
	}
	o->refs = 1;
	o->mtime = now_s();
	if (etag) {
		snprintf(o->etag, sizeof(o->etag), "%s", etag);
	} else {
		crypto_md5(n ? o->segs[0].data : (const uint8_t *)"", n ? (size_t)o->size : 0,
			   md5);
		crypto_hex(md5, MD5_LEN, o->etag);
	}
	set_ctype(o->content_type, ctype);
	*out = o;
	return 0;
}

/* One segment holding data (taken; freed on failure). */
static struct mseg *one_seg(uint8_t *data, uint64_t len)
{
	struct mseg *sg = malloc(sizeof(*sg));

	if (!sg) {
		free(data);
		return NULL;
	}
	sg->data = data;
	sg->len = len;
	return sg;
}

static void fill_info(const struct mobj *o, struct lexfs_objinfo *out, bool with_key)
{
	out->size = o->size;
	out->mtime = o->mtime;
	snprintf(out->etag, sizeof(out->etag), "%s", o->etag);
	snprintf(out->content_type, sizeof(out->content_type), "%s", o->content_type);
	out->has_meta = true;
	(void)with_key;
}

/* ---- fault injection -------------------------------------------------------- */

static const struct {
	const char *name;
	int num;
} errnames[] = {
	{ "EIO", EIO },       { "ETIMEDOUT", ETIMEDOUT }, { "ENOSPC", ENOSPC },
	{ "EACCES", EACCES }, { "ENOENT", ENOENT },       { "EDQUOT", EDQUOT },
	{ "EFBIG", EFBIG },   { "ENOMEM", ENOMEM },       { "EAGAIN", EAGAIN },
	{ "EPERM", EPERM },   { "EINVAL", EINVAL },       { "ECONNRESET", ECONNRESET },
};

static int parse_errno(const char *s, int *out)
{
	size_t i;
	char *end;
	long v;

	for (i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++) {
		if (strcasecmp(s, errnames[i].name) == 0) {
			*out = errnames[i].num;
			return 0;
		}
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v <= 0 || v > 4095)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Apply one "name=value" (or "off") to f. */
static int fault_apply(struct fault *f, const char *name, const char *value)
{
	char *end;

	if (strcmp(name, "off") == 0 && !value) {
		memset(f, 0, sizeof(*f));
		f->errnum = EIO;
		return 0;
	}
	if (!value || !*value)
		return -EINVAL;
	errno = 0;
	if (strcmp(name, "error_rate") == 0) {
		double r = strtod(value, &end);

		if (errno || *end || r < 0 || r > 1)
			return -EINVAL;
		f->error_rate = r;
	} else if (strcmp(name, "latency_ms") == 0) {
		unsigned long v = strtoul(value, &end, 10);

		if (errno || *end || value[0] == '-' || v > 600000)
			return -EINVAL;
		f->latency_ms = (unsigned)v;
	} else if (strcmp(name, "fail_after") == 0) {
		unsigned long long v = strtoull(value, &end, 10);

		if (errno || *end || value[0] == '-')
			return -EINVAL;
		f->fail_after = v;
	} else if (strcmp(name, "errno") == 0) {
		return parse_errno(value, &f->errnum);
	} else if (strcmp(name, "seed") == 0) {
		unsigned long long v = strtoull(value, &end, 10);

		if (errno || *end || value[0] == '-' || v == 0)
			return -EINVAL;
		f->seed = v;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* Parse "error_rate=0.3,latency_ms=5,..." onto a copy of *cur. */
static int fault_parse(const char *spec, struct fault *f, char *why, size_t whylen)
{
	const char *p = spec;

	while (*p) {
		char tok[128], *eq;
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == 0 || len >= sizeof(tok)) {
			snprintf(why, whylen, "bad fault setting near \"%.40s\"", p);
			return -EINVAL;
		}
		memcpy(tok, p, len);
		tok[len] = '\0';
		eq = strchr(tok, '=');
		if (eq)
			*eq++ = '\0';
		if (fault_apply(f, tok, eq) != 0) {
			snprintf(why, whylen,
				 "bad fault setting \"%.60s\" (expected error_rate=0..1, "
				 "latency_ms=N, fail_after=N, errno=NAME, seed=N or off)",
				 tok);
			return -EINVAL;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	f->calls = 0;
	return 0;
}

/* xorshift64*; caller holds the lock. */
static double rng_next_locked(lexfs_drv *d)
{
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return (double)((d->rng * 2685821657736338717ull) >> 11) / (double)(1ull << 53);
}

/* Called first by every operation: latency, then maybe a failure. */
static int fault_check(lexfs_drv *d, const char *op, struct lexfs_err *err)
{
	unsigned latency;
	bool fail = false;
	int errnum;

	pthread_mutex_lock(&d->lock);
	d->fault.calls++;
	latency = d->fault.latency_ms;
	errnum = d->fault.errnum ? d->fault.errnum : EIO;
	if (d->fault.fail_after && d->fault.calls >= d->fault.fail_after)
		fail = true;
	else if (d->fault.error_rate > 0 && rng_next_locked(d) < d->fault.error_rate)
		fail = true;
	pthread_mutex_unlock(&d->lock);

	if (latency) {
		struct timespec ts = { latency / 1000, (long)(latency % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	if (!fail)
		return 0;
	{
		enum lexfs_code code = lexfs_errno_code(errnum);
		int rc;

		if (errnum == EIO || errnum == ETIMEDOUT)
			code = LEXFS_E_UNAVAILABLE;
		rc = lexfs_fail(err, code, errnum, "memory: injected fault in %s (%s)", op,
				strerror(errnum));
		if (err)
			err->retryable = (errnum == EIO || errnum == ETIMEDOUT);
		return rc;
	}
}

/* ---- open / close ----------------------------------------------------------- */

static void mem_close(lexfs_drv *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; d->tab && i < d->nbuckets; i++) {
		struct mobj *o = d->tab[i], *next;

		for (; o; o = next) {
			next = o->next;
			mobj_free(o);
		}
	}
	free(d->tab);
	free(d->base_url);
	free(d->signing_key);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int mem_open(const struct lexfs_driver_conf *conf, lexfs_drv **out,
		    struct lexfs_err *err)
{
	const struct settings *s = conf ? conf->settings : NULL;
	static const char *const fkeys[][2] = {
		{ "fault_error_rate", "error_rate" },
		{ "fault_latency_ms", "latency_ms" },
		{ "fault_fail_after", "fail_after" },
		{ "fault_errno", "errno" },
		{ "fault_seed", "seed" },
	};
	char why[256];
	const char *v;
	uint64_t u;
	lexfs_drv *d;
	size_t i;
	int rc;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	pthread_mutex_init(&d->lock, NULL);
	d->nbuckets = 64;
	d->tab = calloc(d->nbuckets, sizeof(*d->tab));
	d->fault.errnum = EIO;
	if (!d->tab) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
		goto fail;
	}
	if (crypto_random(&d->rng, sizeof(d->rng)) != 0 || d->rng == 0)
		d->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)now_s();

	v = s ? settings_get(s, "base_url") : NULL;
	d->base_url = strdup(v ? v : "mem://");
	if (!d->base_url) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
		goto fail;
	}
	v = s ? settings_get(s, "signing_key") : NULL;
	if (v && *v) {
		d->signing_key = strdup(v);
		d->signing_keylen = strlen(v);
	} else {
		uint8_t raw[32];

		d->signing_key = malloc(2 * sizeof(raw) + 1);
		if (d->signing_key && crypto_random(raw, sizeof(raw)) == 0) {
			crypto_hex(raw, sizeof(raw), d->signing_key);
			d->signing_keylen = 2 * sizeof(raw);
		} else {
			free(d->signing_key);
			d->signing_key = NULL;
		}
	}
	if (!d->signing_key) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: cannot make a signing key");
		goto fail;
	}
	if (s) {
		rc = settings_get_u64(s, "presign_max_expiry", 604800, &u, why, sizeof(why));
		if (rc) {
			rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "memory: %s", why);
			goto fail;
		}
		d->presign_max = (int64_t)u;
		for (i = 0; i < sizeof(fkeys) / sizeof(fkeys[0]); i++) {
			v = settings_get(s, fkeys[i][0]);
			if (v && fault_apply(&d->fault, fkeys[i][1], v) != 0) {
				const char *origin = settings_origin(s, fkeys[i][0]);

				rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
						"memory: bad value \"%.40s\" for %s (from %s)", v,
						fkeys[i][0], origin ? origin : "settings");
				goto fail;
			}
		}
		if (d->fault.seed)
			d->rng = d->fault.seed;
		d->fault.seed = 0;
	} else {
		d->presign_max = 604800;
	}
	*out = d;
	return 0;
fail:
	mem_close(d);
	return rc;
}

static int mem_health(lexfs_drv *d, int timeout_ms, struct lexfs_err *err)
{
	return fault_check(d, "health_check", err);
}

/* ---- data ------------------------------------------------------------------- */

static int read_src(const struct lexfs_src *src, uint8_t **out)
{
	uint8_t *data;
	int rc;

	*out = NULL;
	if (src->len > SIZE_MAX - 1)
		return -EFBIG;
	data = malloc(src->len ? (size_t)src->len : 1);
	if (!data)
		return -ENOMEM;
	if (src->len) {
		rc = src_read(src, 0, data, (size_t)src->len);
		if (rc) {
			free(data);
			return rc;
		}
	}
	*out = data;
	return 0;
}

static int store_obj(lexfs_drv *d, struct mobj *o, struct lexfs_objinfo *out)
{
	if (out)
		fill_info(o, out, false);
	pthread_mutex_lock(&d->lock);
	insert_locked(d, o);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int bad_key(const char *key, struct lexfs_err *err)
{
	if (!key || !*key)
		return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL, "memory: empty key");
	return 0;
}

static int mem_upload(lexfs_drv *d, const char *key, const struct lexfs_src *src,
		      const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
		      struct lexfs_err *err)
{
	struct mobj *o;
	struct mseg *sg;
	uint8_t *data;
	int rc;

	rc = fault_check(d, "upload", err);
	if (rc == 0)
		rc = bad_key(key, err);
	if (rc)
		return rc;
	rc = read_src(src, &data);
	if (rc)
		return lexfs_fail(err, lexfs_errno_code(-rc), -rc, "memory: reading upload: %s",
				  strerror(-rc));
	sg = one_seg(data, src->len);
	if (!sg || mobj_new(key, &sg, 1, NULL, opts ? opts->content_type : NULL,
			    opts ? opts->meta : NULL, &o) < 0)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	return store_obj(d, o, out);
}

static int notfound(struct lexfs_err *err, const char *key)
{
	return lexfs_fail(err, LEXFS_E_NOTFOUND, ENOENT, "memory: no such key \"%.100s\"", key);
}

static int mem_download(lexfs_drv *d, const char *key, uint64_t off, uint64_t len,
			lexfs_sink_fn sink, void *arg, struct lexfs_err *err)
{
	struct mobj *o;
	uint64_t end, segstart = 0;
	int rc;

	rc = fault_check(d, "download", err);
	if (rc)
		return rc;
	o = lookup(d, key);
	if (!o)
		return notfound(err, key);
	end = (len == UINT64_MAX || off + len < off || off + len > o->size) ? o->size : off + len;
	for (unsigned i = 0; i < o->nsegs && off < end; i++) {
		const struct mseg *sg = &o->segs[i];
		uint64_t segend = segstart + sg->len;

		while (off < end && off < segend) {
			uint64_t stop = end < segend ? end : segend;
			size_t n = stop - off > MEM_CHUNK ? MEM_CHUNK : (size_t)(stop - off);

			rc = sink(arg, sg->data + (off - segstart), n);
			if (rc) {
				rc = lexfs_fail(err, lexfs_errno_code(rc < 0 ? -rc : EIO),
						rc < 0 ? -rc : EIO, "memory: download sink failed");
				goto out;
			}
			off += n;
		}
		segstart = segend;
	}
out:
	mobj_put(d, o);
	return rc;
}

static int mem_info(lexfs_drv *d, const char *key, struct lexfs_objinfo *out,
		    struct lexfs_err *err)
{
	struct mobj *o;
	int rc;

	rc = fault_check(d, "info", err);
	if (rc)
		return rc;
	o = lookup(d, key);
	if (!o)
		return notfound(err, key);
	memset(out, 0, sizeof(*out));
	meta_init(&out->meta);
	fill_info(o, out, false);
	rc = meta_copy(&out->meta, &o->meta);
	mobj_put(d, o);
	if (rc) {
		objinfo_free(out);
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	}
	return 0;
}

static int mem_exists(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	struct mobj *o;
	int rc;

	rc = fault_check(d, "exists", err);
	if (rc)
		return rc;
	o = lookup(d, key);
	if (!o)
		return 0;
	mobj_put(d, o);
	return 1;
}

static int cmp_objp(const void *a, const void *b)
{
	const struct mobj *x = *(const struct mobj *const *)a;
	const struct mobj *y = *(const struct mobj *const *)b;

	return strcmp(x->key, y->key);
}

/* In a delimited listing, does key fall under the common prefix `token`? */
static bool under_prefix_token(const char *key, const char *token, const char *prefix,
			       const char *delim)
{
	size_t tl = strlen(token), pl = strlen(prefix), dl = strlen(delim);

	if (tl < pl + dl || strncmp(token, prefix, pl) != 0 ||
	    strcmp(token + tl - dl, delim) != 0)
		return false;
	return strncmp(key, token, tl) == 0;
}

static int mem_list(lexfs_drv *d, const char *prefix, const char *delim, const char *token,
		    unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err)
{
	struct mobj **sel = NULL;
	size_t nsel = 0, i, pl;
	const char *last_prefix = NULL;
	size_t last_prefix_len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = fault_check(d, "list", err);
	if (rc)
		return rc;
	if (!prefix)
		prefix = "";
	if (delim && !*delim)
		delim = NULL;
	if (max_keys == 0 || max_keys > 1000)
		max_keys = 1000;
	pl = strlen(prefix);

	/* Snapshot the matching objects (with references), then work unlocked. */
	pthread_mutex_lock(&d->lock);
	sel = malloc((d->nobjs ? d->nobjs : 1) * sizeof(*sel));
	if (sel) {
		for (i = 0; i < d->nbuckets; i++) {
			struct mobj *o;

			for (o = d->tab[i]; o; o = o->next) {
				if (strncmp(o->key, prefix, pl) != 0)
					continue;
				if (token && strcmp(o->key, token) <= 0)
					continue;
				if (token && delim && under_prefix_token(o->key, token, prefix, delim))
					continue;
				o->refs++;
				sel[nsel++] = o;
			}
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (!sel)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	qsort(sel, nsel, sizeof(*sel), cmp_objp);

	out->items = calloc(max_keys, sizeof(*out->items));
	if (!out->items) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < nsel; i++) {
		const struct mobj *o = sel[i];
		const char *rest = o->key + pl, *dpos = delim ? strstr(rest, delim) : NULL;
		struct lexfs_objinfo *it;

		if (dpos) {
			size_t plen = (size_t)(dpos - o->key) + strlen(delim);

			if (last_prefix && plen == last_prefix_len &&
			    strncmp(last_prefix, o->key, plen) == 0)
				continue; /* same common prefix as the previous item */
			if (out->n == max_keys)
				break;
			it = &out->items[out->n];
			meta_init(&it->meta);
			it->key = strndup(o->key, plen);
			if (!it->key) {
				rc = -ENOMEM;
				goto cleanup;
			}
			it->is_prefix = true;
			out->n++;
			last_prefix = o->key;
			last_prefix_len = plen;
			continue;
		}
		if (out->n == max_keys)
			break;
		it = &out->items[out->n];
		meta_init(&it->meta);
		it->key = strdup(o->key);
		if (!it->key || meta_copy(&it->meta, &o->meta) != 0) {
			out->n++;
			rc = -ENOMEM;
			goto cleanup;
		}
		fill_info(o, it, true);
		out->n++;
	}
	if (i < nsel && out->n > 0) {
		out->next_token = strdup(out->items[out->n - 1].key);
		if (!out->next_token)
			rc = -ENOMEM;
	}
cleanup:
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < nsel; i++)
		mobj_put_locked(sel[i]);
	pthread_mutex_unlock(&d->lock);
	free(sel);
	if (rc) {
		list_page_free(out);
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	}
	return 0;
}

static int mem_remove(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	struct mobj *o;
	int rc;

	rc = fault_check(d, "remove", err);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->lock);
	o = unlink_locked(d, key);
	mobj_put_locked(o);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int mem_remove_many(lexfs_drv *d, const char *const *keys, size_t n,
			   struct lexfs_err *err)
{
	size_t i;
	int rc;

	rc = fault_check(d, "remove_many", err);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < n; i++)
		mobj_put_locked(unlink_locked(d, keys[i]));
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int mem_get_url(lexfs_drv *d, const char *key, char **url, struct lexfs_err *err)
{
	int rc;

	rc = fault_check(d, "get_url", err);
	if (rc)
		return rc;
	*url = urlsign_plain_url(d->base_url, key);
	if (!*url)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	return 0;
}

/* A copy of src's object under dst, with opts' type and meta when opts is given. */
static int clone_obj(const struct mobj *s, const char *dst, const struct lexfs_put_opts *opts,
		     struct mobj **out)
{
	uint8_t *data = malloc(s->size ? (size_t)s->size : 1);
	struct mseg *sg;
	uint64_t pos = 0;

	if (!data)
		return -ENOMEM;
	for (unsigned i = 0; i < s->nsegs; i++) {
		if (s->segs[i].len)
			memcpy(data + pos, s->segs[i].data, (size_t)s->segs[i].len);
		pos += s->segs[i].len;
	}
	sg = one_seg(data, s->size);
	if (!sg)
		return -ENOMEM;
	/* the bytes are the same: so is the ETag, as with S3's CopyObject */
	return mobj_new(dst, &sg, 1, s->etag, opts ? opts->content_type : s->content_type,
			opts ? opts->meta : &s->meta, out);
}

static int mem_copy(lexfs_drv *d, const char *src, const char *dst,
		    const struct lexfs_put_opts *opts, struct lexfs_err *err)
{
	struct mobj *s, *o = NULL;
	int rc;

	rc = fault_check(d, "copy", err);
	if (rc == 0)
		rc = bad_key(dst, err);
	if (rc)
		return rc;
	s = lookup(d, src);
	if (!s)
		return notfound(err, src);
	rc = clone_obj(s, dst, opts, &o);
	mobj_put(d, s);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	return store_obj(d, o, NULL);
}

static int mem_move(lexfs_drv *d, const char *src, const char *dst, struct lexfs_err *err)
{
	struct mobj *s;
	char *nkey;
	int rc;

	rc = fault_check(d, "move", err);
	if (rc == 0)
		rc = bad_key(dst, err);
	if (rc)
		return rc;
	if (strcmp(src, dst) == 0) {
		s = lookup(d, src);
		if (!s)
			return notfound(err, src);
		mobj_put(d, s);
		return 0;
	}
	nkey = strdup(dst);
	if (!nkey)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	/* Atomic: unlink and relink under one lock hold; the object itself keeps its
	 * bytes, only its key changes. */
	pthread_mutex_lock(&d->lock);
	s = unlink_locked(d, src);
	if (s) {
		free(s->key);
		s->key = nkey;
		nkey = NULL;
		insert_locked(d, s);
	}
	pthread_mutex_unlock(&d->lock);
	free(nkey);
	if (!s)
		return notfound(err, src);
	return 0;
}

static int mem_set_meta(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
			struct lexfs_err *err)
{
	struct mobj *s, *o = NULL;
	int rc;

	rc = fault_check(d, "set_meta", err);
	if (rc)
		return rc;
	s = lookup(d, key);
	if (!s)
		return notfound(err, key);
	rc = clone_obj(s, key, opts, &o);
	if (rc == 0)
		o->mtime = s->mtime; /* bytes unchanged */
	mobj_put(d, s);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	return store_obj(d, o, NULL);
}

/* ---- multipart -------------------------------------------------------------- */

static void mpu_free(lexfs_mpu *m)
{
	unsigned i;

	if (!m)
		return;
	for (i = 0; i < m->nparts; i++)
		free(m->parts[i].data);
	free(m->parts);
	free(m->key);
	meta_free(&m->meta);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static int mem_mp_begin(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
			lexfs_mpu **out, struct lexfs_err *err)
{
	lexfs_mpu *m;
	int rc;

	*out = NULL;
	rc = fault_check(d, "mp_begin", err);
	if (rc == 0)
		rc = bad_key(key, err);
	if (rc)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	pthread_mutex_init(&m->lock, NULL);
	meta_init(&m->meta);
	m->key = strdup(key);
	set_ctype(m->content_type, opts ? opts->content_type : NULL);
	if (!m->key || (opts && opts->meta && meta_copy(&m->meta, opts->meta) != 0)) {
		mpu_free(m);
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
	}
	*out = m;
	return 0;
}

static int mem_mp_part(lexfs_drv *d, lexfs_mpu *m, unsigned partno, const struct lexfs_src *src,
		       struct lexfs_err *err)
{
	uint8_t *data;
	int rc;

	rc = fault_check(d, "mp_part", err);
	if (rc)
		return rc;
	if (partno < 1 || partno > 10000)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "memory: bad part number %u",
				  partno);
	rc = read_src(src, &data);
	if (rc)
		return lexfs_fail(err, lexfs_errno_code(-rc), -rc, "memory: reading part: %s",
				  strerror(-rc));
	pthread_mutex_lock(&m->lock);
	if (partno > m->nparts) {
		struct mpart *np = realloc(m->parts, partno * sizeof(*np));

		if (!np) {
			pthread_mutex_unlock(&m->lock);
			free(data);
			return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
		}
		memset(np + m->nparts, 0, (partno - m->nparts) * sizeof(*np));
		m->parts = np;
		m->nparts = partno;
	}
	free(m->parts[partno - 1].data);
	m->parts[partno - 1].data = data;
	m->parts[partno - 1].len = src->len;
	m->parts[partno - 1].set = true;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_mp_complete(lexfs_drv *d, lexfs_mpu *m, unsigned nparts,
			   struct lexfs_objinfo *out, struct lexfs_err *err)
{
	struct mobj *o = NULL;
	struct mseg *segs = NULL;
	char etag[40];
	unsigned i;
	int rc;

	/* complete frees the upload even when it fails, so a retry by the store would
	 * touch freed memory: an injected fault here is never marked retryable. */
	rc = fault_check(d, "mp_complete", err);
	if (rc) {
		if (err)
			err->retryable = false;
		goto cleanup;
	}
	if (nparts == 0 || nparts > m->nparts) {
		rc = lexfs_fail(err, LEXFS_E_TRANSACTION, EINVAL,
				"memory: complete with %u parts, %u sent", nparts, m->nparts);
		goto cleanup;
	}
	for (i = 0; i < nparts; i++) {
		if (!m->parts[i].set) {
			rc = lexfs_fail(err, LEXFS_E_TRANSACTION, EINVAL,
					"memory: part %u was never sent", i + 1);
			goto cleanup;
		}
	}
	/* the parts become the object's segments: moved, not copied */
	segs = calloc(nparts, sizeof(*segs));
	if (!segs) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
		goto cleanup;
	}
	for (i = 0; i < nparts; i++) {
		segs[i].data = m->parts[i].data;
		segs[i].len = m->parts[i].len;
		m->parts[i].data = NULL;
	}
	/* Like S3's, a multipart ETag is not the MD5 of the object; here it is unique
	 * per upload (a hash of the whole object would cost a pass over it at close). */
	snprintf(etag, sizeof(etag), "%016" PRIx64 "-%u",
		 __atomic_add_fetch(&d->mp_seq, 1, __ATOMIC_RELAXED), nparts);
	rc = mobj_new(m->key, &segs, nparts, etag, m->content_type, &m->meta, &o);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "memory: out of memory");
		goto cleanup;
	}
	rc = store_obj(d, o, out);
cleanup:
	mpu_free(m);
	return rc;
}

static int mem_mp_abort(lexfs_drv *d, lexfs_mpu *m, struct lexfs_err *err)
{
	mpu_free(m);
	return 0;
}

/* ---- presign and controls --------------------------------------------------- */

static int mem_presign(lexfs_drv *d, const char *key, enum lexfs_method method,
		       int64_t expires_s, char **url, struct lexfs_err *err)
{
	int rc;

	*url = NULL;
	rc = fault_check(d, "presign", err);
	if (rc == 0)
		rc = bad_key(key, err);
	if (rc)
		return rc;
	if (expires_s <= 0 || expires_s > d->presign_max)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "memory: expiry %" PRId64 " s outside 1..%" PRId64, expires_s,
				  d->presign_max);
	rc = urlsign_make(d->base_url, key, method, now_s() + expires_s, d->signing_key,
			  d->signing_keylen, url);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, -rc, "memory: cannot sign URL");
	return 0;
}

static int mem_control(lexfs_drv *d, const char *name, const char *value,
		       struct lexfs_err *err)
{
	if (!name || !value)
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, EINVAL, "memory: control needs a value");
	if (strcmp(name, "fault") == 0) {
		struct fault f;
		char why[200];

		pthread_mutex_lock(&d->lock);
		f = d->fault;
		pthread_mutex_unlock(&d->lock);
		if (fault_parse(value, &f, why, sizeof(why)) != 0)
			return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "memory: %s", why);
		pthread_mutex_lock(&d->lock);
		if (f.seed)
			d->rng = f.seed;
		f.seed = 0;
		d->fault = f;
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	if (strcmp(name, "verify_url") == 0) {
		int rc = urlsign_verify(value, d->signing_key, d->signing_keylen, now_s(), NULL,
					NULL);

		if (rc == -EACCES)
			return lexfs_fail(err, LEXFS_E_PERMISSION, EACCES,
					  "memory: URL signature does not match");
		if (rc == -ETIMEDOUT)
			return lexfs_fail(err, LEXFS_E_PERMISSION, ETIMEDOUT,
					  "memory: URL has expired");
		if (rc)
			return lexfs_fail(err, LEXFS_E_STORAGE, -rc, "memory: malformed URL");
		return 0;
	}
	return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP, "memory: unknown control \"%.60s\"",
			  name);
}

const struct lexfs_driver lexfs_driver_memory = {
	.name = "memory",
	.abi = LEXFS_DRIVER_ABI,
	.caps = LEXFS_CAP_SERVER_COPY | LEXFS_CAP_ATOMIC_MOVE | LEXFS_CAP_MULTIPART |
		LEXFS_CAP_PARALLEL_PARTS | LEXFS_CAP_RANGE_READ | LEXFS_CAP_SET_META |
		LEXFS_CAP_PRESIGN,
	.min_part_size = 1,
	.max_part_size = 1ull << 32,
	.max_parts = 10000,
	.max_object_size = 0,
	.open = mem_open,
	.close = mem_close,
	.health_check = mem_health,
	.upload = mem_upload,
	.download = mem_download,
	.info = mem_info,
	.list = mem_list,
	.remove = mem_remove,
	.get_url = mem_get_url,
	.exists = mem_exists,
	.copy = mem_copy,
	.move = mem_move,
	.set_meta = mem_set_meta,
	.remove_many = mem_remove_many,
	.mp_begin = mem_mp_begin,
	.mp_part = mem_mp_part,
	.mp_complete = mem_mp_complete,
	.mp_abort = mem_mp_abort,
	.presign = mem_presign,
	.control = mem_control,
	.server_time = NULL,
	.mp_list = NULL,
	.mp_abort_id = NULL,
};
