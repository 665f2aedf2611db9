/* cache_int.h - what the files of cache/ share; nothing outside cache/ includes it.
 *
 * Objects and their locks
 * -----------------------
 * struct cache      one per mount. c->lock guards the key table, every entry's
 *                   `hashed`, `pinned` and LRU links, the decision to free an
 *                   entry (refs is atomic: a holder may add a reference without
 *                   c->lock, see centry_hold_more). Counters (c->st_*, disk_used)
 *                   and the id counter are atomics. c->lock is never held across
 *                   I/O.
 * struct centry     one per key the cache holds (open, pending upload or cached
 *                   clean data). e->lock guards everything in the entry but the
 *                   key, and may be held across local file I/O and across ranged
 *                   downloads of missing content (so two readers never fetch the
 *                   same range twice). It is not held across uploads: an upload
 *                   runs with e->busy set, and a change made meanwhile bumps
 *                   e->gen, which keeps the entry dirty afterwards.
 * e->keylock        a leaf lock for e->key alone (renames change it while others
 *                   hold e->lock).
 *
 * Lock order: c->lock -> e->lock -> e->keylock; the upload engine's u->lock, the
 * journal's j->lock (taken under e->lock, so an entry's records keep its order),
 * the metadata cache's lock and a read-ahead state's lock are leaves.
 *
 * Size limit (conf.size_limit, 0 = no clean data is kept): clean entries with no
 * reference stay on the LRU with their cache file and are evicted tail first
 * when a write needs room; dirty data is never evicted, writers wait for uploads
 * instead (upload_wait_room), unless nothing but their own file is dirty.
 *
 * Entry states (derived from the fields, not stored):
 *
 *   state      fd    dirty  handles  what it means
 *   REMOTE     -1    no     >= 1     read-only handles; reads go to the store
 *   OPEN       >= 0  any    >= 1     a cache file backs the entry
 *   PENDING    >= 0  yes    0        closed, not yet durable; pinned (e->pinned)
 *   CLEAN      >= 0  no     0        cached clean data, evictable (LRU)
 *
 * Invariants:
 *  - refs = handles + (pinned ? 1 : 0) + temporary holds of workers.
 *  - a dirty entry is never freed and never evicted; it is pinned when it has
 *    no handles.
 *  - with fd >= 0, byte i < size of the file is the file's current content when
 *    i >= remote_limit or i lies in `valid`; otherwise it is still in the store
 *    under the entry's key and is fetched before anyone reads it.
 *  - an entry that is not `hashed` was unlinked: its handles keep working but it
 *    is never uploaded.
 *  - a poisoned entry (a write hit ENOSPC) is never uploaded and is dropped when
 *    its last handle closes: the store keeps the previous version or nothing.
 *  - journaled <=> the journal's last record for e->id is a PUT.
 */
#ifndef LEXFS_CACHE_INT_H
#define LEXFS_CACHE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/cache.h"

struct range {
	uint64_t start, end; /* [start, end) */
};

/* A sorted set of disjoint, non-adjacent ranges. */
struct rangeset {
	struct range *v;
	size_t n, cap;
};

void rs_init(struct rangeset *rs);
void rs_free(struct rangeset *rs);
/* 0 or -ENOMEM. */
int rs_add(struct rangeset *rs, uint64_t start, uint64_t end);
/* Forget everything at or past limit. */
void rs_clip(struct rangeset *rs, uint64_t limit);
/* The first part of [start, end) not covered, as [*gs, *ge); false when none. */
bool rs_first_gap(const struct rangeset *rs, uint64_t start, uint64_t end, uint64_t *gs,
		  uint64_t *ge);

struct upload_engine;
struct journal;
struct meta_cache;
struct readahead;
struct stream;
struct ujob;

struct centry {
	/* guarded by c->lock */
	struct centry *hnext;
	unsigned refs;
	bool hashed;
	bool pinned;
	struct centry *lru_prev, *lru_next; /* CLEAN entries only, most recent first */

	pthread_mutex_t keylock;
	char *key; /* guarded by keylock (writers also hold c->lock) */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* uploading / fetching changes */
	/* guarded by lock */
	uint64_t id;	       /* names the cache file; 0 while there is none */
	int fd;		       /* cache file, -1 when none (REMOTE) */
	uint64_t size;	       /* logical size */
	uint64_t remote_limit; /* see the invariants above */
	struct rangeset valid;
	bool remote_exists; /* an object exists in the store under key */
	bool dirty;
	uint64_t gen;	   /* bumped by every change of bytes, size or metadata */
	uint64_t meta_gen; /* bumped by every change of metadata */
	unsigned handles;
	unsigned writers;
	bool busy;	     /* an upload or rename owns the entry; wait on cond */
	bool journaled;	     /* a PUT record for id is in the journal */
	int poison;	     /* -errno that forbids any upload (ENOSPC mid-write) */
	int last_err;	     /* of the last upload, for stats and close */
	uint64_t disk_bytes; /* bytes the cache file accounts for in c->disk_used */
	struct lexfs_meta meta;
	char content_type[128];
	char etag[96];	       /* of the store's version this entry matches; "" unknown */
	struct stream *stream; /* streaming multipart state, NULL when none */
	uint64_t seq_end;      /* end of the last write, for sequential detection */
	struct ujob *wbjob;    /* queued write-back upload; guarded by the engine lock */
	unsigned wbrunning;    /* its file jobs workers are running; engine lock */
	/* upload progress (read by stats without e->lock: relaxed) */
	uint64_t up_total;
	uint64_t up_done;
};

