/* upload.c - the upload engine: streaming multipart, whole-file uploads, write-back.
 *
 * Worker threads (conf.upload_concurrency of them) take jobs from two queues:
 *   part jobs   one part of a streaming multipart upload (FIFO)
 *   file jobs   write-back uploads of closed files, each due at a time (the
 *               write-back delay; retries back off exponentially up to 60 s)
 *
 * Streaming. A sequential writer whose file reaches one part size starts a stream
 * (store_mp_begin); from then on every completed part is queued and uploaded from
 * the cache file while the writer goes on. All non-final parts have the same size
 * (store_part_size), so part i always covers [(i-1)*ps, i*ps). Parts are read from
 * the cache file by the driver, so memory stays bounded whatever the file size; the
 * writer waits when more than 2 * upload_concurrency parts are outstanding.
 *
 * Part states (struct part, guarded by e->lock):
 *
 *   state     meaning                              next
 *   NONE      not sent, or must be sent again      QUEUED (sequential writer,
 *                                                  finisher)
 *   QUEUED    a job for it exists (or the finisher  INFLIGHT (a worker or the
 *             takes it inline)                     finisher takes it)
 *   INFLIGHT  being sent; `stale` is set when a     DONE, or NONE when stale or
 *             write touches it meanwhile           failed
 *   DONE      the store holds the current bytes    NONE when a write or truncate
 *                                                  touches it
 *
 * A write behind the frontier only turns the parts it touches back to NONE: at
 * close the finisher re-sends those and keeps the rest ("reuse what it can").
 * The finisher (centry_upload, in the closing thread or a write-back worker) owns
 * the entry (e->busy), queues every part not DONE, also runs queued parts itself
 * (so it never waits for a pool that is busy with other finishers), then completes.
 * A stream is aborted (store_mp_abort) on every failure path, on rename, O_TRUNC,
 * unlink and ENOSPC, so no partial object ever appears. Files up to one part go up
 * as one PUT.
 *
 * Unmount (upload_drain) gives every dirty entry one more upload, due now (an
 * upload already running when it begins counts as that one: no second job is
 * queued), and requeues nothing that fails once it has begun: a failed file keeps
 * its journal record (the next mount uploads it) and the log says how many were
 * left. So the drain ends after about ceil(pending files / upload_concurrency)
 * rounds of one upload each (one more for a file whose upload failed just before
 * the unmount and requeued itself), and
 * one upload is bounded by the store's retry policy (drivers/store.c: max_retries
 * more tries, backoff at most retry_max_ms each) and, for the HTTP drivers, by
 * their connect and no-progress timeouts per try. A store that refuses at once
 * (a read-only local root, a revoked key) ends the drain at once. A store that
 * is down (an upload of the drain fails with EIO or ETIMEDOUT: the retries
 * already ran out) ends it too: the files not yet tried are not sent to wait out
 * the same retries one after another, so an unmount with an unreachable endpoint
 * takes about one upload's retries, not one per pending file. They stay in the
 * journal like the failed ones. A refusal of one file (EACCES, EINVAL, EFBIG, ...)
 * does not stop the others.
 *
 * A worker holds a reference on the entry of each job. A part job names its stream
 * by id: a job whose stream was aborted or whose part is no longer QUEUED is
 * dropped. An aborted stream is detached from the entry at once and freed when no
 * part of it is in flight (s->running == 0).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "cache/meta_cache.h"
#include "src/events.h"
#include "src/log.h"

enum part_state { P_NONE = 0, P_QUEUED, P_INFLIGHT, P_DONE };

struct part {
	unsigned char state;
	bool stale;
};

struct stream {
	uint64_t id;
	store_mpu *mpu;
	char *key;   /* the key the upload was begun for */
	uint64_t ps; /* part size */
	unsigned max_parts;
	struct part *parts; /* parts[i] is part number i + 1 */
	unsigned cap;
	uint64_t frontier; /* [0, frontier) has been queued by the sequential writer */
	unsigned queued, running;
	int err;	   /* last part error */
	bool overflow;	   /* the file outgrew max_parts * ps */
	bool aborted;	   /* detached; freed when running reaches 0 */
	bool fallback;	   /* a write went behind the frontier */
	uint64_t meta_gen; /* e->meta_gen when begun */
};

