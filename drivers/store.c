/* store.c - the one entry point to a backend (see store.h).
 *
 * Retry policy: a failure the driver marks retryable (err->retryable) is retried
 * up to max_retries times with capped exponential backoff and full jitter, unless
 * the driver retries on its own (LEXFS_CAP_OWN_RETRY: the HTTP layer does it).
 * A download that already delivered bytes resumes after them, so a sink never
 * sees a byte twice. Uploads are re-read from their source (fd or buffer).
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "drivers/store.h"
#include "src/crypto.h"
#include "src/log.h"

struct store {
	const struct lexfs_driver *drv;
	lexfs_drv *inst;
	void *plugin;
	char *backend_name;
	int max_retries;
	int retry_base_ms;
	int retry_max_ms;
	struct store_opstat stats[STORE_OP_COUNT]; /* updated with __atomic builtins */
};

/* A multipart upload: native (driver handle) or buffered by the fallback. */
struct lexfs_mpu_handle {
	char *key;
	lexfs_mpu *native;
	/* fallback: parts kept in memory until complete */
	struct lexfs_put_opts opts;
	struct lexfs_meta meta;
	char *content_type;
	char **parts;
	uint64_t *part_len;
	unsigned nparts_alloc;
};

static const char *const op_names[STORE_OP_COUNT] = {
	[STORE_OP_HEALTH] = "health_check", [STORE_OP_UPLOAD] = "upload",
	[STORE_OP_DOWNLOAD] = "download",   [STORE_OP_INFO] = "info",
	[STORE_OP_LIST] = "list",           [STORE_OP_REMOVE] = "remove",
	[STORE_OP_GET_URL] = "get_url",     [STORE_OP_EXISTS] = "exists",
	[STORE_OP_COPY] = "copy",           [STORE_OP_MOVE] = "move",
	[STORE_OP_SET_META] = "set_meta",   [STORE_OP_REMOVE_MANY] = "remove_many",
	[STORE_OP_MP_BEGIN] = "mp_begin",   [STORE_OP_MP_PART] = "mp_part",
	[STORE_OP_MP_COMPLETE] = "mp_complete", [STORE_OP_MP_ABORT] = "mp_abort",
	[STORE_OP_PRESIGN] = "presign",
	[STORE_OP_MP_LIST] = "mp_list",
};

const char *store_op_name(enum store_op op)
{
	return (unsigned)op < STORE_OP_COUNT ? op_names[op] : "?";
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void stat_add(struct store *st, enum store_op op, int ret, uint64_t bytes, uint64_t t0)
{
	struct store_opstat *s = &st->stats[op];

	__atomic_add_fetch(&s->calls, 1, __ATOMIC_RELAXED);
	if (ret < 0)
		__atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->bytes, bytes, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->usec, now_usec() - t0, __ATOMIC_RELAXED);
}

static void trace(struct store *st, enum store_op op, const char *key, int ret,
		  const struct lexfs_err *err, uint64_t t0)
{
	if (ret < 0 && ret != -ENOENT)
		log_debug("store %s %s %s: %s (LEXFS-%03d %s)", st->backend_name, op_names[op],
			  key ? key : "", strerror(-ret), err ? (int)err->code : 0,
			  err ? err->message : "");
	log_trace(LOGC_STORE, "store %s %s %s -> %d (%llu us)", st->backend_name, op_names[op],
		  key ? key : "", ret, (unsigned long long)(now_usec() - t0));
}

