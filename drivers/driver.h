/* driver.h - the contract between lexfs and a storage backend.
 *
 * A driver is one const table (struct lexfs_driver) written with designated
 * initialisers, every slot present (NULL where the driver has no such operation).
 * Nobody but drivers/store.c dereferences the table: callers use the store_*()
 * wrappers, which supply the generic fallbacks, tracing, retries and statistics.
 *
 * General rules for every operation:
 *  - Thread safety: every operation may be called from several threads at once on
 *    the same context; drivers lock what they share.
 *  - Return: 0 on success or a negative errno (see src/errors.h for the mapping).
 *    `err` may be NULL; when not NULL and the call fails, the driver fills it
 *    (lexfs code, HTTP status, provider code, message, retryable).
 *  - Keys: UTF-8, relative, no leading '/', '/'-separated; "dir/" (trailing slash)
 *    is a directory marker. Drivers never see FUSE paths.
 *  - Memory: anything a driver returns through an out-pointer is owned by the caller
 *    and freed with the matching *_free() below (or free() where it says so).
 *  - Metadata: user metadata is an ordered list of name/value pairs (struct
 *    lexfs_meta). Names are lower-case ASCII [a-z0-9_-]; values are printable ASCII
 *    (the layers above encode anything else). Drivers store them as the backend's
 *    user metadata (x-amz-meta-*, x-ms-meta-*, GCS metadata, sidecar for local).
 *    POSIX attributes ride in it as "mode", "uid", "gid", "mtime" (s3fs's names) -
 *    drivers do not interpret them.
 */
#ifndef LEXFS_DRIVER_H
#define LEXFS_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "src/errors.h"
#include "src/settings.h"

/* 2: server_time, mp_list and mp_abort_id were added at the end of the table (a
 * table of ABI 1 is shorter, so its plugin is refused rather than read past). */
#define LEXFS_DRIVER_ABI 2

/* Capability bits: what the cache and fs layers may expect. */
enum {
	LEXFS_CAP_SERVER_COPY = 1u << 0,    /* copy does not move bytes through us */
	LEXFS_CAP_ATOMIC_MOVE = 1u << 1,    /* move is one atomic operation */
	LEXFS_CAP_MULTIPART = 1u << 2,      /* native multipart (mp_* slots) */
	LEXFS_CAP_PARALLEL_PARTS = 1u << 3, /* parts of one upload may go up at once */
	LEXFS_CAP_RANGE_READ = 1u << 4,     /* download honours off/len without waste */
	LEXFS_CAP_SET_META = 1u << 5,       /* metadata update without rewriting data */
	LEXFS_CAP_PRESIGN = 1u << 6,        /* presign slot works */
	LEXFS_CAP_OWN_RETRY = 1u << 7,      /* the driver retries (HTTP layer); store
					     * must not retry again */
	LEXFS_CAP_EQUAL_PARTS = 1u << 8,    /* non-final parts must be equal-sized (R2) */
};

struct lexfs_meta_kv {
	char *name;
	char *value;
};

/* Ordered user metadata. */
struct lexfs_meta {
	struct lexfs_meta_kv *kv;
	size_t n;
};

/* What info/list report about an object. */
struct lexfs_objinfo {
	char *key;              /* set by list (caller frees via objinfo_free); NULL from info */
	bool is_prefix;         /* list only: a common prefix ("dir/"), other fields empty */
	uint64_t size;
	int64_t mtime;          /* backend's Last-Modified, seconds since the epoch */
	char etag[96];          /* without quotes; "" when unknown */
	char content_type[128]; /* "" when unknown */
	struct lexfs_meta meta; /* user metadata; empty from list when the backend's
				 * listing does not carry it (has_meta false) */
	bool has_meta;          /* meta is complete (from info, or a listing with meta) */
};

/* One page of a listing. */
struct lexfs_list_page {
	struct lexfs_objinfo *items; /* objects and prefixes, in key order */
	size_t n;
	char *next_token;            /* NULL when this is the last page */
};

/* The bytes of an upload or part: a range of a file descriptor (read with pread,
 * so it can be re-read for a retry) or a memory buffer. Exactly one is used:
 * buf != NULL selects the buffer. */
struct lexfs_src {
	const void *buf;
	int fd;
	off_t off;
	uint64_t len;
};

/* Options of an upload / copy / metadata update. */
struct lexfs_put_opts {
	const char *content_type;      /* NULL: backend default */
	const struct lexfs_meta *meta; /* NULL: none (copy: keep the source's) */
	const char *if_match;          /* NULL or etag precondition (drivers may ignore) */
	/* copy, set_meta: the source's size when the caller knows it (a driver that
	 * would HEAD the source to choose how to copy may skip that) */
	bool have_src_size;
	uint64_t src_size;
};

enum lexfs_method { LEXFS_GET = 0, LEXFS_PUT = 1 };

/* An incomplete multipart upload (mp_list): begun, neither completed nor aborted. */
struct lexfs_upload {
	char *key;	   /* the key it would create (caller frees via upload_page_free) */
	char *upload_id;   /* the backend's id of the upload, for mp_abort_id */
	int64_t initiated; /* seconds since the epoch; 0 when the backend does not say */
};