struct ujob {
	struct ujob *next;
	struct centry *e; /* a reference held by the job */
	uint64_t sid;	  /* part job: stream id; 0 for a file job */
	unsigned partno;
	int64_t due_ms;
	unsigned tries;
};

struct upload_engine {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* work, or stop */
	pthread_cond_t idle; /* a job finished */
	struct ujob *phead, *ptail;
	struct ujob *files; /* file jobs, unordered */
	unsigned nfiles, nparts, active;
	bool stop, draining;
	bool store_down; /* the drain met a store that is down: try no more files */
	pthread_t *th;
	unsigned nth;
	uint64_t next_sid;
};

/* Files up to one part go up as one PUT. */
static uint64_t part_size_for(struct cache *c, uint64_t size)
{
	return store_part_size(c->st, size, c->conf.part_size);
}

static bool can_stream(struct cache *c)
{
	return (store_caps(c->st) & LEXFS_CAP_MULTIPART) != 0;
}

/* ---- queues ------------------------------------------------------------------- */

/* e->lock may be held (the engine lock is a leaf). The caller holds a reference on
 * e; the job takes another. */
static int queue_part(struct cache *c, struct centry *e, struct stream *s, unsigned partno)
{
	struct upload_engine *u = c->up;
	struct ujob *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	centry_hold_more(e);
	j->e = e;
	j->sid = s->id;
	j->partno = partno;
	pthread_mutex_lock(&u->lock);
	if (u->ptail)
		u->ptail->next = j;
	else
		u->phead = j;
	u->ptail = j;
	u->nparts++;
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

/* Make e's queued file job due at due_ms, or queue j (a new job) for it. u->lock
 * held. Returns true when j was used (it holds a reference on e then). */
static bool file_job_locked(struct upload_engine *u, struct centry *e, struct ujob *j,
			    int64_t due_ms)
{
	if (e->wbjob) {
		e->wbjob->due_ms = due_ms; /* a newer close restarts the delay */
		return false;
	}
	if (!j)
		return false;
	centry_hold_more(e);
	j->e = e;
	j->due_ms = due_ms;
	j->next = u->files;
	u->files = j;
	u->nfiles++;
	e->wbjob = j;
	return true;
}

void upload_enqueue(struct cache *c, struct centry *e, int64_t due_ms)
{
	struct upload_engine *u = c->up;
	struct ujob *j = NULL;
	bool used = false;

	pthread_mutex_lock(&u->lock);
	if (!file_job_locked(u, e, NULL, due_ms) && !e->wbjob) {
		/* a new job: allocated outside the lock, and queued unless another
		 * enqueue did it meanwhile */
		pthread_mutex_unlock(&u->lock);
		j = calloc(1, sizeof(*j));
		pthread_mutex_lock(&u->lock);
		used = file_job_locked(u, e, j, due_ms);
		if (!j && !e->wbjob)
			log_err("cache: out of memory queueing an upload; it will run at "
				"unmount");
	}
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	if (!used)
		free(j);
}

/* ---- streams ------------------------------------------------------------------ */

static struct stream *stream_new(struct cache *c, uint64_t ps)
{
	struct stream *s = calloc(1, sizeof(*s));
	const struct lexfs_driver *d = store_driver(c->st);

	if (!s)
		return NULL;
	s->ps = ps;
	s->max_parts = d->max_parts ? d->max_parts : 10000;
	pthread_mutex_lock(&c->up->lock);
	s->id = ++c->up->next_sid;
	pthread_mutex_unlock(&c->up->lock);
	return s;
}

static int stream_grow(struct stream *s, unsigned n)
{
	struct part *np;
	unsigned ncap;

	if (n <= s->cap)
		return 0;
	ncap = s->cap ? s->cap : 64;
	while (ncap < n)
		ncap *= 2;
	np = realloc(s->parts, ncap * sizeof(*np));
	if (!np)
		return -ENOMEM;
	memset(np + s->cap, 0, (ncap - s->cap) * sizeof(*np));
	s->parts = np;
	s->cap = ncap;
	return 0;
}

/* Begin the multipart upload of e under key. e->lock held (one round trip). */
static int stream_begin(struct cache *c, struct centry *e, const char *key, uint64_t ps)
{
	struct lexfs_put_opts opts = {0};
	struct lexfs_err err = {0};
	struct stream *s;
	int ret;

	s = stream_new(c, ps);
	if (!s)
		return -ENOMEM;
	s->key = strdup(key);
	if (!s->key) {
		free(s);
		return -ENOMEM;
	}
	opts.content_type = e->content_type[0] ? e->content_type : NULL;
	opts.meta = &e->meta;
	s->meta_gen = e->meta_gen;
	ret = store_mp_begin(c->st, key, &opts, &s->mpu, &err);
	if (ret < 0) {
		log_err("cache: multipart begin of %s: %s (%s)", key, strerror(-ret), err.message);
		free(s->key);
		free(s);
		return ret;
	}
	e->stream = s;
	STAT_ADD(c, st_streams, 1);
	return 0;
}

/* Detach and abort e's stream; e->lock held; the caller owns e (busy) or nobody
 * does. Waits for parts in flight (they use the upload handle). */
void upload_stream_abort(struct cache *c, struct centry *e)
{
	struct stream *s = e->stream;
	struct lexfs_err err = {0};
	int ret;

	if (!s)
		return;
	e->stream = NULL;
	s->aborted = true;
	while (s->running > 0)
		pthread_cond_wait(&e->cond, &e->lock);
	if (s->mpu) {
		ret = store_mp_abort(c->st, s->mpu, &err);
		if (ret < 0)
			log_warn("cache: multipart abort of %s: %s (%s)", s->key, strerror(-ret),
				 err.message);
	}
	free(s->parts);
	free(s->key);
	free(s);
}

/* Send part idx (state QUEUED) of s; e->lock held, released during the upload.
 * Returns the result; the caller must re-check e->stream == s afterwards. */
static int run_part_locked(struct cache *c, struct centry *e, struct stream *s, unsigned idx,
			   uint64_t len)
{
	struct lexfs_src src = {0};
	struct lexfs_err err = {0};
	store_mpu *mpu = s->mpu;
	int ret;

	s->parts[idx].state = P_INFLIGHT;
	s->parts[idx].stale = false;
	s->queued--;
	s->running++;
	src.fd = e->fd;
	src.off = (off_t)((uint64_t)idx * s->ps);
	src.len = len;
	pthread_mutex_unlock(&e->lock);
	ret = store_mp_part(c->st, mpu, idx + 1, &src, &err);
	if (ret < 0)
		log_warn("cache: part %u of %s: %s (%s)", idx + 1, s->key, strerror(-ret),
			 err.message);
	pthread_mutex_lock(&e->lock);
	s->running--;
	if (!s->aborted) {
		if (ret == 0 && !s->parts[idx].stale) {
			s->parts[idx].state = P_DONE;
			__atomic_add_fetch(&e->up_done, len, __ATOMIC_RELAXED);
		} else {
			s->parts[idx].state = P_NONE;
			if (ret < 0)
				s->err = ret;
		}
	}
	pthread_cond_broadcast(&e->cond);
	if (ret == 0) {
		STAT_ADD(c, st_parts, 1);
		STAT_ADD(c, st_part_bytes, len);
	} else {
		STAT_ADD(c, st_upload_errors, 1);
	}
	return ret;
}

/* A worker's part job. */
static void job_part(struct cache *c, struct ujob *j)
{
	struct centry *e = j->e;
	struct stream *s;

	pthread_mutex_lock(&e->lock);
	s = e->stream;
	if (s && s->id == j->sid && j->partno <= s->cap &&
	    s->parts[j->partno - 1].state == P_QUEUED)
		(void)run_part_locked(c, e, s, j->partno - 1, s->ps);
	pthread_mutex_unlock(&e->lock);
}

/* Mark the parts that overlap [off, end) as needing to be sent again. */
static void stream_touch(struct cache *c, struct stream *s, uint64_t off, uint64_t end)
{
	unsigned first = (unsigned)(off / s->ps);
	unsigned last = (unsigned)((end - 1) / s->ps);

	if (!s->fallback) {
		s->fallback = true;
		STAT_ADD(c, st_stream_fallbacks, 1);
	}
	for (unsigned i = first; i <= last && i < s->cap; i++) {
		struct part *p = &s->parts[i];

		if (p->state == P_DONE) {
			p->state = P_NONE;
		} else if (p->state == P_INFLIGHT) {
			p->stale = true;
		}
	}
}

void upload_after_write(struct cache *c, struct centry *e, uint64_t off, uint64_t len)
{
	struct stream *s = e->stream;
	bool sequential = off == e->seq_end;
	unsigned limit = 2 * c->conf.upload_concurrency;
	uint64_t sid;
	char *key;

	if (e->busy || e->poison || !e->hashed)
		return;
	if (s) {
		if (off < s->frontier)
			stream_touch(c, s, off, off + len);
	} else {
		uint64_t ps;

		if (!sequential || e->remote_limit > 0 || !can_stream(c))
			return;
		ps = part_size_for(c, e->size);
		if (e->size <= ps)
			return;
		key = centry_key_dup(e);
		if (!key || stream_begin(c, e, key, ps) < 0) {
			free(key);
			return; /* the upload at close sends the file whole */
		}
		free(key);
		s = e->stream;
		__atomic_store_n(&e->up_done, 0, __ATOMIC_RELAXED);
	}
	if (!sequential || s->overflow)
		return;
	while (s->frontier + s->ps <= e->size) {
		unsigned idx = (unsigned)(s->frontier / s->ps);

		if (idx + 1 >= s->max_parts) {
			s->overflow = true; /* the finisher re-sends with larger parts */
			break;
		}
		if (stream_grow(s, idx + 1) < 0)
			break;
		if (s->parts[idx].state == P_NONE) {
			if (queue_part(c, e, s, idx + 1) < 0)
				break;
			s->parts[idx].state = P_QUEUED;
			s->queued++;
		}
		s->frontier += s->ps;
	}
	__atomic_store_n(&e->up_total, e->size, __ATOMIC_RELAXED);
	/* back-pressure: the writer stays near the upload */
	sid = s->id;
	while (e->stream && e->stream->id == sid && e->stream->queued + e->stream->running > limit)
		pthread_cond_wait(&e->cond, &e->lock);
}

void upload_after_truncate(struct cache *c, struct centry *e, uint64_t size)
{
	struct stream *s = e->stream;
	unsigned first;

	if (!s)
		return;
	first = (unsigned)(size / s->ps);
	for (unsigned i = first; i < s->cap; i++) {
		struct part *p = &s->parts[i];

		if (p->state == P_QUEUED) {
			p->state = P_NONE;
			s->queued--;
		} else if (p->state == P_INFLIGHT) {
			p->stale = true;
		} else {
			p->state = P_NONE;
		}
	}
	if (s->frontier > (uint64_t)first * s->ps)
		s->frontier = (uint64_t)first * s->ps;
}

/* Finish a multipart upload of [0, size) of e under key: re-send what is not DONE,
 * then complete. e->lock held and e owned (busy). */
static int finish_multipart(struct cache *c, struct centry *e, const char *key, uint64_t size,
			    const struct lexfs_put_opts *opts, char *etag_out)
{
	struct lexfs_objinfo oi = {0};
	struct lexfs_err err = {0};
	struct stream *s = e->stream;
	unsigned nparts, round;
	store_mpu *mpu;
	bool all_done = false;
	int ret = 0;

	if (s &&
	    (s->overflow || strcmp(s->key, key) != 0 || (size + s->ps - 1) / s->ps > s->max_parts))
		upload_stream_abort(c, e);
	s = e->stream;
	if (!s) {
		ret = stream_begin(c, e, key, part_size_for(c, size));
		if (ret < 0)
			return ret;
		s = e->stream;
	}
	nparts = (unsigned)((size + s->ps - 1) / s->ps);
	if (stream_grow(s, nparts) < 0) {
		upload_stream_abort(c, e);
		return -ENOMEM;
	}
	__atomic_store_n(&e->up_total, size, __ATOMIC_RELAXED);
	for (round = 0; round < 2 && !all_done; round++) {
		/* queue what is missing: workers help, we take our share inline */
		for (unsigned i = 0; i < nparts; i++) {
			if (s->parts[i].state != P_NONE)
				continue;
			s->parts[i].state = P_QUEUED;
			s->queued++;
			if (i + 1 < nparts)
				(void)queue_part(c, e, s, i + 1); /* else: inline below */
		}
		for (;;) {
			unsigned i;

			for (i = 0; i < nparts && s->parts[i].state != P_QUEUED; i++)
				;
			if (i < nparts) {
				uint64_t off = (uint64_t)i * s->ps;
				uint64_t len = size - off < s->ps ? size - off : s->ps;

				(void)run_part_locked(c, e, s, i, len);
				continue;
			}
			if (s->running == 0)
				break;
			pthread_cond_wait(&e->cond, &e->lock);
		}
		all_done = true;
		for (unsigned i = 0; i < nparts; i++)
			if (s->parts[i].state != P_DONE)
				all_done = false;
	}
	if (!all_done || e->poison) {
		ret = e->poison ? e->poison : (s->err ? s->err : -EIO);
		log_err("cache: multipart upload of %s failed: %s; aborted", key, strerror(-ret));
		upload_stream_abort(c, e);
		return ret;
	}
	/* complete: detach first, complete frees the handle in every case */
	e->stream = NULL;
	mpu = s->mpu;
	s->mpu = NULL;
	pthread_mutex_unlock(&e->lock);
	ret = store_mp_complete(c->st, mpu, nparts, &oi, &err);
	if (ret < 0)
		log_err("cache: multipart complete of %s: %s (%s)", key, strerror(-ret),
			err.message);
	snprintf(etag_out, 96, "%s", ret == 0 ? oi.etag : "");
	objinfo_free(&oi);
	if (ret == 0 && s->meta_gen != e->meta_gen) {
		/* attributes changed after the upload began: put the final ones on */
		ret = store_set_meta(c->st, key, opts, &err);
		if (ret < 0)
			log_err("cache: metadata of %s: %s (%s)", key, strerror(-ret), err.message);
	}
	pthread_mutex_lock(&e->lock);
	free(s->parts);
	free(s->key);
	free(s);
	return ret;
}

/* The one upload routine: make the store hold e's current bytes and metadata. */
int centry_upload(struct cache *c, struct centry *e)
{
	struct lexfs_err err = {0};
	struct lexfs_meta meta;
	struct lexfs_put_opts opts = {0};
	struct lexfs_src src = {0};
	struct lexfs_objinfo oi = {0};
	char ct[128], etag[96] = "";
	char *key = NULL;
	uint64_t gen, size;
	bool journaled = false, superseded = false;
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
	e->busy = true;
	gen = e->gen;
	size = e->size;
	snprintf(ct, sizeof(ct), "%s", e->content_type);
	opts.content_type = ct[0] ? ct : NULL;
	opts.meta = &meta;
	if (size > part_size_for(c, size) && can_stream(c)) {
		ret = finish_multipart(c, e, key, size, &opts, etag);
	} else {
		if (e->stream)
			upload_stream_abort(c, e);
		__atomic_store_n(&e->up_total, size, __ATOMIC_RELAXED);
		__atomic_store_n(&e->up_done, 0, __ATOMIC_RELAXED);
		src.fd = e->fd;
		src.off = 0;
		src.len = size;
		pthread_mutex_unlock(&e->lock);
		ret = store_upload(c->st, key, &src, &opts, &oi, &err);
		snprintf(etag, sizeof(etag), "%s", ret == 0 ? oi.etag : "");
		objinfo_free(&oi);
		pthread_mutex_lock(&e->lock);
		if (ret < 0 && e->gen != gen && e->writers > 1) {
			/* Another handle wrote while the bytes went up (a store that checks
			 * Content-MD5 refuses such a body). Those bytes were stale anyway:
			 * the entry stays dirty and that handle's close uploads it. */
			log_debug("cache: upload of %s superseded by a concurrent writer (%s)",
				  key, err.message);
			ret = 0;
			superseded = true;
		} else if (ret < 0) {
			log_err("cache: upload of %s failed: %s (%s)", key, strerror(-ret),
				err.message);
		}
	}
	if (ret == 0 && !superseded) {
		/* The object is durable now: FileUploaded (src/events.h). */
		struct lexfs_event ev = { .type = LEXFS_EV_UPLOADED, .key = key,
					  .has_size = true, .size = size, .etag = etag };

		events_emit(c->conf.events, &ev);
	}
	e->busy = false;
	e->last_err = ret;
	if (ret == 0 && !superseded) {
		e->remote_exists = true;
		snprintf(e->etag, sizeof(e->etag), "%s", etag);
		__atomic_store_n(&e->up_done, size, __ATOMIC_RELAXED);
		if (e->gen == gen) {
			e->dirty = false;
			journaled = e->journaled;
		}
	}
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	if (superseded)
		goto out;

	if (ret == 0) {
		/* what the store holds now: the next lookup needs no HEAD */
		struct lexfs_objinfo now = {.size = size, .mtime = (int64_t)time(NULL),
					    .meta = meta, .has_meta = true};

		snprintf(now.etag, sizeof(now.etag), "%s", etag);
		snprintf(now.content_type, sizeof(now.content_type), "%s", ct);
		meta_cache_note_put(c, key, &now);
		STAT_ADD(c, st_uploads, 1);
		STAT_ADD(c, st_upload_bytes, size);
	} else {
		meta_cache_forget(c, key);
		STAT_ADD(c, st_upload_errors, 1);
	}
	if (journaled)
		journal_drop(c, e);
	if (ret == 0)
		centry_unpin(c, e);
out:
	free(key);
	meta_free(&meta);
	return ret;
}

/* ---- write-back ----------------------------------------------------------------- */

int upload_schedule(struct cache *c, struct centry *e)
{
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
	/* the journal promises a complete, durable cache file */
	ret = centry_fill_all(c, e);
	if (ret == 0 && fdatasync(e->fd) < 0)
		ret = -errno;
	pthread_mutex_unlock(&e->lock);
	if (ret == 0)
		ret = journal_put(c, e);
	if (ret < 0) {
		log_warn("cache: cannot journal a closed file (%s); uploading it now",
			 strerror(-ret));
		return centry_upload(c, e);
	}
	upload_enqueue(c, e, cache_now_ms() + (int64_t)c->conf.writeback_s * 1000);
	return 0;
}

/* A write-back (or retry) job. */
static void job_file(struct cache *c, struct ujob *j)
{
	struct upload_engine *u = c->up;
	struct centry *e = j->e;
	bool skip;
	int ret;

	pthread_mutex_lock(&e->lock);
	/* a file open for writing goes up when its last writer closes it */
	skip = !e->dirty || !e->hashed || e->poison || (e->writers > 0 && !u->draining);
	pthread_mutex_unlock(&e->lock);
	if (!skip && __atomic_load_n(&u->store_down, __ATOMIC_ACQUIRE))
		skip = true; /* the drain gave up: it stays in the journal */
	if (skip)
		goto done;
	ret = centry_upload(c, e);
	if (ret < 0) {
		pthread_mutex_lock(&u->lock);
		if (u->draining && (ret == -EIO || ret == -ETIMEDOUT) &&
		    !__atomic_exchange_n(&u->store_down, true, __ATOMIC_ACQ_REL))
			log_warn("cache: unmount: the store looks down (%s); the files not "
				 "yet uploaded stay in the journal for the next mount",
				 strerror(-ret));
		if (!u->draining && !u->stop && !e->wbjob) {
			int64_t delay = 1000LL << (j->tries < 6 ? j->tries : 6);

			e->wbrunning--;
			j->tries++;
			j->due_ms = cache_now_ms() + (delay > 60000 ? 60000 : delay);
			j->next = u->files;
			u->files = j;
			u->nfiles++;
			e->wbjob = j;
			pthread_mutex_unlock(&u->lock);
			STAT_ADD(c, st_upload_retries, 1);
			log_warn("cache: a failed upload will be retried in %lld ms",
				 (long long)(delay > 60000 ? 60000 : delay));
			return;
		}
		pthread_mutex_unlock(&u->lock);
	}
done:
	pthread_mutex_lock(&u->lock);
	e->wbrunning--;
	pthread_mutex_unlock(&u->lock);
	centry_put(c, e);
	free(j);
}

static void *worker(void *arg)
{
	struct cache *c = arg;
	struct upload_engine *u = c->up;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		struct ujob *j = u->phead, *best = NULL, **bestp = NULL;
		int64_t now;

		if (j) {
			u->phead = j->next;
			if (!u->phead)
				u->ptail = NULL;
			u->nparts--;
			u->active++;
			pthread_mutex_unlock(&u->lock);
			job_part(c, j);
			centry_put(c, j->e);
			free(j);
			pthread_mutex_lock(&u->lock);
			u->active--;
			pthread_cond_broadcast(&u->idle);
			continue;
		}
		now = cache_now_ms();
		for (struct ujob **pp = &u->files; *pp; pp = &(*pp)->next)
			if (!best || (*pp)->due_ms < best->due_ms) {
				best = *pp;
				bestp = pp;
			}
		if (best && (best->due_ms <= now || u->draining)) {
			*bestp = best->next;
			best->next = NULL;
			u->nfiles--;
			best->e->wbjob = NULL;
			best->e->wbrunning++;
			u->active++;
			pthread_mutex_unlock(&u->lock);
			job_file(c, best);
			pthread_mutex_lock(&u->lock);
			u->active--;
			pthread_cond_broadcast(&u->idle);
			continue;
		}
		if (u->stop)
			break;
		if (best) {
			struct timespec ts;
			int64_t wait = best->due_ms - now;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&u->cond, &u->lock, &ts);
		} else {
			pthread_cond_wait(&u->cond, &u->lock);
		}
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

int upload_engine_start(struct cache *c)
{
	struct upload_engine *u = calloc(1, sizeof(*u));
	unsigned n = c->conf.upload_concurrency;

	if (!u)
		return -ENOMEM;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	pthread_cond_init(&u->idle, NULL);
	u->th = calloc(n, sizeof(*u->th));
	if (!u->th) {
		free(u);
		return -ENOMEM;
	}
	c->up = u;
	for (unsigned i = 0; i < n; i++) {
		int ret = pthread_create(&u->th[i], NULL, worker, c);

		if (ret != 0) {
			log_err("cache: cannot start upload thread: %s", strerror(ret));
			upload_engine_stop(c);
			return -ret;
		}
		u->nth++;
	}
	return 0;
}

void upload_engine_stop(struct cache *c)
{
	struct upload_engine *u = c->up;

	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	u->stop = true;
	u->draining = true; /* due or not, nothing waits any more */
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	for (unsigned i = 0; i < u->nth; i++)
		pthread_join(u->th[i], NULL);
	/* left-overs (none after a drain): release their references */
	while (u->phead) {
		struct ujob *j = u->phead;

		u->phead = j->next;
		centry_put(c, j->e);
		free(j);
	}
	while (u->files) {
		struct ujob *j = u->files;

		u->files = j->next;
		j->e->wbjob = NULL;
		centry_put(c, j->e);
		free(j);
	}
	pthread_cond_destroy(&u->idle);
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->lock);
	free(u->th);
	free(u);
	c->up = NULL;
}