/* Decide whether to retry after a failure; sleeps the backoff when it does. */
static bool retry_wait(struct store *st, enum store_op op, int attempt, int ret,
		       const struct lexfs_err *err)
{
	unsigned delay, cap;
	uint32_t r = 0;

	if (ret >= 0 || !err || !err->retryable || (st->drv->caps & LEXFS_CAP_OWN_RETRY))
		return false;
	if (attempt >= st->max_retries)
		return false;
	cap = (unsigned)st->retry_base_ms << (attempt < 16 ? attempt : 16);
	if (cap > (unsigned)st->retry_max_ms)
		cap = (unsigned)st->retry_max_ms;
	crypto_random(&r, sizeof(r));
	delay = cap ? r % (cap + 1) : 0; /* full jitter */
	__atomic_add_fetch(&st->stats[op].retries, 1, __ATOMIC_RELAXED);
	log_info("store %s %s: %s, retry %d/%d in %u ms", st->backend_name, op_names[op],
		 err->message[0] ? err->message : strerror(-ret), attempt + 1, st->max_retries,
		 delay);
	usleep(delay * 1000u);
	return true;
}

/* Every wrapper: reset err, call, retry (when `retry`), account. `call` is an
 * expression. */
#define STORE_CALL_R(st, op, key, bytes, err, retry, call)                                         \
	({                                                                                         \
		struct lexfs_err _local;                                                           \
		struct lexfs_err *_e = (err) ? (err) : &_local;                                    \
		uint64_t _t0 = now_usec();                                                         \
		int _ret, _attempt = 0;                                                            \
		do {                                                                               \
			lexfs_err_clear(_e);                                                       \
			_ret = (call);                                                             \
		} while ((retry) && retry_wait((st), (op), _attempt++, _ret, _e));                 \
		stat_add((st), (op), _ret, _ret >= 0 ? (bytes) : 0, _t0);                          \
		trace((st), (op), (key), _ret, _e, _t0);                                           \
		_ret;                                                                              \
	})
#define STORE_CALL(st, op, key, bytes, err, call) STORE_CALL_R(st, op, key, bytes, err, true, call)
/* For calls that consume their handle (mp_complete, mp_abort free it even when
 * they fail), so a second attempt would use freed memory. */
#define STORE_CALL_ONCE(st, op, key, bytes, err, call)                                             \
	STORE_CALL_R(st, op, key, bytes, err, false, call)

static int missing(struct lexfs_err *err, struct store *st, const char *what)
{
	return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP, "driver %s has no %s operation",
			  st->drv->name, what);
}

int store_create(const struct store_conf *conf, struct store **out, struct lexfs_err *err)
{
	struct lexfs_driver_conf dconf = { 0 };
	struct store *st;
	char why[512];
	int ret;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->backend_name = strdup(conf->backend_name ? conf->backend_name : "default");
	if (!st->backend_name) {
		ret = -ENOMEM;
		goto fail;
	}
	st->max_retries = conf->max_retries > 0 ? conf->max_retries : 4;
	st->retry_base_ms = conf->retry_base_ms > 0 ? conf->retry_base_ms : 100;
	st->retry_max_ms = conf->retry_max_ms > 0 ? conf->retry_max_ms : 5000;

	if (conf->table)
		st->drv = conf->table;
	else
		st->drv = registry_load(conf->driver, conf->plugin_dir, &st->plugin, why,
					sizeof(why));
	if (!st->drv) {
		ret = lexfs_fail(err, LEXFS_E_UNSUPPORTED, EINVAL, "%s", why);
		goto fail;
	}
	dconf.backend_name = st->backend_name;
	dconf.settings = conf->settings;
	dconf.timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 30000;
	dconf.max_retries = st->max_retries;
	lexfs_err_clear(err);
	ret = st->drv->open(&dconf, &st->inst, err);
	if (ret < 0)
		goto fail;
	*out = st;
	return 0;
fail:
	if (st->plugin)
		dlclose(st->plugin);
	free(st->backend_name);
	free(st);
	return ret;
}

void store_destroy(struct store *st)
{
	if (!st)
		return;
	if (st->drv && st->drv->close)
		st->drv->close(st->inst);
	if (st->plugin)
		dlclose(st->plugin);
	free(st->backend_name);
	free(st);
}

const struct lexfs_driver *store_driver(const struct store *st)
{
	return st->drv;
}

const char *store_backend_name(const struct store *st)
{
	return st->backend_name;
}

unsigned store_caps(const struct store *st)
{
	return st->drv->caps;
}