/* One page of incomplete uploads, in the backend's order (S3: key, then start). */
struct lexfs_upload_page {
	struct lexfs_upload *items;
	size_t n;
	char *next_token; /* NULL when this is the last page */
};

/* Download sink: called with consecutive chunks; non-zero return (-errno) aborts
 * the download and is returned by it. */
typedef int (*lexfs_sink_fn)(void *arg, const void *data, size_t len);

/* A driver instance handed to every operation. */
typedef struct lexfs_drv lexfs_drv;
/* An in-progress multipart upload (opaque to callers). */
typedef struct lexfs_mpu lexfs_mpu;

/* Arguments of open. `settings` holds the driver's own group, for example the
 * merged storage.s3 keys; `backend_name` is the named backend or "default". */
struct lexfs_driver_conf {
	const char *backend_name;
	const struct settings *settings;
	int timeout_ms;  /* per-request timeout hint */
	int max_retries; /* for drivers with LEXFS_CAP_OWN_RETRY */
};

struct lexfs_driver {
	const char *name; /* "s3", "r2", "gcs", "azure", "local", "memory" */
	unsigned abi;     /* LEXFS_DRIVER_ABI */
	unsigned caps;    /* LEXFS_CAP_* */
	uint64_t min_part_size; /* multipart: smallest non-final part */
	uint64_t max_part_size;
	unsigned max_parts;
	uint64_t max_object_size; /* 0: no limit known */

	/* Required. Create an instance from settings; validate them (errors name the
	 * key and its origin). On success *drv is the caller's to close. */
	int (*open)(const struct lexfs_driver_conf *conf, lexfs_drv **drv, struct lexfs_err *err);
	/* Required. Free everything; drv may be NULL. */
	void (*close)(lexfs_drv *drv);
	/* Required. One authenticated round trip (or its local equivalent) that proves
	 * the backend is usable, within timeout_ms. */
	int (*health_check)(lexfs_drv *drv, int timeout_ms, struct lexfs_err *err);
	/* Required. Store a whole object, replacing any previous one atomically (a
	 * reader never sees a partial object). `out` (may be NULL) gets size and etag. */
	int (*upload)(lexfs_drv *drv, const char *key, const struct lexfs_src *src,
		      const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
		      struct lexfs_err *err);
	/* Required. Stream bytes [off, off+len) into sink; len UINT64_MAX means to the
	 * end. A range past the end yields the bytes that exist (possibly none).
	 * -ENOENT when the object does not exist. */
	int (*download)(lexfs_drv *drv, const char *key, uint64_t off, uint64_t len,
			lexfs_sink_fn sink, void *arg, struct lexfs_err *err);
	/* Required. HEAD: fill out (caller frees with objinfo_free); -ENOENT if absent. */
	int (*info)(lexfs_drv *drv, const char *key, struct lexfs_objinfo *out,
		    struct lexfs_err *err);
	/* Required. One page of keys under prefix. delim is "/" or NULL (recursive).
	 * token is NULL for the first page, else the previous page's next_token.
	 * max_keys is a hint (<= 1000). Free the page with list_page_free. */
	int (*list)(lexfs_drv *drv, const char *prefix, const char *delim, const char *token,
		    unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err);
	/* Required. Delete; an absent key is success. */
	int (*remove)(lexfs_drv *drv, const char *key, struct lexfs_err *err);
	/* Required. The public (unsigned) URL of key. *url: caller frees. */
	int (*get_url)(lexfs_drv *drv, const char *key, char **url, struct lexfs_err *err);

	/* Optional (NULL: store uses info). 1 exists, 0 absent, or -errno. */
	int (*exists)(lexfs_drv *drv, const char *key, struct lexfs_err *err);
	/* Optional (NULL: download + upload). opts NULL keeps the source's content type
	 * and metadata; otherwise they are replaced. */
	int (*copy)(lexfs_drv *drv, const char *src, const char *dst,
		    const struct lexfs_put_opts *opts, struct lexfs_err *err);
	/* Optional (NULL: copy + remove). */
	int (*move)(lexfs_drv *drv, const char *src, const char *dst, struct lexfs_err *err);
	/* Optional (NULL: copy onto itself with opts). Replace content type and user
	 * metadata of an existing object without changing its bytes. */
	int (*set_meta)(lexfs_drv *drv, const char *key, const struct lexfs_put_opts *opts,
			struct lexfs_err *err);
	/* Optional (NULL: remove one by one). Delete up to 1000 keys; absent keys are
	 * success. */
	int (*remove_many)(lexfs_drv *drv, const char *const *keys, size_t n,
			   struct lexfs_err *err);