/* Files not uploaded yet and their bytes. Takes c->lock. */
static void drain_progress(size_t left, size_t n, uint64_t bytes)
{
	log_notice("cache: unmount: %zu of %zu file(s) still to upload (%" PRIu64 " bytes)", left,
		   n, bytes);
}

static size_t dirty_files(struct cache *c, uint64_t *bytes)
{
	size_t n = 0;

	*bytes = 0;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->tabsz; i++) {
		for (struct centry *e = c->tab[i]; e; e = e->hnext) {
			if (e->dirty && !e->poison) {
				n++;
				*bytes += e->size;
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

void upload_drain(struct cache *c)
{
	struct upload_engine *u = c->up;
	struct centry **list = NULL;
	struct ujob **jobs = NULL;
	size_t n = 0, cap = 0, left;
	uint64_t bytes = 0;
	int64_t last_log = 0;

	if (!u)
		return;
	/* every dirty entry gets a job (sync-mode failures, replayed files) */
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->tabsz; i++) {
		for (struct centry *e = c->tab[i]; e; e = e->hnext) {
			if (!e->dirty || e->poison)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct centry **nl = realloc(list, ncap * sizeof(*nl));

				if (!nl)
					break;
				list = nl;
				cap = ncap;
			}
			__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
			list[n++] = e;
			bytes += e->size;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (n) {
		/* the first progress line, before any job can end the drain */
		drain_progress(n, n, bytes);
		last_log = cache_now_ms();
	}
	jobs = n ? calloc(n, sizeof(*jobs)) : NULL;
	for (size_t i = 0; jobs && i < n; i++)
		jobs[i] = calloc(1, sizeof(**jobs)); /* NULL: out of memory, no try */
	/* One critical section queues the jobs and starts the drain: no worker runs a
	 * job of it before the drain has begun (so a failure is not requeued and a
	 * store that is down is seen at once), and each entry gets one try. An upload
	 * running now is its entry's try. */
	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < n; i++)
		if ((list[i]->wbrunning == 0 || list[i]->wbjob) &&
		    file_job_locked(u, list[i], jobs ? jobs[i] : NULL, 0))
			jobs[i] = NULL;
	u->draining = true;
	__atomic_store_n(&u->store_down, false, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&u->lock);
	for (size_t i = 0; i < n; i++) {
		if (jobs)
			free(jobs[i]);
		centry_put(c, list[i]);
	}
	free(jobs);
	free(list);

	pthread_mutex_lock(&u->lock);
	pthread_cond_broadcast(&u->cond);
	while (u->nfiles || u->nparts || u->active) {
		struct timespec ts;
		int64_t now = cache_now_ms();

		if (n && now - last_log >= 1000) {
			/* the count takes c->lock, which comes before the engine lock */
			pthread_mutex_unlock(&u->lock);
			left = dirty_files(c, &bytes);
			drain_progress(left, n, bytes);
			last_log = now;
			pthread_mutex_lock(&u->lock);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&u->idle, &u->lock, &ts);
	}
	pthread_mutex_unlock(&u->lock);
	if (!n)
		return;
	left = dirty_files(c, &bytes);
	if (left)
		log_warn("cache: unmount: %zu of %zu file(s) could not be uploaded; they stay "
			 "in the journal for the next mount",
			 left, n);
	else
		log_notice("cache: unmount: uploads finished");
}

/* Make every queued write-back upload due now (the cache needs room). */
static void upload_hurry(struct cache *c)
{
	struct upload_engine *u = c->up;
	int64_t now = cache_now_ms();

	pthread_mutex_lock(&u->lock);
	for (struct ujob *j = u->files; j; j = j->next)
		if (j->due_ms > now)
			j->due_ms = now;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

/* Dirty entries other than `self` that uploads can turn clean. c->lock held. */
static unsigned uploadable_locked(struct cache *c, struct centry *self)
{
	unsigned n = 0;

	for (size_t i = 0; i < c->tabsz; i++)
		for (struct centry *e = c->tab[i]; e; e = e->hnext)
			if (e != self && e->dirty && !e->poison && e->writers == 0)
				n++;
	return n;
}

/* Bounded disk: before a write grows e to `end`, make room by evicting clean data,
 * or wait for uploads to turn dirty data clean (back-pressure). When nothing can
 * make room (the file being written is the only dirty data) the write goes on:
 * the limit is a target, and a full disk still answers ENOSPC. */
int upload_wait_room(struct cache *c, struct centry *e, uint64_t end)
{
	uint64_t size, grow;
	bool waited = false;

	if (!c->conf.size_limit)
		return 0;
	size = __atomic_load_n(&e->size, __ATOMIC_RELAXED);
	grow = end > size ? end - size : 0;
	if (grow == 0)
		return 0;
	for (;;) {
		struct timespec ts;
		unsigned n;

		if (cache_evict_for(c, grow))
			return 0;
		pthread_mutex_lock(&c->lock);
		n = uploadable_locked(c, e);
		if (n == 0) {
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		if (!waited) {
			STAT_ADD(c, st_waits, 1);
			waited = true;
		}
		pthread_mutex_unlock(&c->lock);
		upload_hurry(c);
		pthread_mutex_lock(&c->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		pthread_mutex_unlock(&c->lock);
	}
}