int store_health_check(struct store *st, int timeout_ms, struct lexfs_err *err)
{
	if (!st->drv->health_check)
		return missing(err, st, "health_check");
	/* never retried: the caller wants to know now */
	struct lexfs_err local;
	struct lexfs_err *e = err ? err : &local;
	uint64_t t0 = now_usec();
	int ret;

	lexfs_err_clear(e);
	ret = st->drv->health_check(st->inst, timeout_ms, e);
	stat_add(st, STORE_OP_HEALTH, ret, 0, t0);
	trace(st, STORE_OP_HEALTH, NULL, ret, e, t0);
	return ret;
}

int store_upload(struct store *st, const char *key, const struct lexfs_src *src,
		 const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
		 struct lexfs_err *err)
{
	if (!st->drv->upload)
		return missing(err, st, "upload");
	return STORE_CALL(st, STORE_OP_UPLOAD, key, src->len, err,
			  st->drv->upload(st->inst, key, src, opts, out, _e));
}

struct counting_sink {
	lexfs_sink_fn sink;
	void *arg;
	uint64_t delivered;
};

static int count_sink(void *arg, const void *data, size_t len)
{
	struct counting_sink *cs = arg;
	int ret = cs->sink(cs->arg, data, len);

	if (ret == 0)
		cs->delivered += len;
	return ret;
}

int store_download(struct store *st, const char *key, uint64_t off, uint64_t len,
		   lexfs_sink_fn sink, void *arg, struct lexfs_err *err)
{
	struct counting_sink cs = { sink, arg, 0 };

	if (!st->drv->download)
		return missing(err, st, "download");
	/* On a retry, resume after what the sink already has. */
	return STORE_CALL(st, STORE_OP_DOWNLOAD, key, cs.delivered, err,
			  st->drv->download(st->inst, key, off + cs.delivered,
					    len == UINT64_MAX ? UINT64_MAX : len - cs.delivered,
					    count_sink, &cs, _e));
}

struct mem_sink {
	char *buf;
	size_t cap;
	size_t got;
};

static int mem_sink_fn(void *arg, const void *data, size_t len)
{
	struct mem_sink *ms = arg;

	if (len > ms->cap - ms->got)
		len = ms->cap - ms->got; /* a server sending more than asked is ignored */
	memcpy(ms->buf + ms->got, data, len);
	ms->got += len;
	return 0;
}

int store_read(struct store *st, const char *key, uint64_t off, size_t len, void *buf,
	       size_t *got, struct lexfs_err *err)
{
	struct mem_sink ms = { buf, len, 0 };
	int ret;

	*got = 0;
	if (len == 0)
		return 0;
	ret = store_download(st, key, off, len, mem_sink_fn, &ms, err);
	if (ret == 0)
		*got = ms.got;
	return ret;
}

struct fd_sink {
	int fd;
	off_t off;
	uint64_t got;
};

static int fd_sink_fn(void *arg, const void *data, size_t len)
{
	struct fd_sink *fs = arg;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fs->fd, (const char *)data + done, len - done,
				   fs->off + (off_t)fs->got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
		fs->got += (uint64_t)n;
	}
	return 0;
}

int store_download_fd(struct store *st, const char *key, uint64_t off, uint64_t len, int fd,
		      off_t fd_off, uint64_t *got, struct lexfs_err *err)
{
	struct fd_sink fs = { fd, fd_off, 0 };
	int ret = store_download(st, key, off, len, fd_sink_fn, &fs, err);

	if (got)
		*got = fs.got;
	return ret;
}

int store_info(struct store *st, const char *key, struct lexfs_objinfo *out,
	       struct lexfs_err *err)
{
	if (!st->drv->info)
		return missing(err, st, "info");
	memset(out, 0, sizeof(*out));
	return STORE_CALL(st, STORE_OP_INFO, key, 0, err, st->drv->info(st->inst, key, out, _e));
}

struct info_many {
	struct store *st;
	const char *const *keys;
	struct lexfs_objinfo *outs;
	int *rcs;
	size_t n;
	size_t next; /* the next index to take (atomic) */
};