	/* Optional multipart (all four or none; NULL: store buffers and uploads once).
	 * Part numbers start at 1; parts may arrive in any order and, with
	 * LEXFS_CAP_PARALLEL_PARTS, concurrently. A part may be re-sent (retry) and
	 * replaces the earlier one. complete assembles parts 1..nparts in order (every
	 * part must have been sent); the object appears atomically. abort frees all
	 * server state; both complete and abort free *mpu (also on failure). */
	int (*mp_begin)(lexfs_drv *drv, const char *key, const struct lexfs_put_opts *opts,
			lexfs_mpu **mpu, struct lexfs_err *err);
	int (*mp_part)(lexfs_drv *drv, lexfs_mpu *mpu, unsigned partno,
		       const struct lexfs_src *src, struct lexfs_err *err);
	int (*mp_complete)(lexfs_drv *drv, lexfs_mpu *mpu, unsigned nparts,
			   struct lexfs_objinfo *out, struct lexfs_err *err);
	int (*mp_abort)(lexfs_drv *drv, lexfs_mpu *mpu, struct lexfs_err *err);

	/* Optional (NULL: -ENOTSUP). A URL that grants `method` on key for expires_s
	 * seconds without credentials. *url: caller frees. */
	int (*presign)(lexfs_drv *drv, const char *key, enum lexfs_method method,
		       int64_t expires_s, char **url, struct lexfs_err *err);

	/* Optional (NULL: -ENOTSUP). A run-time control, for example the memory
	 * driver's fault injection ("fault", "error_rate=0.1,latency_ms=5"). */
	int (*control)(lexfs_drv *drv, const char *name, const char *value,
		       struct lexfs_err *err);

	/* Optional (NULL: the server's clock cannot be known; lexfs doctor skips its
	 * clock check). The server's clock, for drivers whose requests are signed with
	 * a time the server checks (SigV4, Shared Key and SAS refuse a request more
	 * than 15 minutes off): *server is the Date header of the most recent response
	 * the driver received, *local this machine's clock (time()) when it arrived,
	 * both seconds since the epoch. Makes no request: -ENODATA when no response
	 * carried a Date yet (store_server_time then runs the health check and asks
	 * again). Cheap; thread-safe. Drivers on the HTTP layer answer with
	 * http_last_date(). */
	int (*server_time)(lexfs_drv *drv, int64_t *server, int64_t *local, struct lexfs_err *err);

	/* Optional housekeeping of incomplete multipart uploads (both or neither;
	 * NULL: -ENOTSUP). Uploads a crashed writer left behind cost storage until
	 * aborted; lexfs doctor lists and (with --abort-stale) aborts them.
	 * mp_list: one page of the uploads under prefix ("" for all) that were begun
	 * and neither completed nor aborted, by anyone (not only this instance).
	 * token is NULL for the first page, else the previous page's next_token;
	 * max_uploads is a hint (1..1000). Free the page with upload_page_free.
	 * mp_abort_id: abort upload_id of key, as listed; an upload that is already
	 * gone is success. A live writer's upload is listed too: the caller decides
	 * what is stale (by `initiated`), the driver aborts what it is told. */
	int (*mp_list)(lexfs_drv *drv, const char *prefix, const char *token, unsigned max_uploads,
		       struct lexfs_upload_page *out, struct lexfs_err *err);
	int (*mp_abort_id)(lexfs_drv *drv, const char *key, const char *upload_id,
			   struct lexfs_err *err);
};

/* Plugin drivers. A driver NAME that is not built in is loaded from
 * PLUGIN_DIR/lexfs-NAME.so (the plugin_dir setting), a shared object that exports
 * LEXFS_PLUGIN_SYMBOL: a function returning its table, which lives as long as the
 * object is loaded. The table's name must be NAME (lower-case letters, digits and
 * '_'), its abi LEXFS_DRIVER_ABI, and every operation marked Required above must
 * be set; otherwise the plugin is refused with a message saying which rule it
 * broke. The lexfs executable exports no symbols: a plugin uses the types of this
 * header and its own code, not the helpers below. What it returns through
 * out-pointers is freed by lexfs with free(). tests/plugin/lexfs-example.c is a
 * complete one. */
#define LEXFS_PLUGIN_SYMBOL "lexfs_driver_plugin"
typedef const struct lexfs_driver *(*lexfs_plugin_fn)(void);
/* Defined by a plugin, never by lexfs. */
const struct lexfs_driver *lexfs_driver_plugin(void);

/* Helpers shared by drivers and callers (drivers/meta.c). */
void meta_init(struct lexfs_meta *m);
void meta_free(struct lexfs_meta *m);
/* Set (replace) name; 0 or -ENOMEM. */
int meta_set(struct lexfs_meta *m, const char *name, const char *value);
const char *meta_get(const struct lexfs_meta *m, const char *name);
int meta_del(struct lexfs_meta *m, const char *name);
int meta_copy(struct lexfs_meta *dst, const struct lexfs_meta *src);
void objinfo_free(struct lexfs_objinfo *oi);
void list_page_free(struct lexfs_list_page *p);
void upload_page_free(struct lexfs_upload_page *p);
/* Read a source into a caller-provided buffer/whole: used by fallbacks. */
int src_read(const struct lexfs_src *src, uint64_t off, void *dst, size_t len);

#endif
