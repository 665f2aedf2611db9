/* readahead.c - reads of objects that have no cache file: ranged GETs with
 * read-ahead for sequential readers.
 *
 * Each read-only handle has a struct ra_state. A read at the offset where the
 * previous one ended is sequential: the window doubles (from RA_MIN up to
 * conf.readahead_max) and the range ahead of the reader is fetched as segments of
 * window/4 (at least RA_MIN), several at once, by short-lived loader threads, so
 * the next reads find their bytes already here. A read elsewhere is random: the
 * window falls back to nothing and the read is one ranged GET of exactly the bytes
 * asked for, so random 4 KiB readers never download the object.
 *
 * Segment states (guarded by ra->lock):
 *
 *   LOADING   a loader thread fills buf; readers wait on ra->cond
 *   READY     buf holds [off, off + got); got < len only at the end of the object
 *   FAILED    ret holds the error; a reader that needs it falls back to a direct
 *             read (which reports the error if it persists)
 *
 * Invariants: at most RA_SEGS segments; segments never overlap; a segment is freed
 * only when no loader uses it (loaders hold ra->loaders), and readahead_free waits
 * for every loader before it frees the state.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "src/log.h"

#define RA_MIN (256 * 1024)
#define RA_SEGS 16
#define RA_SLACK (1024 * 1024)

enum seg_state { SEG_EMPTY = 0, SEG_LOADING, SEG_READY, SEG_FAILED };

struct ra_seg {
	enum seg_state state;
	uint64_t off, len, got;
	char *buf;
	int ret;
};

struct ra_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cache *c;
	char *key;
	uint64_t seq_end; /* where the last read ended */
	uint64_t window;  /* current read-ahead window, 0 for random readers */
	uint64_t ahead;	  /* segments cover [.., ahead) */
	unsigned loaders; /* loader threads running */
	struct ra_seg seg[RA_SEGS];
};

struct loader_arg {
	struct ra_state *ra;
	struct ra_seg *s;
};

static void *loader(void *arg)
{
	struct loader_arg *la = arg;
	struct ra_state *ra = la->ra;
	struct ra_seg *s = la->s;
	size_t got = 0;
	int ret;

	free(la);
	ret = store_read(ra->c->st, ra->key, s->off, (size_t)s->len, s->buf, &got, NULL);
	STAT_ADD(ra->c, st_ra_reads, 1);
	STAT_ADD(ra->c, st_ra_bytes, got);
	pthread_mutex_lock(&ra->lock);
	s->got = got;
	s->ret = ret;
	s->state = ret < 0 ? SEG_FAILED : SEG_READY;
	ra->loaders--;
	pthread_cond_broadcast(&ra->cond);
	pthread_mutex_unlock(&ra->lock);
	return NULL;
}

static void seg_drop(struct ra_seg *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

/* Start loading [off, off + len); ra->lock held. False when no slot or thread. */
static bool seg_start(struct ra_state *ra, uint64_t off, uint64_t len)
{
	struct loader_arg *la;
	struct ra_seg *s = NULL;
	pthread_attr_t attr;
	pthread_t th;
	int ret;

	for (int i = 0; i < RA_SEGS && !s; i++)
		if (ra->seg[i].state == SEG_EMPTY)
			s = &ra->seg[i];
	if (!s)
		return false;
	s->buf = malloc((size_t)len);
	la = malloc(sizeof(*la));
	if (!s->buf || !la) {
		free(la);
		seg_drop(s);
		return false;
	}
	s->off = off;
	s->len = len;
	s->state = SEG_LOADING;
	la->ra = ra;
	la->s = s;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&th, &attr, loader, la);
	pthread_attr_destroy(&attr);
	if (ret != 0) {
		free(la);
		seg_drop(s);
		return false;
	}
	ra->loaders++;
	return true;
}

/* Drop READY/FAILED segments that end at or before `before` or start past `after`. */
static void segs_trim(struct ra_state *ra, uint64_t before, uint64_t after)
{
	for (int i = 0; i < RA_SEGS; i++) {
		struct ra_seg *s = &ra->seg[i];

		if (s->state != SEG_READY && s->state != SEG_FAILED)
			continue;
		if (s->off + s->len <= before || s->off >= after)
			seg_drop(s);
	}
}

static struct ra_seg *seg_find(struct ra_state *ra, uint64_t off)
{
	for (int i = 0; i < RA_SEGS; i++) {
		struct ra_seg *s = &ra->seg[i];

		if (s->state != SEG_EMPTY && off >= s->off && off < s->off + s->len)
			return s;
	}
	return NULL;
}