static void *info_many_worker(void *arg)
{
	struct info_many *im = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&im->next, 1, __ATOMIC_RELAXED)) < im->n)
		im->rcs[i] = store_info(im->st, im->keys[i], &im->outs[i], NULL);
	return NULL;
}

int store_info_many(struct store *st, const char *const *keys, size_t n, unsigned parallel,
		    struct lexfs_objinfo *outs, int *rcs)
{
	struct info_many im = {.st = st, .keys = keys, .outs = outs, .rcs = rcs, .n = n};
	pthread_t th[32];
	unsigned nth = 0;

	if (parallel > 32)
		parallel = 32;
	if (parallel > n)
		parallel = (unsigned)n;
	/* this thread is one of the workers; the others are started here */
	while (nth + 1 < parallel && pthread_create(&th[nth], NULL, info_many_worker, &im) == 0)
		nth++;
	info_many_worker(&im);
	for (unsigned t = 0; t < nth; t++)
		pthread_join(th[t], NULL);
	return 0;
}

int store_list(struct store *st, const char *prefix, const char *delim, const char *token,
	       unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err)
{
	if (!st->drv->list)
		return missing(err, st, "list");
	memset(out, 0, sizeof(*out));
	if (max_keys == 0 || max_keys > 1000)
		max_keys = 1000;
	return STORE_CALL(st, STORE_OP_LIST, prefix, 0, err,
			  st->drv->list(st->inst, prefix, delim, token, max_keys, out, _e));
}

int store_remove(struct store *st, const char *key, struct lexfs_err *err)
{
	if (!st->drv->remove)
		return missing(err, st, "remove");
	return STORE_CALL(st, STORE_OP_REMOVE, key, 0, err, st->drv->remove(st->inst, key, _e));
}

int store_remove_many(struct store *st, const char *const *keys, size_t n,
		      struct lexfs_err *err)
{
	int ret = 0;

	if (n == 0)
		return 0;
	if (st->drv->remove_many) {
		for (size_t i = 0; i < n && ret == 0; i += 1000) {
			size_t chunk = n - i < 1000 ? n - i : 1000;

			ret = STORE_CALL(st, STORE_OP_REMOVE_MANY, keys[i], 0, err,
					 st->drv->remove_many(st->inst, keys + i, chunk, _e));
		}
		return ret;
	}
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = store_remove(st, keys[i], err);
	return ret;
}

int store_get_url(struct store *st, const char *key, char **url, struct lexfs_err *err)
{
	*url = NULL;
	if (!st->drv->get_url)
		return missing(err, st, "get_url");
	return STORE_CALL(st, STORE_OP_GET_URL, key, 0, err,
			  st->drv->get_url(st->inst, key, url, _e));
}

int store_exists(struct store *st, const char *key, struct lexfs_err *err)
{
	struct lexfs_objinfo oi;
	int ret;

	if (st->drv->exists)
		return STORE_CALL(st, STORE_OP_EXISTS, key, 0, err,
				  st->drv->exists(st->inst, key, _e));
	ret = store_info(st, key, &oi, err);
	objinfo_free(&oi);
	if (ret == -ENOENT)
		return 0;
	return ret < 0 ? ret : 1;
}

/* Fallback copy: download into a temporary file, upload from it. */
static int copy_fallback(struct store *st, const char *src, const char *dst,
			 const struct lexfs_put_opts *opts, struct lexfs_err *err)
{
	struct lexfs_objinfo oi;
	struct lexfs_put_opts keep = { 0 };
	struct lexfs_src body = { 0 };
	char tmpl[] = "/tmp/lexfs-copy-XXXXXX";
	uint64_t got = 0;
	int fd, ret;

	ret = store_info(st, src, &oi, err);
	if (ret < 0)
		return ret;
	fd = mkstemp(tmpl);
	if (fd < 0) {
		ret = lexfs_fail(err, LEXFS_E_STORAGE, errno, "copy: temporary file: %s",
				 strerror(errno));
		goto out_info;
	}
	unlink(tmpl);
	ret = store_download_fd(st, src, 0, UINT64_MAX, fd, 0, &got, err);
	if (ret < 0)
		goto out_fd;
	if (!opts) {
		keep.content_type = oi.content_type[0] ? oi.content_type : NULL;
		keep.meta = &oi.meta;
		opts = &keep;
	}
	body.fd = fd;
	body.len = got;
	ret = store_upload(st, dst, &body, opts, NULL, err);
out_fd:
	close(fd);
out_info:
	objinfo_free(&oi);
	return ret;
}