struct cache {
	struct cache_conf conf;
	char *dir;
	char *datadir;
	struct store *st;
	int lockfd;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* disk space freed, pending entries changed */
	struct centry **tab;
	size_t tabsz, nent;
	uint64_t next_id;
	struct centry *lru_head, *lru_tail;
	uint64_t disk_used; /* bytes of cache files (by size); atomic */
	uint64_t dirty_bytes;
	unsigned npending;

	/* counters: atomic (STAT_ADD / STAT_GET), so any lock may be held */
	uint64_t st_uploads, st_upload_bytes, st_upload_errors, st_upload_retries;
	uint64_t st_fetches, st_fetch_bytes, st_direct_reads, st_direct_bytes;
	uint64_t st_parts, st_part_bytes, st_streams, st_stream_fallbacks;
	uint64_t st_evictions, st_enospc, st_waits;
	uint64_t st_ra_reads, st_ra_bytes, st_ra_hits;

	struct upload_engine *up;
	struct journal *jn;
	struct meta_cache *mc;
	struct readahead *ra;
};

#define STAT_ADD(c, field, n) __atomic_add_fetch(&(c)->field, (n), __ATOMIC_RELAXED)
#define STAT_GET(c, field) __atomic_load_n(&(c)->field, __ATOMIC_RELAXED)

/* cache.c helpers used by the other files. */
void cache_data_path(const struct cache *c, uint64_t id, char *out, size_t outlen);
struct centry *cache_find_hold(struct cache *c, const char *key);
int cache_adopt(struct cache *c, const char *key, uint64_t id, int fd, uint64_t size,
		const struct lexfs_meta *meta, const char *ct, struct centry **out);
void centry_unpin(struct cache *c, struct centry *e);
bool cache_evict_for(struct cache *c, uint64_t want);
int64_t cache_now_ms(void);
char *centry_key_dup(struct centry *e); /* caller frees; NULL on ENOMEM */
void centry_hold(struct cache *c, struct centry *e);
/* Another reference when the caller already holds one (no c->lock needed). */
void centry_hold_more(struct centry *e);
void centry_put(struct cache *c, struct centry *e);
/* Fetch every missing byte of [0, size): the cache file becomes complete.
 * Called with e->lock held. */
int centry_fill_all(struct cache *c, struct centry *e);
/* Upload e now (whole file or finishing its stream). Called without e->lock.
 * 0, or -errno (data kept dirty). */
int centry_upload(struct cache *c, struct centry *e);

/* upload.c: the upload engine (worker threads, streaming multipart, write-back
 * timer). */
int upload_engine_start(struct cache *c);
void upload_engine_stop(struct cache *c);
/* Upload every pending entry now; logs progress. */
void upload_drain(struct cache *c);
/* Write-back: make e durable in the cache (journal) and queue its upload. */
int upload_schedule(struct cache *c, struct centry *e);
/* Queue e for upload as soon as possible (journal replay, retries). */
void upload_enqueue(struct cache *c, struct centry *e, int64_t due_ms);
/* Back-pressure before a write that makes e reach `end` bytes. */
int upload_wait_room(struct cache *c, struct centry *e, uint64_t end);
/* Streaming hooks, e->lock held. */
void upload_after_write(struct cache *c, struct centry *e, uint64_t off, uint64_t len);
void upload_after_truncate(struct cache *c, struct centry *e, uint64_t size);
void upload_stream_abort(struct cache *c, struct centry *e);

/* journal.c: the write-back journal. */
int journal_open(struct cache *c); /* also replays */
void journal_close(struct cache *c);
/* Record that e (its id, key, size, metadata) must be uploaded; fsynced. */
int journal_put(struct cache *c, struct centry *e);
/* Record that e's id needs nothing more (uploaded or dropped). */
void journal_drop(struct cache *c, struct centry *e);

/* readahead.c: reads of files without a cache file. */
struct ra_state;
int readahead_read(struct cache *c, struct ra_state **ra, const char *key, uint64_t size, char *buf,
		   size_t len, uint64_t off, size_t *got);
void readahead_free(struct ra_state *ra);

#endif