/* Queue segments so that [from, from + window) is loading or loaded. */
static void ra_fill(struct ra_state *ra, uint64_t from, uint64_t size)
{
	uint64_t end = from + ra->window, chunk = ra->window / 4;

	if (chunk < RA_MIN)
		chunk = RA_MIN;
	if (end > size)
		end = size;
	if (ra->ahead < from)
		ra->ahead = from;
	while (ra->ahead < end) {
		uint64_t len = end - ra->ahead < chunk ? end - ra->ahead : chunk;

		struct ra_seg *have = seg_find(ra, ra->ahead);

		if (have) {
			/* still loading from before a random jump: use it */
			ra->ahead = have->off + have->len;
			continue;
		}
		if (!seg_start(ra, ra->ahead, len))
			break;
		ra->ahead += len;
	}
}

int readahead_read(struct cache *c, struct ra_state **rap, const char *key, uint64_t size,
		   char *buf, size_t len, uint64_t off, size_t *got)
{
	struct ra_state *ra = *rap;
	size_t done = 0;
	bool near;
	int ret = 0;

	*got = 0;
	if (!ra) {
		ra = calloc(1, sizeof(*ra));
		if (!ra)
			return -ENOMEM;
		ra->key = strdup(key);
		if (!ra->key) {
			free(ra);
			return -ENOMEM;
		}
		pthread_mutex_init(&ra->lock, NULL);
		pthread_cond_init(&ra->cond, NULL);
		ra->c = c;
		*rap = ra;
	}
	if (strcmp(ra->key, key) != 0) {
		/* renamed meanwhile: follow the new name */
		char *nk = strdup(key);

		if (nk) {
			pthread_mutex_lock(&ra->lock);
			free(ra->key);
			ra->key = nk;
			pthread_mutex_unlock(&ra->lock);
		}
	}
	if (off >= size && size > 0) {
		/* past the known end: ask the store, it may have grown */
		size = 0;
	}
	pthread_mutex_lock(&ra->lock);
	/* The kernel sends several reads at once and they may arrive out of order, so
	 * "sequential" means near where the reads got to, not exactly there. */
	near = off + RA_SLACK >= ra->seq_end && off <= ra->seq_end + RA_SLACK;
	if (near && off > 0 && size > 0) {
		if (off >= ra->seq_end) {
			ra->window = ra->window ? ra->window * 2 : RA_MIN;
			if (ra->window > c->conf.readahead_max)
				ra->window = c->conf.readahead_max;
		}
	} else if (!near) {
		ra->window = 0;
		ra->ahead = 0;
		segs_trim(ra, UINT64_MAX, 0); /* random: forget what was read ahead */
	}
	if (off > RA_SLACK)
		segs_trim(ra, off - RA_SLACK, UINT64_MAX); /* behind the reader */
	if (ra->window)
		ra_fill(ra, off, size);
	while (done < len) {
		struct ra_seg *s = seg_find(ra, off + done);
		uint64_t n;

		if (!s)
			break;
		while (s->state == SEG_LOADING)
			pthread_cond_wait(&ra->cond, &ra->lock);
		if (s->state != SEG_READY || off + done >= s->off + s->got) {
			bool short_end = s->state == SEG_READY;

			seg_drop(s);
			if (short_end) {
				/* the object ends here */
				pthread_mutex_unlock(&ra->lock);
				goto out;
			}
			break;
		}
		n = s->off + s->got - (off + done);
		if (n > len - done)
			n = len - done;
		memcpy(buf + done, s->buf + (off + done - s->off), (size_t)n);
		done += (size_t)n;
		STAT_ADD(c, st_ra_hits, 1);
		/* a consumed segment is dropped once the reader is past it (an
		 * out-of-order read may still want its head) */
	}
	if (ra->window && done == len)
		ra_fill(ra, off + done, size); /* keep a window ahead */
	pthread_mutex_unlock(&ra->lock);

	if (done < len) {
		size_t n = 0;

		ret = store_read(c->st, key, off + done, len - done, buf + done, &n, NULL);
		STAT_ADD(c, st_direct_reads, 1);
		STAT_ADD(c, st_direct_bytes, n);
		if (ret == 0)
			done += n;
	}
out:
	pthread_mutex_lock(&ra->lock);
	if (!near || off + done > ra->seq_end)
		ra->seq_end = off + done;
	pthread_mutex_unlock(&ra->lock);
	*got = done;
	return ret < 0 && done == 0 ? ret : 0;
}

void readahead_free(struct ra_state *ra)
{
	if (!ra)
		return;
	pthread_mutex_lock(&ra->lock);
	while (ra->loaders > 0)
		pthread_cond_wait(&ra->cond, &ra->lock);
	pthread_mutex_unlock(&ra->lock);
	for (int i = 0; i < RA_SEGS; i++)
		seg_drop(&ra->seg[i]);
	pthread_cond_destroy(&ra->cond);
	pthread_mutex_destroy(&ra->lock);
	free(ra->key);
	free(ra);
}