int store_copy(struct store *st, const char *src, const char *dst,
	       const struct lexfs_put_opts *opts, struct lexfs_err *err)
{
	if (st->drv->copy)
		return STORE_CALL(st, STORE_OP_COPY, src, 0, err,
				  st->drv->copy(st->inst, src, dst, opts, _e));
	return copy_fallback(st, src, dst, opts, err);
}

int store_move(struct store *st, const char *src, const char *dst, struct lexfs_err *err)
{
	int ret;

	if (st->drv->move)
		return STORE_CALL(st, STORE_OP_MOVE, src, 0, err,
				  st->drv->move(st->inst, src, dst, _e));
	ret = store_copy(st, src, dst, NULL, err);
	if (ret < 0)
		return ret;
	return store_remove(st, src, err);
}

int store_set_meta(struct store *st, const char *key, const struct lexfs_put_opts *opts,
		   struct lexfs_err *err)
{
	if (st->drv->set_meta)
		return STORE_CALL(st, STORE_OP_SET_META, key, 0, err,
				  st->drv->set_meta(st->inst, key, opts, _e));
	return store_copy(st, key, key, opts, err);
}

int store_presign(struct store *st, const char *key, enum lexfs_method method,
		  int64_t expires_s, char **url, struct lexfs_err *err)
{
	*url = NULL;
	if (!st->drv->presign)
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP,
				  "driver %s cannot make presigned URLs", st->drv->name);
	return STORE_CALL(st, STORE_OP_PRESIGN, key, 0, err,
			  st->drv->presign(st->inst, key, method, expires_s, url, _e));
}

int store_control(struct store *st, const char *name, const char *value,
		  struct lexfs_err *err)
{
	if (!st->drv->control)
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP, "driver %s has no control %s",
				  st->drv->name, name);
	lexfs_err_clear(err);
	return st->drv->control(st->inst, name, value, err);
}

int store_server_time(struct store *st, int timeout_ms, int64_t *server, int64_t *local,
		      struct lexfs_err *err)
{
	int ret;

	*server = *local = 0;
	if (!st->drv->server_time)
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP,
				  "driver %s does not know a server clock", st->drv->name);
	lexfs_err_clear(err);
	ret = st->drv->server_time(st->inst, server, local, err);
	if (ret != -ENODATA)
		return ret;
	/* Nothing heard from the server yet: one round trip, then ask again. */
	ret = store_health_check(st, timeout_ms, err);
	if (ret < 0)
		return ret;
	lexfs_err_clear(err);
	ret = st->drv->server_time(st->inst, server, local, err);
	if (ret == -ENODATA)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENODATA,
				  "the %s server sends no Date header", st->drv->name);
	return ret;
}

int store_mp_list(struct store *st, const char *prefix, const char *token, unsigned max_uploads,
		  struct lexfs_upload_page *out, struct lexfs_err *err)
{
	memset(out, 0, sizeof(*out));
	if (max_uploads == 0 || max_uploads > 1000)
		max_uploads = 1000;
	if (!st->drv->mp_list || !st->drv->mp_abort_id)
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP,
				  "driver %s cannot list incomplete multipart uploads",
				  st->drv->name);
	return STORE_CALL(
	    st, STORE_OP_MP_LIST, prefix, 0, err,
	    st->drv->mp_list(st->inst, prefix ? prefix : "", token, max_uploads, out, _e));
}

int store_mp_abort_id(struct store *st, const char *key, const char *upload_id,
		      struct lexfs_err *err)
{
	if (!st->drv->mp_list || !st->drv->mp_abort_id)
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP,
				  "driver %s cannot abort uploads by id", st->drv->name);
	return STORE_CALL(st, STORE_OP_MP_ABORT, key, 0, err,
			  st->drv->mp_abort_id(st->inst, key, upload_id, _e));
}

static bool native_mp(const struct store *st)
{
	const struct lexfs_driver *d = st->drv;

	return d->mp_begin && d->mp_part && d->mp_complete && d->mp_abort;
}

static void mpu_free(store_mpu *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->nparts_alloc; i++)
		free(m->parts[i]);
	free(m->parts);
	free(m->part_len);
	meta_free(&m->meta);
	free(m->content_type);
	free(m->key);
	free(m);
}

int store_mp_begin(struct store *st, const char *key, const struct lexfs_put_opts *opts,
		   store_mpu **out, struct lexfs_err *err)
{
	store_mpu *m;
	int ret;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	meta_init(&m->meta);
	m->key = strdup(key);
	if (!m->key) {
		ret = -ENOMEM;
		goto fail;
	}
	if (native_mp(st)) {
		ret = STORE_CALL(st, STORE_OP_MP_BEGIN, key, 0, err,
				 st->drv->mp_begin(st->inst, key, opts, &m->native, _e));
		if (ret < 0)
			goto fail;
	} else if (opts) {
		ret = opts->meta ? meta_copy(&m->meta, opts->meta) : 0;
		if (ret == 0 && opts->content_type) {
			m->content_type = strdup(opts->content_type);
			if (!m->content_type)
				ret = -ENOMEM;
		}
		if (ret < 0)
			goto fail;
	}
	*out = m;
	return 0;
fail:
	mpu_free(m);
	return ret;
}

int store_mp_part(struct store *st, store_mpu *m, unsigned partno, const struct lexfs_src *src,
		  struct lexfs_err *err)
{
	char *copy;
	int ret;

	if (partno == 0)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "part numbers start at 1");
	if (m->native)
		return STORE_CALL(st, STORE_OP_MP_PART, m->key, src->len, err,
				  st->drv->mp_part(st->inst, m->native, partno, src, _e));
	/* Fallback: keep the part in memory until complete. */
	if (partno > m->nparts_alloc) {
		unsigned n = partno + 16;
		char **p = realloc(m->parts, n * sizeof(*p));
		uint64_t *l;

		if (!p)
			return -ENOMEM;
		m->parts = p;
		l = realloc(m->part_len, n * sizeof(*l));
		if (!l)
			return -ENOMEM;
		m->part_len = l;
		for (unsigned i = m->nparts_alloc; i < n; i++) {
			m->parts[i] = NULL;
			m->part_len[i] = 0;
		}
		m->nparts_alloc = n;
	}
	copy = malloc(src->len ? src->len : 1);
	if (!copy)
		return -ENOMEM;
	ret = src_read(src, 0, copy, src->len);
	if (ret < 0) {
		free(copy);
		return ret;
	}
	free(m->parts[partno - 1]);
	m->parts[partno - 1] = copy;
	m->part_len[partno - 1] = src->len;
	return 0;
}

int store_mp_complete(struct store *st, store_mpu *m, unsigned nparts, struct lexfs_objinfo *out,
		      struct lexfs_err *err)
{
	struct lexfs_put_opts opts = { 0 };
	struct lexfs_src body = { 0 };
	uint64_t total = 0, pos = 0;
	char *all = NULL;
	int ret;

	if (m->native) {
		ret = STORE_CALL_ONCE(st, STORE_OP_MP_COMPLETE, m->key, 0, err,
				 st->drv->mp_complete(st->inst, m->native, nparts, out, _e));
		m->native = NULL; /* the driver freed it */
		mpu_free(m);
		return ret;
	}
	for (unsigned i = 0; i < nparts; i++) {
		if (i >= m->nparts_alloc || !m->parts[i]) {
			ret = lexfs_fail(err, LEXFS_E_TRANSACTION, EIO,
					 "multipart %s: part %u missing", m->key, i + 1);
			goto out;
		}
		total += m->part_len[i];
	}
	all = malloc(total ? total : 1);
	if (!all) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < nparts; i++) {
		memcpy(all + pos, m->parts[i], m->part_len[i]);
		pos += m->part_len[i];
	}
	body.buf = all;
	body.len = total;
	opts.meta = &m->meta;
	opts.content_type = m->content_type;
	ret = store_upload(st, m->key, &body, &opts, out, err);
out:
	free(all);
	mpu_free(m);
	return ret;
}

int store_mp_abort(struct store *st, store_mpu *m, struct lexfs_err *err)
{
	int ret = 0;

	if (!m)
		return 0;
	if (m->native) {
		ret = STORE_CALL_ONCE(st, STORE_OP_MP_ABORT, m->key, 0, err,
				 st->drv->mp_abort(st->inst, m->native, _e));
		m->native = NULL;
	}
	mpu_free(m);
	return ret;
}

uint64_t store_part_size(const struct store *st, uint64_t size_hint, uint64_t want)
{
	const struct lexfs_driver *d = st->drv;
	uint64_t size = want ? want : 8u << 20;
	uint64_t cover = size_hint ? size_hint : d->max_object_size;
	unsigned max_parts = d->max_parts ? d->max_parts : 10000;

	if (d->min_part_size && size < d->min_part_size)
		size = d->min_part_size;
	if (cover) {
		uint64_t need = (cover + max_parts - 1) / max_parts;

		if (size < need)
			size = need;
	}
	/* round up to a MiB so parts align with cache pages and GCS's 256 KiB */
	size = (size + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	if (d->max_part_size && size > d->max_part_size)
		size = d->max_part_size;
	return size;
}

void store_stats(const struct store *st, struct store_opstat out[STORE_OP_COUNT])
{
	for (int i = 0; i < STORE_OP_COUNT; i++) {
		out[i].calls = __atomic_load_n(&st->stats[i].calls, __ATOMIC_RELAXED);
		out[i].errors = __atomic_load_n(&st->stats[i].errors, __ATOMIC_RELAXED);
		out[i].retries = __atomic_load_n(&st->stats[i].retries, __ATOMIC_RELAXED);
		out[i].bytes = __atomic_load_n(&st->stats[i].bytes, __ATOMIC_RELAXED);
		out[i].usec = __atomic_load_n(&st->stats[i].usec, __ATOMIC_RELAXED);
	}
}

void store_stats_reset(struct store *st)
{
	for (int i = 0; i < STORE_OP_COUNT; i++) {
		__atomic_store_n(&st->stats[i].calls, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&st->stats[i].errors, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&st->stats[i].retries, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&st->stats[i].bytes, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&st->stats[i].usec, 0, __ATOMIC_RELAXED);
	}
}

char *store_stats_json(const struct store *st)
{
	struct store_opstat s[STORE_OP_COUNT];
	json_t *root = json_object();
	json_t *ops = json_object();
	char *text = NULL;

	if (!root || !ops)
		goto out;
	store_stats(st, s);
	json_object_set_new(root, "driver", json_string(st->drv->name));
	json_object_set_new(root, "backend", json_string(st->backend_name));
	for (int i = 0; i < STORE_OP_COUNT; i++) {
		json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I}", "calls", (json_int_t)s[i].calls,
				      "errors", (json_int_t)s[i].errors, "retries",
				      (json_int_t)s[i].retries, "bytes", (json_int_t)s[i].bytes,
				      "usec", (json_int_t)s[i].usec);
		if (o)
			json_object_set_new(ops, op_names[i], o);
	}
	json_object_set(root, "ops", ops);
	text = json_dumps(root, JSON_COMPACT);
out:
	json_decref(ops);
	json_decref(root);
	return text;
}
